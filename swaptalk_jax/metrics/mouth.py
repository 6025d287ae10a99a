"""Mouth opening per frame from 68-point landmarks (dlib / iBUG 300-W order), and how well a clip's
opening follows the ground truth's (Pearson correlation over the clip).

opening = mean distance of the three facing lip-point pairs / face size:
- `inner` (default): inner lips 61-67, 62-66, 63-65 (0 when the lips touch);
- `outer`: outer lips 50-58, 51-57, 52-56 (lip thickness included; never 0).
Face size = the distance between the eye centres (interocular, from the same landmarks), so the
figure does not depend on the crop size or the face's distance to the camera.
Measured with dlib's predictor on the synthetic test renders (64 px crops upsampled to 256, fixed
face box; 2 clips of 75 frames, correlation with the renderer's exact openness): inner 0.62-0.63,
outer 0.80-0.83 (on the cartoon faces dlib places the outer lip contour more reliably); on the
renderer's exact landmarks both are >= 0.999.
"""
import numpy as np

from swaptalk_jax.errors import UserError

PAIRS = {
    "inner": ((61, 67), (62, 66), (63, 65)),
    "outer": ((50, 58), (51, 57), (52, 56)),
}
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


def check_landmarks(landmarks, name: str = "landmarks") -> np.ndarray:
  """float64 [..., 68, 2] finite landmarks, or one clear ValueError."""
  landmarks = np.asarray(landmarks, np.float64)
  if landmarks.ndim < 2 or landmarks.shape[-2:] != (68, 2):
    raise UserError(f"{name}: expected 68-point landmarks [..., 68, 2], got {landmarks.shape}")
  if not np.all(np.isfinite(landmarks)):
    raise UserError(f"{name}: contains NaN or Inf")
  return landmarks


def face_size(landmarks) -> np.ndarray:
  """[..., 68, 2] -> [...] distance between the eye centres."""
  landmarks = check_landmarks(landmarks)
  left = landmarks[..., LEFT_EYE, :].mean(-2)
  right = landmarks[..., RIGHT_EYE, :].mean(-2)
  return np.linalg.norm(right - left, axis=-1)


def mouth_opening(landmarks, lips: str = "inner") -> np.ndarray:
  """[..., 68, 2] -> [...] lip-pair distance / interocular distance (see the module docstring)."""
  if lips not in PAIRS:
    raise UserError(f"lips must be one of {sorted(PAIRS)}, got {lips!r}")
  landmarks = check_landmarks(landmarks)
  top, bottom = (list(p) for p in zip(*PAIRS[lips]))
  gap = np.linalg.norm(landmarks[..., top, :] - landmarks[..., bottom, :], axis=-1).mean(-1)
  size = face_size(landmarks)
  if np.any(size <= 0):
    raise UserError("landmarks with coincident eye centres (face size 0)")
  return gap / size


def pearson(a, b, name: str = "mouth opening") -> float:
  """Pearson correlation of two equal-length series (>= 3 values, neither constant)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.ndim != 1 or a.shape != b.shape:
    raise UserError(f"{name}: series must be 1-D and of equal length, got {a.shape} and {b.shape}")
  if a.size < 3:
    raise UserError(f"{name}: correlation needs at least 3 frames, got {a.size}")
  if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
    raise UserError(f"{name}: contains NaN or Inf")
  a, b = a - a.mean(), b - b.mean()
  denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
  if denom == 0:
    raise UserError(f"{name}: a constant series has no correlation (the mouth never moves)")
  return float(np.sum(a * b) / denom)


def opening_correlation(generated_landmarks, truth_landmarks, lips: str = "inner") -> float:
  """Pearson correlation over a clip of generated vs ground-truth mouth opening ([T, 68, 2] each)."""
  g = check_landmarks(generated_landmarks, "generated landmarks")
  t = check_landmarks(truth_landmarks, "ground-truth landmarks")
  if g.shape != t.shape or g.ndim != 3:
    raise UserError(f"generated landmarks {g.shape} and ground truth {t.shape} must both be "
                     "[T, 68, 2] with the same T")
  return pearson(mouth_opening(g, lips), mouth_opening(t, lips))
