"""The 80-bin log-mel spectrogram (Wav2Lip convention) and its mapping to 25 fps video frames.

For a mono 16 kHz waveform x (defaults in `MelConfig`, PAPER_NOTES section 3):
  1. pre-emphasis        y[n] = x[n] - 0.97 x[n-1]            (y[0] = x[0])
  2. STFT magnitude      S[t, k] = |sum_m w[m] y[t*200 + m - 400] e^{-2 pi i k m / 800}|, w = periodic
                         Hann(800); y reflect-padded by n_fft/2 = 400 on both sides (centred frames,
                         as librosa.stft(center=True, pad_mode='reflect')) -> 1 + N // 200 steps.
  3. mel projection      M = S @ B^T, B = Slaney-scale, Slaney-area-normalised triangular filters,
                         80 bands over [55, 7600] Hz (equal to librosa.filters.mel(htk=False,
                         norm='slaney')).
  4. decibels            D = 20 log10(max(M, 1e-5)) - 20   (floor = min_level_db -100, ref 20 dB)
  5. normalisation       L = clip(8 * (D + 100) / 100 - 4, -4, 4)   (symmetric, max_abs_value 4)
Output float32 [num_steps, 80], time first. 16000 / 200 = 80 steps per second, so video frame i
(25 fps) starts at mel step floor(80 * i / 25) and a 5-frame window covers 16 steps.
"""
import dataclasses
import functools

import numpy as np


@dataclasses.dataclass(frozen=True)
class MelConfig:
  """Every constant of the front end; the defaults are PAPER_NOTES section 3 (Wav2Lip's hparams)."""
  sample_rate: int = 16000
  n_fft: int = 800
  hop_length: int = 200
  win_length: int = 800
  num_mels: int = 80
  fmin: float = 55.0
  fmax: float = 7600.0
  preemphasis: float = 0.97
  min_level_db: float = -100.0
  ref_level_db: float = 20.0
  max_abs_value: float = 4.0
  fps: int = 25
  window_frames: int = 5

  @property
  def steps_per_second(self) -> float:
    return self.sample_rate / self.hop_length

  @property
  def window_steps(self) -> int:
    """Mel steps in the `window_frames`-frame window (16 for the defaults)."""
    return num_steps_for_frames(self.window_frames, self)


DEFAULT = MelConfig()

# --- Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per 6.4x).
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
  """Slaney mel of frequencies in Hz."""
  hz = np.asarray(hz, np.float64)
  log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
  return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
  """Inverse of `hz_to_mel`."""
  mel = np.asarray(mel, np.float64)
  log_part = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
  return np.where(mel >= _MIN_LOG_MEL, log_part, mel * _F_SP)


def _filterbank64(config: MelConfig) -> np.ndarray:
  """Triangular filters with corners equally spaced in mel, each scaled to unit area (Slaney norm)."""
  fft_freqs = np.linspace(0.0, config.sample_rate / 2.0, 1 + config.n_fft // 2)
  corners = mel_to_hz(np.linspace(hz_to_mel(config.fmin), hz_to_mel(config.fmax), config.num_mels + 2))
  widths = np.diff(corners)
  to_corner = corners[:, None] - fft_freqs[None, :]
  rising = -to_corner[:-2] / widths[:-1, None]
  falling = to_corner[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(rising, falling))
  return weights * (2.0 / (corners[2:] - corners[:-2]))[:, None]


@functools.lru_cache(maxsize=8)
def _cached_filterbank64(config: MelConfig) -> np.ndarray:
  bank = _filterbank64(config)
  bank.setflags(write=False)
  return bank


def mel_filterbank(config: MelConfig = DEFAULT) -> np.ndarray:
  """float32 [num_mels, 1 + n_fft // 2] filter matrix (matches librosa.filters.mel, Slaney)."""
  return _cached_filterbank64(config).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _window(config: MelConfig) -> np.ndarray:
  """Periodic Hann of win_length, zero-padded to n_fft and centred (librosa's convention)."""
  n = config.win_length
  hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
  left = (config.n_fft - n) // 2
  window = np.zeros(config.n_fft)
  window[left:left + n] = hann
  window.setflags(write=False)
  return window


def preemphasize(wave: np.ndarray, coefficient: float) -> np.ndarray:
  """y[n] = x[n] - c x[n-1], y[0] = x[0] (a first-order FIR, zero initial state)."""
  wave = np.asarray(wave, np.float64)
  out = wave.copy()
  out[1:] -= coefficient * wave[:-1]
  return out


def stft_magnitude(wave: np.ndarray, config: MelConfig = DEFAULT) -> np.ndarray:
  """float64 [1 + N // hop, 1 + n_fft // 2] magnitudes of centred, reflect-padded Hann frames."""
  pad = config.n_fft // 2
  padded = np.pad(np.asarray(wave, np.float64), pad, mode="reflect")
  frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft)[::config.hop_length]
  return np.abs(np.fft.rfft(frames * _window(config), axis=-1))


