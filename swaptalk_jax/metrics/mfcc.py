"""SyncNet's audio front end: python_speech_features-style MFCC in numpy (what syncnet_python runs).

Defaults are that library's and syncnet_python uses them unchanged: 25 ms frames every 10 ms, no
window function, pre-emphasis 0.97, 512-point power spectrum / 512, 26 triangular mel filters on
0..sr/2 with FFT-bin edges floor((nfft + 1) * hz / sr), log, orthonormal DCT-II, first 13 kept,
sinusoidal lifter 22, coefficient 0 replaced by the log frame energy. The signal is used on the
scale it comes in: syncnet_python feeds int16 sample values, and that scale moves coefficient 0.
"""
import math

import numpy as np
import scipy.fft

_EPS = np.finfo(np.float64).eps


def _round_half_up(x: float) -> int:
  whole = math.floor(x)
  return int(whole + (1 if x - whole >= 0.5 else 0))


def hz_to_mel(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
  return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(num_filters: int = 26, nfft: int = 512, sample_rate: int = 16000,
                   low_hz: float = 0.0, high_hz: float = None) -> np.ndarray:
  """(num_filters, nfft // 2 + 1) triangles between mel-spaced FFT bins (HTK-style mel)."""
  high_hz = sample_rate / 2 if high_hz is None else high_hz
  if high_hz > sample_rate / 2:
    raise ValueError(f"high_hz {high_hz} is above the Nyquist frequency {sample_rate / 2}")
  mels = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_filters + 2)
  edges = np.floor((nfft + 1) * mel_to_hz(mels) / sample_rate)
  left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  bins = np.arange(nfft // 2 + 1, dtype=np.float64)[None, :]
  rising = (bins - left) / np.where(centre > left, centre - left, 1.0)
  falling = (right - bins) / np.where(right > centre, right - centre, 1.0)
  return np.where((bins >= left) & (bins < centre), rising,
                  np.where((bins >= centre) & (bins < right), falling, 0.0))


def frame_signal(signal: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
  """(num_frames, frame_length) frames; the tail is zero-padded so every sample is covered."""
  n = len(signal)
  num_frames = 1 if n <= frame_length else 1 + math.ceil((n - frame_length) / frame_step)
  padded = np.zeros((num_frames - 1) * frame_step + frame_length, np.float64)
  padded[:n] = signal
  starts = np.arange(num_frames)[:, None] * frame_step
  return padded[starts + np.arange(frame_length)[None, :]]


def mfcc(signal, sample_rate: int = 16000, window_s: float = 0.025, step_s: float = 0.01,
         num_coeffs: int = 13, num_filters: int = 26, nfft: int = 512, preemphasis: float = 0.97,
         lifter: int = 22, append_energy: bool = True) -> np.ndarray:
  """1-D signal -> (num_frames, num_coeffs) MFCCs, float64, 100 frames/s at the defaults."""
  signal = np.asarray(signal, np.float64)
  if signal.ndim != 1:
    raise ValueError(f"expected a mono 1-D signal, got shape {signal.shape}")
  if signal.size == 0:
    raise ValueError("empty audio signal")
  emphasised = np.concatenate([signal[:1], signal[1:] - preemphasis * signal[:-1]])
  frame_length = _round_half_up(window_s * sample_rate)
  frames = frame_signal(emphasised, frame_length, _round_half_up(step_s * sample_rate))
  power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
  energy = power.sum(axis=1)
  energy = np.where(energy == 0, _EPS, energy)
  banks = power @ mel_filterbank(num_filters, nfft, sample_rate).T
  banks = np.where(banks == 0, _EPS, banks)
  cepstra = scipy.fft.dct(np.log(banks), type=2, axis=1, norm="ortho")[:, :num_coeffs]
  if lifter > 0:
    cepstra = cepstra * (1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(num_coeffs) / lifter))
  if append_energy:
    cepstra[:, 0] = np.log(energy)
  return cepstra
