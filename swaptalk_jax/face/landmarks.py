"""68-point landmarks (dlib's iBUG-300W predictor), the points derived from them, and the face
boxes and landmarks the metrics use (`FaceLandmarks`: 68 points for LMD, dlib's 5-point shapes for
the identity chips of face/recognition.py).

Index groups (dlib order): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47 (left of image 36-41),
outer lips 48-59, inner lips 60-67. Images are RGB uint8 numpy [H, W, 3]; boxes are (x0, y0, x1, y1)
frame pixels, x1/y1 exclusive; landmarks are [K, 2] float (x, y).
"""
import dataclasses

import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.face import detect, model_files

LEFT_EYE = slice(36, 42)   # the eye on the image's left
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


class LandmarkPredictor:
  """Runs the 68-point shape predictor inside a face box."""

  def __init__(self, model_file: str | None = None):
    import dlib  # pylint: disable=g-import-not-at-top
    self._dlib = dlib
    self._predictor = model_files.shape_predictor(model_files.model_path(model_files.LANDMARKS_68,
                                                                          model_file))

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


# ----------------------------------------------------------------------------- for the metrics
MOUTH_68 = slice(48, 68)
FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"
# Metrics see face crops and photos: search them whole (up to 1600 px) for faces of >= 48 px.
METRIC_DETECTOR = detect.DetectorConfig(min_face=48, max_work_side=1600)


class NoFaceError(UserError):
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

  model_68 / model_5: explicit .dat paths, else found in the installed packages (face/model_files.py).
  """
  model_68: str | None = None
  model_5: str | None = None

  def __post_init__(self):
    import dlib  # pylint: disable=import-outside-toplevel
    self._dlib = dlib
    self._predict_68 = LandmarkPredictor(self.model_68)
    self._predict_5 = model_files.shape_predictor(model_files.model_path(FIVE_POINT_MODEL, self.model_5))

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
