"""Full-reference image quality in jnp (jittable, per example): PSNR and SSIM.

One implementation for training-time evaluation and the paper's evaluation protocol (SSIM column).
"""
import jax
import jax.numpy as jnp


def psnr(x: jax.Array, y: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Per-example PSNR (dB) of [B, H, W, C] images."""
  mse = jnp.mean(jnp.square(x.astype(jnp.float32) - y.astype(jnp.float32)), axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range ** 2 / jnp.maximum(mse, 1e-12))


def _gaussian_taps(sigma: float, truncate: float = 3.5) -> jax.Array:
  """scipy.ndimage's gaussian_filter1d weights: radius int(truncate * sigma + 0.5), normalised."""
  radius = int(truncate * sigma + 0.5)
  x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  w = jnp.exp(-0.5 * jnp.square(x / sigma))
  return w / jnp.sum(w)


def ssim(x: jax.Array, y: jax.Array, data_range: float = 1.0, sigma: float = 1.5) -> jax.Array:
  """Per-example SSIM of [B, H, W, C] images (Wang et al. 2004), averaged over channels.

  Matches skimage `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=..., channel_axis=-1)`: skimage averages the SSIM map
  only where the whole window fits, so a VALID separable filter gives the same result.
  """
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  taps = _gaussian_taps(sigma)
  c = x.shape[-1]

  def blur(img):  # depthwise separable VALID filter over H then W
    kh = jnp.tile(taps[:, None, None, None], (1, 1, 1, c))
    kw = jnp.tile(taps[None, :, None, None], (1, 1, 1, c))
    dn = ("NHWC", "HWIO", "NHWC")
    img = jax.lax.conv_general_dilated(img, kh, (1, 1), "VALID", dimension_numbers=dn,
                                       feature_group_count=c, precision=jax.lax.Precision.HIGHEST)
    return jax.lax.conv_general_dilated(img, kw, (1, 1), "VALID", dimension_numbers=dn,
                                        feature_group_count=c, precision=jax.lax.Precision.HIGHEST)

  c1 = (0.01 * data_range) ** 2
  c2 = (0.03 * data_range) ** 2
  ux, uy = blur(x), blur(y)
  vx = blur(x * x) - ux * ux
  vy = blur(y * y) - uy * uy
  vxy = blur(x * y) - ux * uy
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return jnp.mean(s, axis=(1, 2, 3))
