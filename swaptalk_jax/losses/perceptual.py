"""Perceptual loss: LPIPS (VGG16, v0.1) between reconstructions and targets, frozen weights.

`lpips_loss(params, x, y)` is pure (params passed in: trainers hand the params of
`load_lpips_params(path)` to the core as frozen params, so they are jit arguments, not constants).
"""
from typing import Any

import jax
import jax.numpy as jnp

from swaptalk_jax import params_file
from swaptalk_jax.models import lpips as lpips_model

LPIPS_VARIANT = "vgg16"


def lpips_loss(params: dict, x: jax.Array, y: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
  """Per-example LPIPS [N] of [-1, 1] NHWC images; gradients flow to x and y, never to params."""
  params = jax.lax.stop_gradient(params)
  return lpips_model.lpips_distance(params, x, y, dtype=dtype)


def load_lpips_params(path: str) -> dict:
  """The converted LPIPS params (file from `swaptalk convert lpips`), as device arrays."""
  params, _ = params_file.load_pretrained("lpips", path, LPIPS_VARIANT)
  return jax.tree_util.tree_map(jnp.asarray, params)

