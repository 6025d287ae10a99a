"""The Face Warping Module of the lip-sync stage (PAPER_NOTES section 3, Figure 2d).

The reference frame's lower-half tokens R^B come from another moment of the clip, so the head pose
differs from the target's. The module moves R^B toward the target pose in token space:
  1. one hourglass (encoder-decoder with skips, shared weights) maps the target's upper-half token
     embeddings T^U and the reference's R^U to feature maps at token resolution;
  2. their difference goes through a small UNet that predicts an offset (flow) map, in token units,
     one (dy, dx) per lower-half token; its last conv starts at zero, so an untrained module is the
     identity warp;
  3. R^B is bilinearly grid-sampled at (token position + offset): `grid_sample`, in jnp and
     differentiable in both the image and the coordinates.
The target's lower half is not an input (it is only the ground truth of L_code).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models import layers
from swaptalk_jax.models.remat import remat_block

Dtype = Any


def _constrain(x: jax.Array) -> jax.Array:
  """Batch-sharded activations at block boundaries (no-op without logical rules)."""
  return nn.with_logical_constraint(x, ("batch", None, None, None))


def grid_sample(image: jax.Array, coords: jax.Array) -> jax.Array:
  """Bilinear sampling of `image` [N, H, W, C] at `coords` [N, Ho, Wo, 2] = (y, x) in pixel units
  (pixel (i, j) has its centre at (i, j)); out-of-range coordinates are clamped to the border.
  Returns [N, Ho, Wo, C] in the image's dtype; differentiable w.r.t. image and coords."""
  if image.ndim != 4 or coords.ndim != 4 or coords.shape[-1] != 2:
    raise ValueError(f"grid_sample: image must be [N,H,W,C] and coords [N,Ho,Wo,2], got "
                     f"{image.shape} and {coords.shape}")
  if image.shape[0] != coords.shape[0]:
    raise ValueError(f"grid_sample: batch {image.shape[0]} != coords batch {coords.shape[0]}")
  n, h, w, c = image.shape
  coords = coords.astype(jnp.float32)
  y = jnp.clip(coords[..., 0], 0.0, h - 1.0)
  x = jnp.clip(coords[..., 1], 0.0, w - 1.0)
  y0 = jnp.clip(jnp.floor(y), 0, max(h - 2, 0))
  x0 = jnp.clip(jnp.floor(x), 0, max(w - 2, 0))
  wy, wx = (y - y0)[..., None], (x - x0)[..., None]
  y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
  y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
  flat = image.reshape(n, h * w, c)

  def gather(yi, xi):
    index = (yi * w + xi).reshape(n, -1, 1)
    return jnp.take_along_axis(flat, index, axis=1).reshape(yi.shape + (c,)).astype(jnp.float32)

  top = gather(y0, x0) * (1.0 - wx) + gather(y0, x1) * wx
  bottom = gather(y1, x0) * (1.0 - wx) + gather(y1, x1) * wx
  return (top * (1.0 - wy) + bottom * wy).astype(image.dtype)


def base_grid(n: int, h: int, w: int) -> jax.Array:
  """Token positions [n, h, w, 2] = (row, column): grid_sample at these is the identity."""
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  return jnp.broadcast_to(jnp.stack([ys, xs], -1), (n, h, w, 2))


def warp(image: jax.Array, flow: jax.Array) -> jax.Array:
  """`image` [N, H, W, C] sampled at (own position + flow [N, H, W, 2] (dy, dx))."""
  n, h, w, _ = image.shape
  return grid_sample(image, base_grid(n, h, w) + flow.astype(jnp.float32))


class ConvBlock(nn.Module):
  """GroupNorm-SiLU-Conv twice with a residual (1x1-projected when channels change)."""
  features: int
  num_groups: int = 8
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm1")(x))
    h = layers.Conv(self.features, dtype=self.dtype, name="conv1")(h)
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm2")(h))
    h = layers.Conv(self.features, dtype=self.dtype, name="conv2")(h)
    if x.shape[-1] != self.features:
      x = layers.Conv(self.features, (1, 1), dtype=self.dtype, name="skip")(x)
    return _constrain(x.astype(self.dtype) + h)


def downsample(x: jax.Array, features: int, dtype, name: str) -> jax.Array:
  """Stride-2 3x3 conv (token grids are even-sized down to 2 rows)."""
  return layers.Conv(features, (3, 3), strides=(2, 2), dtype=dtype, name=name)(x)


def upsample_to(x: jax.Array, shape: Sequence[int]) -> jax.Array:
  """Nearest-neighbour resize of [N, h, w, C] to spatial `shape` (h', w')."""
  return jax.image.resize(x, (x.shape[0], shape[0], shape[1], x.shape[-1]), "nearest")


class Hourglass(nn.Module):
  """Encoder-decoder with skip connections: [N, h, w, Cin] -> [N, h, w, features[0]].
  `features`: channels per level (len(features) - 1 downsamplings)."""
  features: Sequence[int] = (32, 64)
  num_groups: int = 8
  dtype: Dtype = jnp.float32
  remat: str = "none"             # activation checkpointing of each ConvBlock (models/remat.py)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    block_cls = remat_block(ConvBlock, self.remat)
    h = layers.Conv(self.features[0], dtype=self.dtype, name="conv_in")(x)
    skips = []
    for level, f in enumerate(self.features):
      h = block_cls(f, self.num_groups, self.dtype, name=f"down_{level}")(h)
      if level != len(self.features) - 1:
        skips.append(h)
        h = downsample(h, f, self.dtype, f"downsample_{level}")
    for level in reversed(range(len(self.features) - 1)):
      skip = skips.pop()
      h = jnp.concatenate([upsample_to(h, skip.shape[1:3]), skip], axis=-1)
      h = block_cls(self.features[level], self.num_groups, self.dtype, name=f"up_{level}")(h)
    return h


class FaceWarp(nn.Module):
  """(T^U, R^U, R^B) -> (R^B warped toward the target pose, flow [N, h, w, 2] in token units).

  Upper and lower half grids have the same size (the VQGAN cuts the face in two equal halves).
  max_offset: the flow is max_offset * tanh(raw), so the warp stays local (in tokens).
  """
  features: Sequence[int] = (32, 64)
  flow_features: Sequence[int] = (32, 64)
  num_groups: int = 8
  max_offset: float = 4.0
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, target_upper: jax.Array, reference_upper: jax.Array,
               reference_lower: jax.Array) -> tuple[jax.Array, jax.Array]:
    if not target_upper.shape == reference_upper.shape == reference_lower.shape:
      raise ValueError(f"FaceWarp: T^U {target_upper.shape}, R^U {reference_upper.shape} and R^B "
                       f"{reference_lower.shape} must be equal [N, h/2, w, D] token grids")
    hourglass = Hourglass(self.features, self.num_groups, self.dtype, self.remat, name="hourglass")
    # One call on the stacked pair: the same weights see both, and one conv program is compiled.
    n = target_upper.shape[0]
    both = hourglass(jnp.concatenate([target_upper, reference_upper], axis=0))
    difference = both[:n] - both[n:]
    h = Hourglass(self.flow_features, self.num_groups, self.dtype, self.remat,
                  name="flow_unet")(difference)
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="flow_norm")(h))
    raw = layers.Conv(2, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                      name="flow_out")(h).astype(jnp.float32)
    flow = self.max_offset * jnp.tanh(raw / self.max_offset)
    return warp(reference_lower, flow), flow
