"""dlib's HOG face detector and 5/68-point shape predictors on RGB uint8 images (numpy [H, W, 3]).

Boxes are (left, top, right, bottom) pixel arrays; landmarks are [K, 2] float (x, y) in the
iBUG 300-W order for 68 points (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
"""
import numpy as np

from swaptalk_jax.face_id import model_files

MOUTH_68 = slice(48, 68)


class NoFaceError(ValueError):
  """No face was detected where one was required."""


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
    raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
  return np.ascontiguousarray(image)


def full_image_box(image: np.ndarray) -> np.ndarray:
  """The whole image as the face box (for inputs that are face crops already)."""
  return np.array([0, 0, image.shape[1] - 1, image.shape[0] - 1])


def five_points_from_68(landmarks_68: np.ndarray) -> np.ndarray:
  """ArcFace's 5 points (left eye centre, right eye centre, nose tip, left/right mouth corner, as
  seen in the image) from 68-point landmarks."""
  points = np.asarray(landmarks_68, np.float64)
  return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48],
                   points[54]])


class DlibLandmarks:
  """Face detection + landmarks with dlib; the models load once, on construction."""

  def __init__(self, upsample: int = 1):
    dlib = model_files.load_dlib()
    self._dlib, self.upsample = dlib, upsample
    self._detector = dlib.get_frontal_face_detector()
    self._predictors = {
        68: dlib.shape_predictor(model_files.model_path("landmarks_68")),
        5: dlib.shape_predictor(model_files.model_path("landmarks_5")),
    }

  def detect(self, image: np.ndarray) -> np.ndarray:
    """[K, 4] boxes (left, top, right, bottom), largest first; K may be 0."""
    rects = self._detector(as_rgb_uint8(image), self.upsample)
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.int64)
    if not len(boxes):
      return boxes.reshape(0, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-areas, kind="stable")]

  def largest_face(self, image: np.ndarray) -> np.ndarray:
    boxes = self.detect(image)
    if not len(boxes):
      raise NoFaceError(f"no face detected in the {image.shape[1]}x{image.shape[0]} image")
    return boxes[0]

  def rectangle(self, box):
    left, top, right, bottom = (int(round(v)) for v in box)
    return self._dlib.rectangle(left, top, right, bottom)

  def shape(self, image: np.ndarray, box, points: int = 68):
    """dlib's full_object_detection (used by the identity embedder's face chips)."""
    return self._predictors[points](as_rgb_uint8(image), self.rectangle(box))

  def landmarks(self, image: np.ndarray, box=None, points: int = 68) -> np.ndarray:
    """[points, 2] landmarks of the face in `box` (default: the largest detected face)."""
    if points not in self._predictors:
      raise ValueError(f"points must be 5 or 68, got {points}")
    box = self.largest_face(image) if box is None else box
    shape = self.shape(image, box, points)
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)
