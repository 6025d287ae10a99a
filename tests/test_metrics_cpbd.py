"""CPBD: number-for-number parity with the `cpbd` PyPI package (1.0.7) on the same images, blur
lowers it, and bad input is one clear error."""
import numpy as np
import pytest
import scipy.ndimage

from swaptalk_jax.metrics import cpbd


def reference_cpbd():
  """The package's compute(); its module imports scipy.ndimage.imread (gone since scipy 1.2) only
  for its command-line entry, so a placeholder attribute lets it import on current scipy."""
  pytest.importorskip("skimage")
  if not hasattr(scipy.ndimage, "imread"):
    scipy.ndimage.imread = None
  return pytest.importorskip("cpbd.compute", reason="pip install --no-deps cpbd==1.0.7").compute


def sample_images():
  from skimage import data, transform
  rng = np.random.default_rng(0)
  camera = (transform.resize(data.camera(), (192, 192)) * 255).round().astype(np.uint8)
  astronaut = (transform.resize(data.astronaut(), (128, 160)) * 255).round().astype(np.uint8)
  return {
      "camera": camera,
      "camera_blurred": scipy.ndimage.gaussian_filter(camera.astype(float), 1.5).round().astype(np.uint8),
      "astronaut_rgb": astronaut,
      "noise_rgb": rng.integers(0, 256, (96, 128, 3)).astype(np.uint8),
      "steps": np.kron(rng.integers(0, 256, (8, 8)), np.ones((10, 10))).astype(np.uint8),
      "flat": np.full((64, 64), 77, np.uint8),
  }


def test_parity_with_cpbd_package():
  compute = reference_cpbd()
  for name, image in sample_images().items():
    ours = cpbd.cpbd(image)
    ref = compute(cpbd.to_gray(image))
    assert abs(ours - ref) < 1e-12, (name, ours, ref)


def test_gray_conversion_is_pil_luma():
  image_mod = pytest.importorskip("PIL.Image")
  x = np.random.default_rng(1).integers(0, 256, (16, 24, 3)).astype(np.uint8)
  np.testing.assert_array_equal(cpbd.to_gray(x), np.asarray(image_mod.fromarray(x).convert("L")))


def test_blur_lowers_sharpness():
  images = sample_images()
  assert cpbd.cpbd(images["camera"]) > cpbd.cpbd(images["camera_blurred"]) + 0.2


def test_bad_input():
  with pytest.raises(ValueError, match="at least 64x64"):
    cpbd.cpbd(np.zeros((32, 32, 3), np.uint8))
  with pytest.raises(ValueError, match="uint8"):
    cpbd.cpbd(np.zeros((64, 64, 3), np.float32))
  with pytest.raises(ValueError, match="frames"):
    cpbd.cpbd_frames(np.zeros((0, 64, 64, 3), np.uint8))
