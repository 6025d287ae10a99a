"""The frozen identity embedder behind every identity loss (the VQGAN's L_id, the swap's L_id_src /
L_id_res): converted ArcFace weights or a network the project trained (`configs/identity.py`).

One config block (`configs/common.identity_config`) and one loader serve both stages, so a stage
never builds its own. A loss weight > 0 without a usable network is a UserError at start-up: never
a random network instead.
"""
import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections

from swaptalk_jax.errors import UserError

KINDS = ("none", "arcface", "trained")


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


def load(ident: ml_collections.ConfigDict, weights: dict[str, float]
         ) -> tuple[Optional[IdentityNet], Any]:
  """(IdentityNet, params) of a config's `identity` block, or (None, None) when every identity
  loss weight in `weights` ({'loss.<name>': value}) is 0."""
  on = {k: v for k, v in weights.items() if v}
  if not on:
    return None, None
  if ident.kind == "none":
    raise UserError(f"config {on} needs an identity network but config.identity.kind is 'none'; "
                    "set it to 'arcface' (with identity.arcface_path) or 'trained' (with "
                    "identity.workdir), or set the weights to 0")
  if ident.kind == "arcface":
    if not ident.arcface_path:
      raise UserError("config.identity.kind='arcface' needs config.identity.arcface_path (convert "
                      "the weights with `swaptalk convert arcface SRC DST`)")
    from swaptalk_jax.losses import identity  # pylint: disable=g-import-not-at-top
    return (arcface_identity_net(ident.arcface_variant),
            identity.load_arcface_params(ident.arcface_path, ident.arcface_variant))
  if ident.kind == "trained":
    from swaptalk_jax.trainers import identity as identity_trainer  # pylint: disable=g-import-not-at-top
    return identity_trainer.load_identity_net(ident.workdir)
  raise UserError(f"config.identity.kind={ident.kind!r}; use one of {KINDS}")
