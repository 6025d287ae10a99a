"""The Face Warping Module: bilinear grid sampling against a numpy reference, the identity flow is a
no-op, gradients reach image and coordinates, and an untrained module does not move R^B."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swaptalk_jax.models.face_warp import FaceWarp, grid_sample, warp


def numpy_bilinear(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
  """Textbook bilinear interpolation, one output pixel at a time, border-clamped coordinates."""
  n, h, w, c = image.shape
  out = np.zeros(coords.shape[:3] + (c,), np.float64)
  for b in range(n):
    for i in range(coords.shape[1]):
      for j in range(coords.shape[2]):
        y = min(max(coords[b, i, j, 0], 0.0), h - 1.0)
        x = min(max(coords[b, i, j, 1], 0.0), w - 1.0)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
        fy, fx = y - y0, x - x0
        out[b, i, j] = ((1 - fy) * ((1 - fx) * image[b, y0, x0] + fx * image[b, y0, x1])
                        + fy * ((1 - fx) * image[b, y1, x0] + fx * image[b, y1, x1]))
  return out


def test_grid_sample_matches_numpy_reference():
  rng = np.random.default_rng(0)
  image = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
  # inside, on the grid, on the borders and outside (clamped)
  coords = np.stack([rng.uniform(-1.5, 5.5, (2, 4, 6)), rng.uniform(-1.5, 7.5, (2, 4, 6))], -1)
  coords[0, 0, 0] = (4.0, 6.0)
  coords[0, 0, 1] = (2.0, 3.0)
  coords = coords.astype(np.float32)
  got = np.asarray(grid_sample(jnp.asarray(image), jnp.asarray(coords)))
  np.testing.assert_allclose(got, numpy_bilinear(image, coords), rtol=1e-5, atol=1e-5)


def test_identity_flow_is_a_no_op_and_integer_shift_moves_tokens():
  image = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8, 16, 4)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(warp(image, jnp.zeros((2, 8, 16, 2)))), np.asarray(image))
  shift = jnp.zeros((2, 8, 16, 2)).at[..., 1].set(1.0)   # sample one token to the right
  shifted = np.asarray(warp(image, shift))
  np.testing.assert_allclose(shifted[:, :, :-1], np.asarray(image)[:, :, 1:], atol=1e-6)
  np.testing.assert_allclose(shifted[:, :, -1], np.asarray(image)[:, :, -1], atol=1e-6)  # border


def test_grid_sample_gradients_reach_image_and_coordinates():
  rng = np.random.default_rng(2)
  image = jnp.asarray(rng.normal(size=(1, 4, 4, 2)), jnp.float32)
  coords = jnp.asarray(rng.uniform(0.2, 2.8, (1, 3, 3, 2)), jnp.float32)
  loss = lambda im, co: jnp.sum(jnp.sin(grid_sample(im, co)))
  g_image, g_coords = jax.grad(loss, argnums=(0, 1))(image, coords)
  # finite differences on the coordinates (bilinear is smooth away from integer coordinates)
  eps = 1e-3
  for index in [(0, 0, 0, 0), (0, 1, 2, 1), (0, 2, 1, 0)]:
    bump = jnp.zeros_like(coords).at[index].set(eps)
    numeric = (loss(image, coords + bump) - loss(image, coords - bump)) / (2 * eps)
    np.testing.assert_allclose(float(g_coords[index]), float(numeric), rtol=2e-2, atol=2e-3)
  assert float(jnp.abs(g_image).sum()) > 0


def test_untrained_face_warp_returns_the_reference_lower_half():
  rng = np.random.default_rng(3)
  upper, ref_upper, ref_lower = (jnp.asarray(rng.normal(size=(2, 8, 16, 8)), jnp.float32)
                                 for _ in range(3))
  module = FaceWarp(features=(8, 16), flow_features=(8, 16), num_groups=4)
  params = module.init(jax.random.key(0), upper, ref_upper, ref_lower)
  warped, flow = module.apply(params, upper, ref_upper, ref_lower)
  assert flow.shape == (2, 8, 16, 2)
  np.testing.assert_array_equal(np.asarray(flow), 0.0)
  np.testing.assert_allclose(np.asarray(warped), np.asarray(ref_lower), atol=1e-6)


def test_bad_shapes_are_one_clear_error():
  with pytest.raises(ValueError, match="grid_sample"):
    grid_sample(jnp.zeros((1, 4, 4, 2)), jnp.zeros((1, 4, 4, 3)))
  module = FaceWarp(features=(8, 16), flow_features=(8, 16), num_groups=4)
  with pytest.raises(ValueError, match="FaceWarp"):
    module.init(jax.random.key(0), jnp.zeros((1, 8, 16, 8)), jnp.zeros((1, 8, 16, 8)),
                jnp.zeros((1, 4, 16, 8)))
