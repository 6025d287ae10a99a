"""The frozen identity embedder behind every identity loss (the VQGAN's L_id, the swap's L_id_src /
L_id_res): converted ArcFace weights or a network the project trained (`configs/identity.py`).

One config block (`configs/common.identity_config`) and one loader (`trainers/identity.
identity_net_for`: it reads runs, so it lives with the trainers) serve both stages.
"""
import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class IdentityNet:
  """A frozen identity embedder: `embed(params, images [-1, 1] NHWC) -> unit-norm [N, E]`;
  `features(params, images) -> [N, h, w, C] maps`, shallow to deep, where the net exposes them."""
  name: str
  embed: Callable[[Any, jax.Array], jax.Array]
  features: Optional[Callable[[Any, jax.Array], list]] = None


def cosine_distance(a: jax.Array, b: jax.Array) -> jax.Array:
  """1 - cos of unit-norm embeddings [N, E] -> [N]."""
  return 1.0 - jnp.sum(a * b, axis=-1)


def identity_distance(net: IdentityNet, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Per-example 1 - cos(id(x), id(y)) [N]; one batched embedding call, params and y frozen."""
  params = jax.lax.stop_gradient(params)
  embeddings = net.embed(params, jnp.concatenate([x, jax.lax.stop_gradient(y)], axis=0))
  ex, ey = jnp.split(embeddings, 2, axis=0)
  return cosine_distance(ex, ey)


def feature_distance(net: IdentityNet, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Per-example LPIPS-style distance [N] on the identity net's feature maps: each map unit-normed
  over channels, squared difference summed over channels, averaged over space, summed over maps
  (LPIPS with equal channel weights). A face-trained perceptual term for when the VGG/LPIPS
  weights are absent; params and y frozen."""
  if net.features is None:
    raise ValueError(f"identity net {net.name!r} exposes no feature maps")
  params = jax.lax.stop_gradient(params)
  maps = net.features(params, jnp.concatenate([x, jax.lax.stop_gradient(y)], axis=0))
  total = 0.0
  for f in maps:
    f = f.astype(jnp.float32)
    f = f * jax.lax.rsqrt(jnp.sum(jnp.square(f), axis=-1, keepdims=True) + 1e-10)
    fx, fy = jnp.split(f, 2, axis=0)
    total = total + jnp.mean(jnp.sum(jnp.square(fx - fy), axis=-1), axis=(1, 2))
  return total


def arcface_identity_net(variant: str) -> IdentityNet:
  """Converted ArcFace weights: faces cut to ArcFace's region and resized to 112 (losses.identity)."""
  from swaptalk_jax.losses import identity  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.models import arcface  # pylint: disable=g-import-not-at-top

  def embed(params, images):
    return arcface.arcface_embed(params, identity.crop_for_arcface(images))

  def features(params, images):
    model = arcface.IResNet(blocks=arcface.blocks_of_params(params))
    return arcface.stage_features(model, params, identity.crop_for_arcface(images))

  return IdentityNet(f"arcface_{variant}", embed, features)
