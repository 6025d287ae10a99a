"""Write frames (+ audio) to an mp4 with PyAV: H.264 video and AAC audio, written atomically.

Used by `generate` for its output and by tests to compose inputs with any frame rate, variable
frame timing, sample rate, channel count and rotation metadata.
"""
import fractions
import os
from typing import Iterable, Sequence

import av
import numpy as np


def _audio_frames(audio: np.ndarray, sample_rate: int, samples_per_frame: int = 1024):
  """float [N] or [N, C] in [-1, 1] -> planar float AudioFrames with increasing pts."""
  audio = np.asarray(audio, np.float32)
  if audio.ndim == 1:
    audio = audio[:, None]
  layout = {1: "mono", 2: "stereo"}.get(audio.shape[1])
  if layout is None:
    raise ValueError(f"audio must have 1 or 2 channels, got shape {audio.shape}")
  planar = np.ascontiguousarray(audio.T)
  for i in range(0, planar.shape[1], samples_per_frame):
    frame = av.AudioFrame.from_ndarray(planar[:, i:i + samples_per_frame], format="fltp",
                                       layout=layout)
    frame.sample_rate = sample_rate
    frame.pts = i
    frame.time_base = fractions.Fraction(1, sample_rate)
    yield frame


def write_video(path: str, frames: Iterable[np.ndarray], fps: float = 25,
                audio: np.ndarray | None = None, sample_rate: int = 16000,
                timestamps: Sequence[float] | None = None, rotation: int = 0, crf: int = 18, preset: str = "medium",
                codec: str = "libx264", audio_codec: str = "aac", audio_bit_rate: int = 128000) -> str:
  """Writes uint8 [H,W,3] RGB frames (an iterable, so long videos stream) and optional audio.

  fps: nominal rate; `timestamps` (seconds, one per frame) gives variable frame timing instead.
  rotation: display-matrix rotation in degrees counter-clockwise (what phones store).
  crf, preset: libx264 quality and speed ("ultrafast" for scratch files).
  The file appears at `path` only when complete (written to a temporary name, then renamed).
  """
  tmp = f"{path}.tmp-{os.getpid()}{os.path.splitext(path)[1]}"
  rate = fractions.Fraction(fps).limit_denominator(1001)
  time_base = fractions.Fraction(1, 90000) if timestamps is not None else 1 / rate
  container = av.open(tmp, "w")
  try:
    video = None
    astream = None
    if audio is not None:
      astream = container.add_stream(audio_codec, rate=sample_rate)
      astream.bit_rate = audio_bit_rate
      channels = 1 if np.ndim(audio) == 1 else np.shape(audio)[1]
      astream.layout = "mono" if channels == 1 else "stereo"
    for i, image in enumerate(frames):
      image = np.asarray(image, np.uint8)
      if video is None:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height = image.shape[1], image.shape[0]
        video.pix_fmt = "yuv420p" if image.shape[0] % 2 == 0 and image.shape[1] % 2 == 0 else "yuv444p"
        video.time_base = time_base
        video.codec_context.time_base = time_base
        video.options = {"crf": str(crf), "preset": preset} if codec == "libx264" else {}
        if rotation:
          video.set_display_rotation(rotation)
      frame = av.VideoFrame.from_ndarray(image, format="rgb24")
      frame.pts = int(round(timestamps[i] / time_base)) if timestamps is not None else i
      frame.time_base = time_base
      for packet in video.encode(frame):
        container.mux(packet)
    if video is None:
      raise ValueError(f"{path}: no frames to write")
    for packet in video.encode():
      container.mux(packet)
    if astream is not None:
      for frame in _audio_frames(audio, sample_rate):
        for packet in astream.encode(frame):
          container.mux(packet)
      for packet in astream.encode():
        container.mux(packet)
  except BaseException:
    container.close()
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  container.close()
  os.replace(tmp, path)
  return path
