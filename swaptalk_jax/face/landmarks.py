"""68-point landmarks (dlib's iBUG-300W predictor) and the points derived from them.

Index groups (dlib order): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47 (left of image 36-41),
outer lips 48-59, inner lips 60-67.
"""
import numpy as np

from swaptalk_jax.face import models

LEFT_EYE = slice(36, 42)   # the eye on the image's left
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


class LandmarkPredictor:
  """Runs the 68-point shape predictor inside a face box."""

  def __init__(self, model_file: str | None = None):
    import dlib  # pylint: disable=g-import-not-at-top
    self._dlib = dlib
    self._predictor = models.shape_predictor(models.model_path(models.LANDMARKS_68, model_file))

  def __call__(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """RGB uint8 [H,W,3], box (x0, y0, x1, y1) -> float32 [68,2] (x, y) frame pixels."""
    x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
    shape = self._predictor(frame, self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def five_points(landmarks: np.ndarray) -> np.ndarray:
  """[...,68,2] -> [...,5,2]: eye centres, nose tip, mouth corners (the alignment points)."""
  return np.stack([landmarks[..., LEFT_EYE, :].mean(-2), landmarks[..., RIGHT_EYE, :].mean(-2),
                   landmarks[..., NOSE_TIP, :], landmarks[..., MOUTH_LEFT, :],
                   landmarks[..., MOUTH_RIGHT, :]], axis=-2)


def bounding_box(landmarks: np.ndarray) -> np.ndarray:
  """[68,2] -> (x0, y0, x1, y1) of the points."""
  return np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float32)


def interocular(landmarks: np.ndarray) -> np.ndarray:
  """[...,68,2] -> [...] distance between the eye centres (the face's scale)."""
  p = five_points(landmarks)
  return np.linalg.norm(p[..., 1, :] - p[..., 0, :], axis=-1)
