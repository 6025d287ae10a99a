"""Inputs of `generate`: the source photo, the driving audio (any container, rate or channel
count, or the target video's own track) and the audio policy that fits it to the video.

Audio policies (the output's length in frames, given `video` frames and `audio` frames of sound):
  trim: min(video, audio): the longer of the two is cut;
  loop: video: audio shorter than the video is repeated, longer audio is cut;
  pad:  video: audio shorter than the video is followed by silence, longer audio is cut.
"""
import av
import numpy as np

from swaptalk_jax.audio.resample import to_mono_16k
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.video import decode

SAMPLES_PER_FRAME = decode.SAMPLES_PER_FRAME
AUDIO_POLICIES = ("trim", "loop", "pad")


def _exists(path: str, what: str) -> None:
  import os  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise MissingFileError(f"{what} {path} does not exist")


def read_photo(path: str) -> np.ndarray:
  """The source photo as RGB uint8 [H,W,3] (any format PIL reads; EXIF rotation applied)."""
  from PIL import Image, ImageOps, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
  _exists(path, "source photo")
  try:
    with Image.open(path) as image:
      return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
  except (UnidentifiedImageError, OSError) as e:
    raise UserError(f"source photo {path} is not a readable image: {e}") from None


def read_audio(path: str) -> np.ndarray:
  """All of the first audio stream of any media file (wav, mp3, m4a, a video...) as 16 kHz mono
  float32. A file without a decodable audio stream is a UserError naming it."""
  _exists(path, "audio file")
  try:
    container = av.open(str(path))
  except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
    raise UserError(f"audio {path}: cannot open as a media file: {e}") from None
  try:
    if not container.streams.audio:
      raise UserError(f"audio {path}: the file has no audio stream")
    stream = container.streams.audio[0]
    planar = av.AudioResampler(format="fltp")  # native rate and layout, float planar [C, n]
    chunks, rate = [], None
    try:
      for frame in container.decode(stream):
        rate = rate or frame.sample_rate
        chunks += [out.to_ndarray() for out in planar.resample(frame)]
    except av.error.FFmpegError as e:
      if not chunks:
        raise UserError(f"audio {path}: the audio stream does not decode: {e}") from None
  finally:
    container.close()
  if not chunks:
    raise UserError(f"audio {path}: the audio stream has no samples")
  return to_mono_16k(np.concatenate(chunks, axis=1).T, rate).astype(np.float32)


def target_audio(info: decode.VideoInfo) -> np.ndarray:
  """The target video's own sound on the video's clock (time zero = its first frame)."""
  if not info.has_audio:
    raise UserError(f"target {info.path} has no audio track: pass the driving audio with --audio")
  try:
    return decode.read_audio(info.path, info=info)
  except decode.MediaError as e:
    raise UserError(str(e)) from None


def output_frames(video_frames: int, audio_samples: int, policy: str) -> int:
  """The output's length in frames under `policy` (module docstring)."""
  if policy not in AUDIO_POLICIES:
    raise UserError(f"unknown audio policy {policy!r}; choose one of {AUDIO_POLICIES}")
  audio_frames = int(np.ceil(audio_samples / SAMPLES_PER_FRAME))
  if policy == "trim":
    return min(video_frames, audio_frames)
  return video_frames


def fit_audio(audio: np.ndarray, num_frames: int, policy: str) -> np.ndarray:
  """16 kHz audio cut, looped or padded to exactly num_frames * 640 samples (module docstring)."""
  if policy not in AUDIO_POLICIES:
    raise UserError(f"unknown audio policy {policy!r}; choose one of {AUDIO_POLICIES}")
  n = num_frames * SAMPLES_PER_FRAME
  audio = np.asarray(audio, np.float32)
  if audio.size == 0:
    raise UserError("the driving audio is empty")
  if audio.size >= n:
    return audio[:n]
  if policy == "loop":
    return np.tile(audio, -(-n // audio.size))[:n]
  return np.pad(audio, (0, n - audio.size))   # pad (and trim's last partial frame)
