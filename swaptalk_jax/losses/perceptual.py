"""Perceptual loss: LPIPS (VGG16, v0.1) between reconstructions and targets, frozen weights.

`lpips_loss(params, x, y)` is pure (params passed in); `make_lpips_loss(path)` loads a converted
params file once and returns the per-example loss as a closure for trainers.
"""
from typing import Any, Callable

import jax
import jax.numpy as jnp

from swaptalk_jax.convert import params_io
from swaptalk_jax.models import lpips as lpips_model

LPIPS_VARIANT = "vgg16"


def lpips_loss(params: dict, x: jax.Array, y: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
  """Per-example LPIPS [N] of [-1, 1] NHWC images; gradients flow to x and y, never to params."""
  params = jax.lax.stop_gradient(params)
  return lpips_model.lpips_distance(params, x, y, dtype=dtype)


def load_lpips_params(path: str) -> dict:
  """The converted LPIPS params (file from `swaptalk convert lpips`), as device arrays."""
  params, _ = params_io.load_pretrained("lpips", path, LPIPS_VARIANT)
  return jax.tree_util.tree_map(jnp.asarray, params)


def make_lpips_loss(path: str, dtype: Any = jnp.float32) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """(x, y) -> per-example LPIPS [N], with the params of `path` loaded now (fails early if absent)."""
  params = load_lpips_params(path)
  return lambda x, y: lpips_loss(params, x, y, dtype)
