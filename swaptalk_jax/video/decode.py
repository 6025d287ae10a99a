"""Decode any video file to 25 fps RGB frames and 16 kHz mono audio on one shared timeline.

Output frame k shows the source frame on screen at time start + k / fps (the latest source frame whose
timestamp is <= that time, like a monitor sampling the video), so variable frame rates, 29.97/30/60
fps and 23.976 fps all map to the same clock. Time zero is the first video frame's timestamp; audio
is cut on that same clock, so audio and video stay in sync whatever their stream start offsets.
Rotation metadata (display matrix) is applied; frames larger than `max_side` are downscaled on
decode (the scale is reported so callers can map coordinates back to the stored pixels).
Frames stream (`iter_frames`) so long videos decode in bounded memory.
"""
import dataclasses
from typing import Iterator

import av
import numpy as np

from swaptalk_jax.audio.resample import to_mono_16k
from swaptalk_jax.data.clip import FPS, SAMPLE_RATE

SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


class MediaError(ValueError):
  """A file that cannot be decoded as needed; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What the container says, plus the display geometry after rotation and downscaling.

  width/height: stored (coded) size after rotation, i.e. the size a player shows.
  scale: decoded frame pixels per display pixel (<= 1; 1 unless max_side downscaled it).
  start: timestamp (s) of the first video frame: time zero of every output.
  """
  path: str
  width: int
  height: int
  rotation: int
  scale: float
  frame_rate: float
  duration: float
  start: float
  has_audio: bool
  audio_rate: int
  audio_channels: int

  @property
  def decoded_size(self) -> tuple[int, int]:
    """(width, height) of the frames `iter_frames` yields."""
    return _scaled(self.width, self.height, self.scale)


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
  if scale >= 1.0:
    return width, height
  return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _open(path: str) -> av.container.InputContainer:
  try:
    return av.open(str(path))
  except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
    raise MediaError(f"{path}: cannot open as a media file: {e}") from e


def _seconds(pts, time_base) -> float:
  return float(pts * time_base)


def _decode(container, stream, path: str, max_bad: int = 8) -> Iterator:
  """Frames of `stream`, skipping packets the decoder rejects (as ffmpeg does) up to `max_bad`.

  Real files carry the odd damaged packet (Megamind.avi's AC3 track has some); more than
  `max_bad` means the stream is broken and raises MediaError.
  """
  bad = 0
  for packet in container.demux(stream):
    try:
      frames = packet.decode()
    except av.error.FFmpegError as e:
      bad += 1
      if bad > max_bad:
        raise MediaError(f"{path}: {stream.type} stream has more than {max_bad} undecodable "
                         f"packets (last: {e})") from e
      continue
    yield from frames


def _first_video_frame(container, path: str) -> av.VideoFrame:
  try:
    for frame in _decode(container, container.streams.video[0], path):
      if frame.pts is not None:
        return frame
  except av.error.FFmpegError as e:
    raise MediaError(f"{path}: video stream does not decode: {e}") from e
  raise MediaError(f"{path}: video stream has no decodable frames")


def probe(path: str, max_side: int | None = None) -> VideoInfo:
  """Reads the container and the first video frame (for rotation and the start time)."""
  container = _open(path)
  try:
    if not container.streams.video:
      raise MediaError(f"{path}: no video stream (audio-only or not a video)")
    stream = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    first = _first_video_frame(container, path)
    rotation = int(round((first.rotation or 0) / 90.0)) % 4 * 90
    w, h = first.width, first.height
    if rotation in (90, 270):
      w, h = h, w
    scale = 1.0 if not max_side or max(w, h) <= max_side else max_side / max(w, h)
    rate = float(stream.average_rate or stream.guessed_rate or 0.0)
    if stream.duration is not None:
      duration = _seconds(stream.duration, stream.time_base)
    elif container.duration is not None:
      duration = container.duration / av.time_base
    else:
      duration = 0.0
    return VideoInfo(path=str(path), width=w, height=h, rotation=rotation, scale=scale,
                     frame_rate=rate, duration=duration, start=_seconds(first.pts, first.time_base),
                     has_audio=audio is not None,
                     audio_rate=int(audio.codec_context.sample_rate) if audio else 0,
                     audio_channels=int(audio.codec_context.channels) if audio else 0)
  finally:
    container.close()


