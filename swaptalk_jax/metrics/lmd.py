"""LMD (landmark distance of the mouth, Chen et al. 2018), the paper's self-driven lip-shape column,
and the 68-point landmarks of face crops it is computed from (also used for mouth opening).

Convention: inputs are aligned square face crops (what the pipeline generates before paste-back,
and the dataset's crops); each is resized (bicubic) to LMD_SIZE = 256 px, dlib's 68-point predictor
runs in a face box, and LMD is the mean Euclidean distance of the 20 mouth points (48-67) between a
generated frame and its ground-truth frame, IN PIXELS OF THE 256-PX CROP, averaged over the clip's
frames. No further alignment or scale normalisation: crops are aligned already, and a fixed crop
size makes the pixel figure comparable across datasets (HDTF papers report it on 256-px crops).
The face box is found once on the ground-truth frame (dlib HOG, or a fixed fraction of the crop,
e.g. identity_preservation.SYNTHETIC_FACE_BOX for the synthetic renders) and the SAME box is used
for the generated frame, so a generated face that the detector would miss still gets landmarks.
Measured on the synthetic test renders at 64 px: dlib's mouth points sit ~1.0 crop px (~4 px at
256) from the renderer's exact ones, so LMD has a noise floor of a few 256-px pixels there.
"""
import functools
from typing import Sequence

import cv2
import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.face import landmarks as face_landmarks
from swaptalk_jax.metrics import identity_preservation

LMD_SIZE = 256
MOUTH = slice(48, 68)
NoFaceError = face_landmarks.NoFaceError


@functools.lru_cache(maxsize=1)
def default_predictor() -> face_landmarks.LandmarkPredictor:
  """dlib's 68-point predictor, loaded once per process."""
  return face_landmarks.LandmarkPredictor()


def as_crops(frames, name: str) -> np.ndarray:
  """uint8 [T, S, S, 3] (uint8, or float in [-1, 1]) square face crops, resized to LMD_SIZE."""
  frames = identity_preservation.to_uint8(frames, name)
  if frames.shape[1] != frames.shape[2]:
    raise UserError(f"{name}: LMD takes square aligned face crops [T, S, S, 3], got {frames.shape}")
  if frames.shape[1] == LMD_SIZE:
    return frames
  return np.stack([cv2.resize(f, (LMD_SIZE, LMD_SIZE), interpolation=cv2.INTER_CUBIC)
                   for f in frames])


def face_boxes(crops: np.ndarray, face_box: Sequence[float] | None, name: str) -> np.ndarray:
  """float32 [T, 4] boxes (x0, y0, x1, y1) in LMD_SIZE pixels: the fixed fraction `face_box`, or
  dlib's detection on each crop (NoFaceError naming the frame when there is none)."""
  if face_box is not None:
    x0, y0, x1, y1 = (float(v) for v in face_box)
    if not 0.0 <= x0 < x1 <= 1.0 or not 0.0 <= y0 < y1 <= 1.0:
      raise UserError(f"face_box must be fractions (x0, y0, x1, y1) with 0 <= x0 < x1 <= 1 and "
                       f"0 <= y0 < y1 <= 1, got {tuple(face_box)}")
    return np.tile(np.array([x0, y0, x1, y1], np.float32) * LMD_SIZE, (len(crops), 1))
  boxes = []
  for i, crop in enumerate(crops):
    try:
      boxes.append(face_landmarks.largest_face(crop))
    except NoFaceError:
      raise NoFaceError(f"{name}: no face detected in frame {i} of {len(crops)} (crops resized to "
                        f"{LMD_SIZE} px); pass a fixed face_box for aligned crops") from None
  return np.stack(boxes).astype(np.float32)


def crop_landmarks(frames, face_box: Sequence[float] | None = None, boxes=None,
                   name: str = "frames", predictor=None) -> tuple[np.ndarray, np.ndarray]:
  """(landmarks float64 [T, 68, 2] in LMD_SIZE pixels, boxes [T, 4]) of square face crops.

  boxes (LMD_SIZE pixels, one per frame) take precedence over face_box; neither: dlib detection.
  """
  crops = as_crops(frames, name)
  if boxes is None:
    boxes = face_boxes(crops, face_box, name)
  boxes = np.asarray(boxes, np.float32)
  if boxes.shape != (len(crops), 4):
    raise UserError(f"{name}: expected one box per frame [{len(crops)}, 4], got {boxes.shape}")
  predictor = predictor or default_predictor()
  landmarks = np.stack([predictor(c, b) for c, b in zip(crops, boxes)]).astype(np.float64)
  return landmarks, boxes


def mouth_distances(generated_landmarks, truth_landmarks) -> np.ndarray:
  """[T] mean distance of the 20 mouth points per frame ([T, 68, 2] each, same pixels)."""
  g = np.asarray(generated_landmarks, np.float64)
  t = np.asarray(truth_landmarks, np.float64)
  if g.shape != t.shape or g.ndim != 3 or g.shape[1:] != (68, 2):
    raise UserError(f"generated landmarks {g.shape} and ground truth {t.shape} must both be "
                     "[T, 68, 2] with the same T")
  return np.linalg.norm(g[:, MOUTH] - t[:, MOUTH], axis=-1).mean(-1)


def lmd(generated, truth, face_box: Sequence[float] | None = None, predictor=None) -> dict:
  """LMD of one clip: generated and ground-truth crops [T, S, S, 3] (same T; sizes may differ).

  Returns dict(lmd: float (256-px pixels), per_frame: [T], generated_landmarks, truth_landmarks).
  """
  generated, truth = np.asarray(generated), np.asarray(truth)
  if generated.ndim != 4 or truth.ndim != 4 or len(generated) != len(truth):
    raise UserError(f"LMD needs frame sequences [T, S, S, 3] of equal length, got generated "
                     f"{generated.shape} and ground truth {truth.shape}")
  truth_lm, boxes = crop_landmarks(truth, face_box, name="ground truth", predictor=predictor)
  gen_lm, _ = crop_landmarks(generated, boxes=boxes, name="generated", predictor=predictor)
  per_frame = mouth_distances(gen_lm, truth_lm)
  return dict(lmd=float(per_frame.mean()), per_frame=per_frame, generated_landmarks=gen_lm,
              truth_landmarks=truth_lm)