def _check_wave(wave: np.ndarray) -> np.ndarray:
  wave = np.asarray(wave)
  if wave.ndim != 1:
    raise ValueError(f"log_mel needs a mono [N] 16 kHz waveform (use to_mono_16k), got {wave.shape}")
  if wave.size < 2:
    raise ValueError(f"log_mel needs at least 2 samples, got {wave.size}")
  if not np.issubdtype(wave.dtype, np.floating):
    raise ValueError(f"log_mel needs a float waveform (use to_mono_16k), got {wave.dtype}")
  if not np.all(np.isfinite(wave)):
    raise ValueError("log_mel input contains NaN or Inf samples")
  return wave


def log_mel(wave16k: np.ndarray, config: MelConfig = DEFAULT) -> np.ndarray:
  """float32 [1 + N // hop, num_mels] normalised log-mel in [-max_abs, max_abs] (module docstring)."""
  wave = _check_wave(wave16k)
  magnitude = stft_magnitude(preemphasize(wave, config.preemphasis), config)
  mel = magnitude @ _cached_filterbank64(config).T
  floor = 10.0 ** (config.min_level_db / 20.0)
  db = 20.0 * np.log10(np.maximum(mel, floor)) - config.ref_level_db
  m = config.max_abs_value
  normalised = np.clip(2.0 * m * (db - config.min_level_db) / -config.min_level_db - m, -m, m)
  return normalised.astype(np.float32)


def num_steps_for_frames(num_frames: int, config: MelConfig = DEFAULT) -> int:
  """Mel steps spanned by `num_frames` video frames: floor(num_frames * 80 / 25) (16 for 5)."""
  return (num_frames * config.sample_rate) // (config.hop_length * config.fps)


def mel_start_for_frame(frame_index: int, config: MelConfig = DEFAULT) -> int:
  """First mel step of video frame i: floor(80 * i / 25), in exact integer arithmetic."""
  return (int(frame_index) * config.sample_rate) // (config.hop_length * config.fps)


def mel_window(mel: np.ndarray, start_frame: int, num_frames: int | None = None,
               config: MelConfig = DEFAULT) -> np.ndarray:
  """The [num_steps_for_frames(num_frames), num_mels] slice aligned with frames start_frame.. .

  Steps before 0 or past the end repeat the first/last step (edge replication), so windows at a
  clip's ends keep their shape; `num_frames` defaults to config.window_frames (5 -> 16 steps).
  """
  if mel.ndim != 2 or mel.shape[0] == 0:
    raise ValueError(f"mel must be a non-empty [num_steps, num_mels] array, got {mel.shape}")
  num_frames = config.window_frames if num_frames is None else num_frames
  start = mel_start_for_frame(start_frame, config)
  steps = np.clip(np.arange(start, start + num_steps_for_frames(num_frames, config)), 0,
                  mel.shape[0] - 1)
  return mel[steps]
