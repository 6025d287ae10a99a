"""The face crops SyncNet scores: syncnet_python's track crop, given per-frame face boxes.

Per frame, half-size = max(box w, h) / 2 and the box centre, each median-filtered over the track
(kernel 13, zero-padded at the ends as scipy's medfilt does); the crop spans centre +-
half * (1 + crop_scale) horizontally and centre - half .. centre + half * (1 + 2 crop_scale)
vertically (so it reaches below the chin), on a frame padded with grey 110, resized to 224 x 224
with cv2's bilinear. syncnet_python takes its boxes from S3FD; boxes from another detector (dlib's
are tighter) shift the crop, which moves LSE-C/LSE-D somewhat, so say which detector was used.
"""
import cv2
import numpy as np
import scipy.signal

from swaptalk_jax.models import syncnet

CROP_SCALE = 0.4
SMOOTHING_KERNEL = 13
PAD_VALUE = 110


def syncnet_crops(frames_bgr: np.ndarray, boxes: np.ndarray, crop_scale: float = CROP_SCALE,
                  smoothing_kernel: int = SMOOTHING_KERNEL) -> np.ndarray:
  """Frames (T, H, W, 3) uint8 + boxes (T, 4) as (x1, y1, x2, y2) -> (T, 224, 224, 3) uint8 crops."""
  frames_bgr, boxes = np.asarray(frames_bgr), np.asarray(boxes, np.float64)
  if frames_bgr.ndim != 4 or boxes.shape != (len(frames_bgr), 4):
    raise ValueError(f"expected frames (T, H, W, 3) and boxes (T, 4), got {frames_bgr.shape} "
                     f"and {boxes.shape}")
  half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
  centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
  half, centre_x, centre_y = (scipy.signal.medfilt(v, smoothing_kernel)
                              for v in (half, centre_x, centre_y))
  size = syncnet.LIP_SIZE
  crops = np.empty((len(frames_bgr), size, size, 3), np.uint8)
  for i, frame in enumerate(frames_bgr):
    pad = int(half[i] * (1 + 2 * crop_scale))
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                value=(PAD_VALUE,) * 3)
    y, x = centre_y[i] + pad, centre_x[i] + pad
    top, bottom = int(y - half[i]), int(y + half[i] * (1 + 2 * crop_scale))
    left, right = int(x - half[i] * (1 + crop_scale)), int(x + half[i] * (1 + crop_scale))
    region = padded[top:bottom, left:right]
    if region.size == 0:
      raise ValueError(f"frame {i}: empty crop from box {boxes[i].tolist()}")
    crops[i] = cv2.resize(region, (size, size))
  return crops
