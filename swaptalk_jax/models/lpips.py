"""LPIPS v0.1 with the VGG16 trunk (Zhang et al. 2018): the perceptual distance of the VQGAN loss.

d(x, y) = sum over the 5 VGG taps of the spatial mean of w_l . (n(f_l(x)) - n(f_l(y)))^2, where n
normalises each position's feature vector to unit length and w_l is a learned 1x1 conv (no bias).
Inputs are RGB in [-1, 1], NHWC, any size >= 16. The trunk may run in bf16 (`dtype`); the
normalisation, differences and heads always run in f32 (unit-normalising bf16 features loses the
small differences the distance is made of).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax import params_file
from swaptalk_jax.models.layers import Conv
from swaptalk_jax.models.vgg import TAP_NAMES, VGG16_STAGES, VGG16Features

Dtype = Any

# LPIPS "ScalingLayer": maps [-1, 1] inputs to ImageNet-normalised ones: (x - shift) / scale.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPSILON = 1e-10
HEAD_CHANNELS = tuple(widths[-1] for widths in VGG16_STAGES)


def unit_normalise(features: jax.Array) -> jax.Array:
  """f / (|f| + eps) along channels; |f| is taken as sqrt(|f|^2 + eps^2) so all-zero vectors
  (common after ReLU) have a finite gradient. Equal to LPIPS's value to within eps^2."""
  norm = jnp.sqrt(jnp.sum(jnp.square(features), axis=-1, keepdims=True) + EPSILON ** 2)
  return features / (norm + EPSILON)


class LPIPS(nn.Module):
  """(x, y) in [-1, 1], [N, H, W, 3] -> LPIPS distance per example, [N] (f32)."""
  dtype: Dtype = jnp.float32

  def setup(self):
    self.vgg = VGG16Features(dtype=self.dtype)
    self.heads = [Conv(1, (1, 1), padding="VALID", use_bias=False, name=f"lin{i}")
                  for i in range(len(TAP_NAMES))]

  def _scaled(self, x: jax.Array) -> jax.Array:
    return (x.astype(jnp.float32) - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)

  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    batch = x.shape[0]
    taps = self.vgg(jnp.concatenate([self._scaled(x), self._scaled(y)], axis=0))
    distance = jnp.zeros((batch,), jnp.float32)
    for head, tap in zip(self.heads, taps):
      tap = unit_normalise(tap.astype(jnp.float32))
      difference = jnp.square(tap[:batch] - tap[batch:])
      distance += jnp.mean(head(difference)[..., 0], axis=(1, 2))
    return distance


def lpips_param_shapes() -> dict:
  """ShapeDtypeStructs of the LPIPS params (the same for every image size); no computation."""
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  return nn.unbox(jax.eval_shape(LPIPS().init, jax.random.key(0), x, x)["params"])


def init_lpips_params(seed: int = 0) -> dict:
  """Random stand-in params (tests, benchmarks); real ones come from `swaptalk convert lpips`."""
  return params_file.random_params(lpips_param_shapes(), seed)


def lpips_distance(params: dict, x: jax.Array, y: jax.Array, dtype: Dtype = jnp.float32) -> jax.Array:
  """Per-example LPIPS distance [N] of [-1, 1] NHWC images; `params` as converted (frozen)."""
  return LPIPS(dtype=dtype).apply({"params": params}, x, y)
