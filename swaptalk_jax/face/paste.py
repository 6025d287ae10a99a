"""Feathered paste-back of an (edited) aligned crop into its original frame."""
import functools

import cv2
import numpy as np

from swaptalk_jax.face import align


@functools.lru_cache(maxsize=8)
def feather_mask(size: int, feather: float = 0.1) -> np.ndarray:
  """float32 [size,size] weight: 1 inside, falling smoothly to 0 over `feather`*size at the edges."""
  width = max(1.0, feather * size)
  idx = np.arange(size, dtype=np.float32) + 0.5
  ramp = np.clip(np.minimum(idx, size - idx) / width, 0.0, 1.0)
  ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no visible seam where the ramp ends
  return np.outer(ramp, ramp).astype(np.float32)


def paste_back(frame: np.ndarray, crop: np.ndarray, crop_to_frame: np.ndarray,
               feather: float = 0.1) -> np.ndarray:
  """Blends `crop` [S,S,3] into a copy of `frame` [H,W,3] through the [2,3] crop->frame affine."""
  h, w = frame.shape[:2]
  size = crop.shape[0]
  m = np.asarray(crop_to_frame, np.float64)
  warped = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
  mask = cv2.warpAffine(feather_mask(size, feather), m, (w, h), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)[..., None]
  out = frame.astype(np.float32) * (1.0 - mask) + warped.astype(np.float32) * mask
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def crop_to_frame_map(frame_to_crop: np.ndarray, frame_scale: float = 1.0) -> np.ndarray:
  """[...,2,3] frame->crop affine of a decoded frame -> crop->original-frame affine.

  frame_scale: decoded pixels per original pixel (VideoInfo.scale) when frames were downscaled.
  """
  inv = align.invert_affine(np.asarray(frame_to_crop, np.float64))
  return (inv / frame_scale).astype(np.float32)