def _to_rgb(frame: av.VideoFrame, info: VideoInfo) -> np.ndarray:
  """Decoded frame -> uint8 [H,W,3] upright (rotation applied), scaled to info.decoded_size."""
  w, h = info.decoded_size
  if info.rotation in (90, 270):
    w, h = h, w
  rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
  if info.rotation:
    rgb = np.ascontiguousarray(np.rot90(rgb, k=info.rotation // 90))
  return rgb


def iter_frames(path: str, start: float = 0.0, end: float | None = None, fps: int = FPS,
                max_side: int | None = None, info: VideoInfo | None = None) -> Iterator[np.ndarray]:
  """Yields uint8 [H,W,3] frames at `fps` covering [start, end) seconds after the first frame.

  Frame k is the source frame on screen at start + k / fps. The last frame is the one whose time
  still lies before the end of the video (last timestamp + one source frame duration) or `end`.
  A stream that breaks mid-way (truncated file) raises MediaError after the frames it could give.
  """
  info = info or probe(path, max_side)
  container = _open(path)
  eps = 1e-6
  try:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if start > 0:
      container.seek(int((info.start + start) / stream.time_base), stream=stream, backward=True)
    k, prev, prev_t = 0, None, 0.0
    frame_dt = 1.0 / (info.frame_rate or fps)  # the last frame stays on screen one nominal period
    try:
      for frame in _decode(container, stream, path):
        if frame.pts is None:
          continue
        t = _seconds(frame.pts, frame.time_base) - info.start
        if prev is not None:
          if t <= prev_t + eps:  # duplicate or out-of-order timestamp: keep the first
            continue
          # Output times in [prev_t, t) show the previous frame.
          while start + k / fps < t - eps:
            if end is not None and start + k / fps >= end - eps:
              return
            yield _to_rgb(prev, info)
            k += 1
        prev, prev_t = frame, t
    except av.error.FFmpegError as e:
      raise MediaError(f"{path}: video decoding failed after {k} output frames: {e}") from e
    if prev is None:
      raise MediaError(f"{path}: no video frames after {start} s")
    stop = prev_t + frame_dt if end is None else min(end, prev_t + frame_dt)
    while start + k / fps < stop - eps:
      yield _to_rgb(prev, info)
      k += 1
  finally:
    container.close()


def read_audio(path: str, start: float = 0.0, num_samples: int | None = None,
               info: VideoInfo | None = None) -> np.ndarray:
  """16 kHz mono float32 audio from `start` s after the first video frame.

  `num_samples` (if given) fixes the length: zero-padded where the audio stream ends early or
  starts late. Raises MediaError when there is no audio stream or it does not decode.
  """
  info = info or probe(path)
  if not info.has_audio:
    raise MediaError(f"{path}: no audio stream")
  container = _open(path)
  chunks, first_t, have = [], None, 0
  need = None if num_samples is None else start + num_samples / SAMPLE_RATE + 0.5
  try:
    stream = container.streams.audio[0]
    if start > 1.0:
      container.seek(int((info.start + start - 1.0) / stream.time_base), stream=stream,
                     backward=True)
    planar = av.AudioResampler(format="fltp")  # native rate and layout, float planar [C, n]
    for frame in _decode(container, stream, path):
      if first_t is None:
        if frame.pts is None:
          continue
        first_t = _seconds(frame.pts, frame.time_base) - info.start
      for out in planar.resample(frame):
        chunks.append(out.to_ndarray())
        have += out.samples
      if need is not None and first_t + have / info.audio_rate > need:
        break
  except av.error.FFmpegError as e:
    raise MediaError(f"{path}: audio decoding failed: {e}") from e
  finally:
    container.close()
  if not chunks:
    raise MediaError(f"{path}: audio stream has no decodable samples")
  mono = to_mono_16k(np.concatenate(chunks, axis=1).T, info.audio_rate)
  offset = int(round((first_t - start) * SAMPLE_RATE))  # position of the stream's first sample
  mono = np.concatenate([np.zeros(offset, np.float32), mono]) if offset > 0 else mono[-offset:]
  if num_samples is not None:
    mono = np.pad(mono[:num_samples], (0, max(0, num_samples - mono.shape[0])))
  return mono.astype(np.float32)


@dataclasses.dataclass
class Decoded:
  """A whole segment in memory: frames [T,H,W,3] at 25 fps and audio [T*640] at 16 kHz."""
  frames: np.ndarray
  audio: np.ndarray | None
  info: VideoInfo


def read_video(path: str, start: float = 0.0, end: float | None = None, max_side: int | None = None,
               with_audio: bool = True) -> Decoded:
  """All frames of [start, end) plus the matching audio (None when the file has none)."""
  info = probe(path, max_side)
  frames = list(iter_frames(path, start, end, info=info))
  if not frames:
    raise MediaError(f"{path}: no frames in [{start}, {end}) s")
  stack = np.stack(frames)
  audio = None
  if with_audio and info.has_audio:
    audio = read_audio(path, start, stack.shape[0] * SAMPLES_PER_FRAME, info=info)
  return Decoded(stack, audio, info)
