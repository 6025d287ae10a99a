"""The frozen identity embedder behind every identity loss (the VQGAN's L_id, the swap's L_id_src /
L_id_res): converted ArcFace weights or a network the project trained (`configs/identity.py`).

One config block (`configs/common.identity_config`) and one loader (`trainers/identity.
identity_net_for`: it reads runs, so it lives with the trainers) serve both stages.
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class IdentityNet:
  """A frozen identity embedder: `embed(params, images [-1, 1] NHWC) -> unit-norm [N, E]`."""
  name: str
  embed: Callable[[Any, jax.Array], jax.Array]


def cosine_distance(a: jax.Array, b: jax.Array) -> jax.Array:
  """1 - cos of unit-norm embeddings [N, E] -> [N]."""
  return 1.0 - jnp.sum(a * b, axis=-1)


def identity_distance(net: IdentityNet, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Per-example 1 - cos(id(x), id(y)) [N]; one batched embedding call, params and y frozen."""
  params = jax.lax.stop_gradient(params)
  embeddings = net.embed(params, jnp.concatenate([x, jax.lax.stop_gradient(y)], axis=0))
  ex, ey = jnp.split(embeddings, 2, axis=0)
  return cosine_distance(ex, ey)


def arcface_identity_net(variant: str) -> IdentityNet:
  """Converted ArcFace weights: faces cut to ArcFace's region and resized to 112 (losses.identity)."""
  from swaptalk_jax.losses import identity  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.models import arcface  # pylint: disable=g-import-not-at-top

  def embed(params, images):
    return arcface.arcface_embed(params, identity.crop_for_arcface(images))

  return IdentityNet(f"arcface_{variant}", embed)
