"""Face boxes and landmarks for the metrics, on the face module's detector and dlib predictors.

Images are RGB uint8 numpy [H, W, 3]; boxes are (x0, y0, x1, y1) frame pixels, x1/y1 exclusive (the
face module's convention); landmarks are [K, 2] float (x, y), 68 points in the iBUG 300-W order.
"""
import dataclasses

import numpy as np

from swaptalk_jax.face import detect
from swaptalk_jax.face import landmarks as face_landmarks
from swaptalk_jax.face import models

MOUTH_68 = slice(48, 68)
FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"
# Metrics see face crops and photos: search them whole (up to 1600 px) for faces of >= 48 px.
METRIC_DETECTOR = detect.DetectorConfig(min_face=48, max_work_side=1600)


class NoFaceError(ValueError):
  """No face was detected where one was required."""


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
    raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
  return np.ascontiguousarray(image)


def full_image_box(image: np.ndarray) -> np.ndarray:
  """The whole image as the face box (for inputs that are aligned face crops already)."""
  return np.array([0, 0, image.shape[1], image.shape[0]], np.float32)


def largest_face(image: np.ndarray, config: detect.DetectorConfig = METRIC_DETECTOR) -> np.ndarray:
  """(x0, y0, x1, y1) of the largest detected face; NoFaceError when there is none."""
  boxes = detect.detect_faces(as_rgb_uint8(image), config)
  if not len(boxes):
    raise NoFaceError(f"no face detected in the {image.shape[1]}x{image.shape[0]} image")
  return boxes[0, :4]


@dataclasses.dataclass
class FaceLandmarks:
  """68-point landmarks (LMD) and dlib 5-point shapes (identity chips); models load once.

  model_68 / model_5: explicit .dat paths, else found in the installed packages (face.models).
  """
  model_68: str | None = None
  model_5: str | None = None

  def __post_init__(self):
    import dlib  # pylint: disable=import-outside-toplevel
    self._dlib = dlib
    self._predict_68 = face_landmarks.LandmarkPredictor(self.model_68)
    self._predict_5 = models.shape_predictor(models.model_path(FIVE_POINT_MODEL, self.model_5))

  def landmarks(self, image: np.ndarray, box=None) -> np.ndarray:
    """[68, 2] landmarks of the face in `box` (default: the largest detected face)."""
    image = as_rgb_uint8(image)
    box = largest_face(image) if box is None else box
    return self._predict_68(image, np.asarray(box)).astype(np.float64)

  def shape_5(self, image: np.ndarray, box):
    """dlib's 5-point full_object_detection of the face in `box` (input of dlib's face chips)."""
    x0, y0, x1, y1 = (int(round(v)) for v in np.asarray(box)[:4])
    return self._predict_5(as_rgb_uint8(image), self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))

  def five_points(self, image: np.ndarray, box) -> np.ndarray:
    """[5, 2] raw points of dlib's 5-point model (eye corners and nose base, dlib's order)."""
    return np.array([[p.x, p.y] for p in self.shape_5(image, box).parts()], np.float64)
