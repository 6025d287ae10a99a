"""The one 2-D convolution every model uses (NHWC activations, HWIO kernels).

Kept as a single function so its backward pass can be tuned in one place for every backend.
"""
import jax
from jax import lax


def conv2d(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding="SAME") -> jax.Array:
  """NHWC x HWIO -> NHWC convolution."""
  return lax.conv_general_dilated(
      x, kernel, window_strides=tuple(strides), padding=padding,
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
