"""LSE-C / LSE-D: SyncNet's audio-visual offset search, as syncnet_python's `evaluate` runs it.

For each 5-frame lip window i and each shift s in [-vshift, vshift], the distance between the lip
embedding i and the audio embedding i + s (zero vectors beyond either end, as the reference pads)
is ||lip - audio + 1e-6||_2 (torch's pairwise_distance). Averaging over windows gives one curve
over shifts: LSE-D is its minimum, LSE-C its median minus that minimum, and the AV offset is
vshift - argmin. Video 25 fps and audio 16 kHz, so one frame = 640 samples = 4 MFCC steps.
"""
import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from swaptalk_jax.metrics import mfcc as mfcc_lib
from swaptalk_jax.models import syncnet

VIDEO_FPS = 25
SAMPLE_RATE = 16000
MFCC_STEPS_PER_FRAME = 4
DEFAULT_VSHIFT = 15
PAIRWISE_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class SyncScores:
  """One clip's LSE-C (`confidence`), LSE-D (`min_distance`) and AV offset in frames.

  offset k > 0: lip window i matches audio window i - k best, i.e. the audio leads the video.
  """
  offset: int
  confidence: float
  min_distance: float


def shifted_distances(lip: np.ndarray, audio: np.ndarray,
                      vshift: int = DEFAULT_VSHIFT) -> np.ndarray:
  """(N, 2 * vshift + 1) distances of lip window i to audio window i + s for s = -vshift..vshift."""
  lip, audio = np.asarray(lip, np.float64), np.asarray(audio, np.float64)
  if lip.shape != audio.shape or lip.ndim != 2:
    raise ValueError(f"expected equal (N, D) embeddings, got {lip.shape} and {audio.shape}")
  n = lip.shape[0]
  padded = np.pad(audio, ((vshift, vshift), (0, 0)))
  columns = [np.linalg.norm(lip - padded[s:s + n] + PAIRWISE_EPS, axis=-1)  # (N, D) at a time
             for s in range(2 * vshift + 1)]
  return np.stack(columns, axis=1)


def scores_from_distances(distances: np.ndarray, vshift: int = DEFAULT_VSHIFT) -> SyncScores:
  """Offset, confidence (median - min of the window-averaged curve) and min distance."""
  curve = np.asarray(distances, np.float64).mean(axis=0)
  if curve.shape != (2 * vshift + 1,):
    raise ValueError(f"expected distances over {2 * vshift + 1} shifts, got {distances.shape}")
  best = int(np.argmin(curve))
  return SyncScores(offset=vshift - best, confidence=float(np.median(curve) - curve[best]),
                    min_distance=float(curve[best]))


def num_windows(num_frames: int, num_samples: int) -> int:
  """Windows syncnet_python scores: min(frames, samples / 640) - 5 (it leaves the last one out)."""
  return min(num_frames, num_samples // (SAMPLE_RATE // VIDEO_FPS)) - syncnet.LIP_FRAMES


def mfcc_windows(coeffs: np.ndarray, count: int) -> np.ndarray:
  """(T, 13) MFCCs -> (count, 13, 20): window i starts at step 4 i (frame i at 25 fps)."""
  starts = np.arange(count) * MFCC_STEPS_PER_FRAME
  if count and starts[-1] + syncnet.MFCC_STEPS > coeffs.shape[0]:
    raise ValueError(f"{coeffs.shape[0]} MFCC steps are too few for {count} windows")
  index = starts[:, None] + np.arange(syncnet.MFCC_STEPS)[None, :]
  return np.transpose(coeffs[index], (0, 2, 1)).astype(np.float32)


def lip_windows(frames: np.ndarray, start: int, stop: int) -> np.ndarray:
  """Frames (T, H, W, 3) -> (stop - start, 5, H, W, 3) float32 windows starting at start..stop-1."""
  index = np.arange(start, stop)[:, None] + np.arange(syncnet.LIP_FRAMES)[None, :]
  return frames[index].astype(np.float32)


def make_embedders(variables: Any, dtype=np.float32) -> tuple[Callable, Callable]:
  """Jitted (embed_lip, embed_audio) closures over converted SyncNet variables."""
  model = syncnet.SyncNet(dtype=dtype)
  embed_lip = jax.jit(lambda v, x: model.apply(v, x, method=syncnet.SyncNet.embed_lip))
  embed_audio = jax.jit(lambda v, x: model.apply(v, x, method=syncnet.SyncNet.embed_audio))
  return (lambda x: np.asarray(embed_lip(variables, x)),
          lambda x: np.asarray(embed_audio(variables, x)))


def _fixed_batch(fn: Callable, x: np.ndarray, batch_size: int) -> np.ndarray:
  """fn on x zero-padded to batch_size rows (one compiled shape for every batch), unpadded."""
  n = x.shape[0]
  if n < batch_size:
    x = np.concatenate([x, np.zeros((batch_size - n,) + x.shape[1:], x.dtype)])
  return fn(x)[:n]


def evaluate_clip(embedders: tuple[Callable, Callable], frames_bgr: np.ndarray,
                  audio_int16: np.ndarray, vshift: int = DEFAULT_VSHIFT,
                  batch_size: int = 20) -> SyncScores:
  """Scores one clip: 25 fps 224x224 BGR face crops (uint8, as cv2 reads them) + 16 kHz int16 audio.

  The crops should be made as syncnet_python makes them (`metrics.syncnet_crop.syncnet_crops`).
  The audio must be int16 samples (what syncnet_python reads from its pcm_s16le wav): their scale
  enters the MFCC energy term, so float audio in [-1, 1] would give different embeddings.
  """
  frames_bgr, audio_int16 = np.asarray(frames_bgr), np.asarray(audio_int16)
  if audio_int16.dtype != np.int16 or audio_int16.ndim != 1:
    raise TypeError(f"audio must be mono int16 samples at {SAMPLE_RATE} Hz, got "
                    f"{audio_int16.dtype} {audio_int16.shape}; scale float audio by 32768 first")
  size = syncnet.LIP_SIZE
  if frames_bgr.ndim != 4 or frames_bgr.shape[1:] != (size, size, 3):
    raise ValueError(f"expected frames (T, {size}, {size}, 3), got {frames_bgr.shape}")
  count = num_windows(len(frames_bgr), len(audio_int16))
  if count < 1:
    raise ValueError(f"clip too short for SyncNet: {len(frames_bgr)} frames, "
                     f"{len(audio_int16)} samples")
  embed_lip, embed_audio = embedders
  windows = mfcc_windows(mfcc_lib.mfcc(audio_int16, SAMPLE_RATE), count)
  lip, audio = [], []
  for start in range(0, count, batch_size):
    stop = min(count, start + batch_size)
    lip.append(_fixed_batch(embed_lip, lip_windows(frames_bgr, start, stop), batch_size))
    audio.append(_fixed_batch(embed_audio, windows[start:stop], batch_size))
  distances = shifted_distances(np.concatenate(lip), np.concatenate(audio), vshift)
  return scores_from_distances(distances, vshift)
