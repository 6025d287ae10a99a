"""Any waveform (mono or multi-channel, any sample rate, float or integer PCM) to mono float32 16 kHz.

Resampling is scipy's polyphase FIR (`resample_poly`, Kaiser window, anti-aliased) at the reduced
ratio up/down = 16000/sr, trimmed to round(N * 16000 / sr) samples so lengths are predictable.
"""
import math

import numpy as np
from scipy import signal

TARGET_RATE = 16000


def _as_float(wave: np.ndarray) -> np.ndarray:
  """Integer PCM scaled to [-1, 1) by its dtype's range; floats kept as they are (float64)."""
  if np.issubdtype(wave.dtype, np.integer):
    info = np.iinfo(wave.dtype)
    if info.min == 0:  # unsigned PCM (e.g. 8-bit WAV) is offset by half its range.
      half = (int(info.max) + 1) / 2
      return (wave.astype(np.float64) - half) / half
    return wave.astype(np.float64) / float(-int(info.min))
  if np.issubdtype(wave.dtype, np.floating):
    return wave.astype(np.float64)
  raise ValueError(f"audio must be a float or integer array, got dtype {wave.dtype}")


def to_mono(wave: np.ndarray) -> np.ndarray:
  """[N] or [N, C] (samples first) -> [N] float64, channels averaged."""
  wave = np.asarray(wave)
  if wave.ndim not in (1, 2):
    raise ValueError(f"audio must be [N] or [N, C] (samples first), got shape {wave.shape}")
  if wave.size == 0:
    raise ValueError(f"audio is empty (shape {wave.shape})")
  if wave.ndim == 2 and wave.shape[1] > wave.shape[0]:
    raise ValueError(f"audio of shape {wave.shape} looks channels-first [C, N]; pass [N, C] "
                     "(e.g. PyAV's planar to_ndarray() output transposed)")
  wave = _as_float(wave)
  if not np.all(np.isfinite(wave)):
    raise ValueError("audio contains NaN or Inf samples")
  return wave if wave.ndim == 1 else wave.mean(axis=1)


def resampled_length(num_samples: int, sample_rate: int, target_rate: int = TARGET_RATE) -> int:
  """Length after resampling: round(N * target / sr)."""
  return int(round(num_samples * target_rate / sample_rate))


def resample(wave: np.ndarray, sample_rate: int, target_rate: int = TARGET_RATE) -> np.ndarray:
  """Mono float waveform from `sample_rate` to `target_rate` (polyphase, anti-aliased)."""
  if int(sample_rate) != sample_rate or sample_rate <= 0:
    raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
  sample_rate = int(sample_rate)
  if sample_rate == target_rate:
    return wave
  g = math.gcd(sample_rate, target_rate)
  up, down = target_rate // g, sample_rate // g
  out = signal.resample_poly(wave, up, down)
  # resample_poly returns ceil(N*up/down) samples; ceil >= round, so trimming is enough.
  return out[:resampled_length(wave.shape[0], sample_rate, target_rate)]


def to_mono_16k(wave: np.ndarray, sample_rate: int) -> np.ndarray:
  """Any [N] / [N, C] waveform at `sample_rate` -> float32 [round(N*16000/sr)] mono at 16 kHz.

  Integer PCM is scaled to [-1, 1); float input keeps its scale. Raises ValueError on empty,
  non-finite or badly shaped input and on a non-positive sample rate.
  """
  mono = to_mono(wave)
  out = resample(mono, sample_rate, TARGET_RATE)
  if out.shape[0] == 0:
    raise ValueError(f"audio of {mono.shape[0]} samples at {sample_rate} Hz is shorter than one "
                     "sample at 16 kHz")
  return out.astype(np.float32)
