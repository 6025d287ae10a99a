"""Seeded head motion and blinks for one clip at 25 fps.

Each pose channel is a sum of three sinusoids with random low frequencies (0.05-0.6 Hz) and phases,
so it is smooth and never repeats within a clip. Blinks arrive every 1.5-6 s and close the eyelids
over five frames.
"""
import dataclasses

import numpy as np

FPS = 25
_BLINK_PROFILE = np.array([0.45, 0.9, 1.0, 0.65, 0.25], np.float32)


@dataclasses.dataclass(frozen=True)
class Motion:
  """Per-frame head pose and eyelid closure; all float32 [T].

  yaw/pitch/roll in radians (yaw > 0 turns the face to the image right, pitch > 0 nods down,
  roll > 0 tilts clockwise); shift_x/shift_y: translation as a fraction of the frame size;
  scale: multiplies the face size; blink: 0 open .. 1 closed.
  """
  yaw: np.ndarray
  pitch: np.ndarray
  roll: np.ndarray
  shift_x: np.ndarray
  shift_y: np.ndarray
  scale: np.ndarray
  blink: np.ndarray

  @property
  def num_frames(self) -> int:
    return int(self.yaw.shape[0])

  def as_array(self) -> np.ndarray:
    """float32 [T, 7]: yaw, pitch, roll, shift_x, shift_y, scale, blink."""
    return np.stack([self.yaw, self.pitch, self.roll, self.shift_x, self.shift_y, self.scale,
                     self.blink], axis=1).astype(np.float32)

  @classmethod
  def from_array(cls, array: np.ndarray) -> "Motion":
    """Inverse of `as_array` (e.g. from a clip's 'head_motion' extra)."""
    array = np.asarray(array, np.float32)
    if array.ndim != 2 or array.shape[1] != 7:
      raise ValueError(f"head motion must be [T, 7], got {array.shape}")
    return cls(*(np.ascontiguousarray(array[:, i]) for i in range(7)))


def _smooth_wave(t: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
  """Sum of three random low-frequency sinusoids, peak |value| <= amplitude."""
  freqs = rng.uniform(0.05, 0.6, 3)
  phases = rng.uniform(0, 2 * np.pi, 3)
  weights = rng.dirichlet(np.ones(3))
  return amplitude * (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)


def _blinks(num_frames: int, rng: np.random.Generator) -> np.ndarray:
  blink = np.zeros(num_frames, np.float32)
  start = rng.uniform(0.2, 4.0) * FPS
  while start < num_frames:
    first = int(start)
    n = min(len(_BLINK_PROFILE), num_frames - first)
    blink[first:first + n] = _BLINK_PROFILE[:n]
    start += rng.uniform(1.5, 6.0) * FPS
  return blink


def sample_motion(num_frames: int, rng: np.random.Generator) -> Motion:
  """Head pose within about +-14 deg yaw, +-8 deg pitch, +-6 deg roll, +-3% shift, +-5% scale."""
  t = np.arange(num_frames) / FPS
  deg = np.pi / 180.0
  f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
  return Motion(
      yaw=f32(_smooth_wave(t, 14 * deg, rng)),
      pitch=f32(_smooth_wave(t, 8 * deg, rng)),
      roll=f32(_smooth_wave(t, 6 * deg, rng)),
      shift_x=f32(_smooth_wave(t, 0.03, rng)),
      shift_y=f32(_smooth_wave(t, 0.03, rng)),
      scale=f32(1.0 + _smooth_wave(t, 0.05, rng)),
      blink=_blinks(num_frames, rng))
