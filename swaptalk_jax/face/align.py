"""Similarity alignment of a face to a canonical template, the crop, and its inverse transform.

The template places 5 points (eye centres, nose tip, mouth corners; from the 68 landmarks) at fixed
fractions of a square crop: eyes on row 0.40 with 0.27 crop widths between them, so eyes and brows
fall in the upper half and nose tip, mouth and chin in the lower half of the VQGAN's half split. The
point layout is the ArcFace 112-px template's, rescaled. A weighted least-squares similarity
(rotation, uniform scale, translation) maps frame points to template points; mouth corners get less
weight so the crop does not bob with speech. Over time the 5 points are Gaussian-smoothed before the
fit (within one scene), which removes landmark jitter without lagging real head motion.
"""
import dataclasses

import cv2
import numpy as np
from scipy import ndimage

from swaptalk_jax.face import landmarks as lm

# ArcFace 5-point template in its 112x112 crop (eye centres, nose tip, mouth corners).
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


@dataclasses.dataclass(frozen=True)
class AlignConfig:
  size: int = 256                 # crop side in pixels (512 for the high-resolution variant)
  eye_row: float = 0.40           # eye-centre row as a fraction of the crop
  eye_distance: float = 0.27      # distance between eye centres as a fraction of the crop
  point_weights: tuple = (1.0, 1.0, 1.0, 0.5, 0.5)
  smooth_sigma: float = 1.5       # frames; 0 disables temporal smoothing


def template(config: AlignConfig = AlignConfig()) -> np.ndarray:
  """float64 [5,2] crop-pixel positions of the alignment points."""
  eyes = _ARCFACE_112[:2].mean(0)
  d = np.linalg.norm(_ARCFACE_112[1] - _ARCFACE_112[0])
  unit = (_ARCFACE_112 - eyes) / d * config.eye_distance + np.array([0.5, config.eye_row])
  return unit * config.size


def fit_similarity(src: np.ndarray, dst: np.ndarray, weights=None) -> np.ndarray:
  """Weighted least-squares similarity [2,3] with dst ~= M @ [src; 1]. src, dst: [K,2]."""
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
  x, y = src[:, 0], src[:, 1]
  one, zero = np.ones_like(x), np.zeros_like(x)
  # Unknowns (a, b, tx, ty): u = a x - b y + tx, v = b x + a y + ty.
  rows = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
  rhs = np.concatenate([dst[:, 0], dst[:, 1]])
  sw = np.sqrt(np.concatenate([w, w]))
  (a, b, tx, ty), *_ = np.linalg.lstsq(rows * sw[:, None], rhs * sw, rcond=None)
  return np.array([[a, -b, tx], [b, a, ty]], np.float64)


def invert_affine(m: np.ndarray) -> np.ndarray:
  """[...,2,3] affine -> its inverse [...,2,3]."""
  a = m[..., :2]
  inv = np.linalg.inv(a)
  return np.concatenate([inv, -(inv @ m[..., 2:])], axis=-1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
  """[2,3] (or [T,2,3]) affine applied to points [...,K,2]."""
  return points @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def smooth_points(points: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian smoothing along time (axis 0) of [T,K,2] points; edges reflect."""
  if sigma <= 0 or points.shape[0] < 2:
    return points
  return ndimage.gaussian_filter1d(points.astype(np.float64), sigma, axis=0, mode="nearest")


def frame_to_crop_transforms(landmarks: np.ndarray, config: AlignConfig = AlignConfig()) -> np.ndarray:
  """[T,68,2] landmarks of one continuous shot -> float64 [T,2,3] frame->crop similarities."""
  if not np.isfinite(landmarks).all():
    raise ValueError("landmarks contain NaN (frames without a face): align one face segment at a time")
  pts = smooth_points(lm.five_points(landmarks), config.smooth_sigma)
  dst = template(config)
  return np.stack([fit_similarity(p, dst, config.point_weights) for p in pts])


def warp_to_crop(frame: np.ndarray, frame_to_crop: np.ndarray, size: int) -> np.ndarray:
  """Cuts the aligned crop [size,size,3] out of `frame` with a [2,3] frame->crop affine.

  When the crop shrinks the face by more than 1.5x, the covered region is first reduced with area
  averaging, so large faces (1080p, 4K) are not aliased by bilinear sampling.
  """
  m = np.asarray(frame_to_crop, np.float64)
  scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
  if scale < 1 / 1.5:
    corners = apply_affine(invert_affine(m), np.array([[0, 0], [size, 0], [0, size], [size, size]],
                                                      np.float64))
    h, w = frame.shape[:2]
    x0, y0 = np.floor(np.clip(corners.min(0) - 2, 0, [w, h])).astype(int)
    x1, y1 = np.ceil(np.clip(corners.max(0) + 2, 0, [w, h])).astype(int)
    if x1 - x0 >= 2 and y1 - y0 >= 2:
      region = frame[y0:y1, x0:x1]
      rw, rh = max(1, round((x1 - x0) * scale * 1.25)), max(1, round((y1 - y0) * scale * 1.25))
      small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
      # small pixel -> frame pixel: p * region/small + offset
      sx, sy = (x1 - x0) / rw, (y1 - y0) / rh
      small_to_frame = np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5]])
      m = m[:, :2] @ small_to_frame[:, :2], m[:, :2] @ small_to_frame[:, 2:] + m[:, 2:]
      m = np.concatenate(m, axis=1)
      frame = small
  return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
