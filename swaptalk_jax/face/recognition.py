"""Identity embeddings for the metrics (ID retrieval, consistency) from dlib's face-recognition
ResNet: 5-point alignment to a 150x150 chip, then a 128-d descriptor. Same person: Euclidean
distance typically < 0.6 (dlib's threshold); the descriptors are close to unit length.

This is deliberately a different recogniser from the ArcFace used in training (the paper's ID
retrieval uses "a face recogniser other than the training one").
"""
import functools

import numpy as np

from swaptalk_jax.face import landmarks as landmarks_lib
from swaptalk_jax.face import model_files

RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
EMBEDDING_DIM = 128
SAME_PERSON_THRESHOLD = 0.6
CHIP_SIZE = 150
CHIP_PADDING = 0.25


@functools.lru_cache(maxsize=2)
def _recognition_model(path: str):
  import dlib  # pylint: disable=import-outside-toplevel
  return dlib.face_recognition_model_v1(path)


class DlibIdentityEmbedder:
  """image (+ face box) -> 128-d descriptor; models load once, on construction."""

  def __init__(self, face_models: landmarks_lib.FaceLandmarks | None = None,
               model_file: str | None = None):
    import dlib  # pylint: disable=import-outside-toplevel
    self._dlib = dlib
    self.faces = face_models or landmarks_lib.FaceLandmarks()
    self._recognition = _recognition_model(model_files.model_path(RECOGNITION_MODEL, model_file))

  def face_chip(self, image: np.ndarray, box=None) -> np.ndarray:
    """The aligned 150x150 RGB chip the network sees (5-point alignment, padding 0.25)."""
    image = landmarks_lib.as_rgb_uint8(image)
    box = landmarks_lib.largest_face(image) if box is None else box
    shape = self.faces.shape_5(image, box)
    return np.asarray(self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))

  def embed_chip(self, chip: np.ndarray) -> np.ndarray:
    """128-d descriptor of an already aligned 150x150 chip."""
    chip = landmarks_lib.as_rgb_uint8(chip)
    if chip.shape[:2] != (CHIP_SIZE, CHIP_SIZE):
      raise ValueError(f"a face chip is {CHIP_SIZE}x{CHIP_SIZE}, got {chip.shape}")
    return np.asarray(self._recognition.compute_face_descriptor(chip), np.float32)

  def embed(self, image: np.ndarray, box=None) -> np.ndarray:
    """128-d descriptor of the face in `box` (default: the largest detected face; raises
    landmarks.NoFaceError when there is none; pass `landmarks.full_image_box(image)` for crops)."""
    return self.embed_chip(self.face_chip(image, box))

  def embed_many(self, images, boxes=None) -> np.ndarray:
    """[N, 128] descriptors of a sequence of images (boxes: one per image, or None to detect)."""
    boxes = [None] * len(images) if boxes is None else boxes
    return np.stack([self.embed(image, box) for image, box in zip(images, boxes)])


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Euclidean distance between descriptors (last axis)."""
  return np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
