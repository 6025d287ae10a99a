"""Losses of the face-swap stage (PAPER_NOTES section 2): L_proxy, L_id_src, L_id_res.

- L_proxy: mean squared distance of the swapped token embeddings T~_VQ to E(Res)'s (quantised)
  token embeddings, over the examples that have a ground truth Res (`has_gt`).
- L_id_src / L_id_res: 1 - cosine similarity of identity embeddings of D(T~_VQ) and of the source
  image / of Res. The identity network is given by config (`IdentityNet`): converted ArcFace
  weights (cropped to ArcFace's 112x112 region, `losses.identity`) or a network the project
  trained itself (`configs/identity.py`). Its params are frozen (stop_gradient); the gradient flows
  through D into T~_VQ.
"""
import jax
import jax.numpy as jnp

from swaptalk_jax.losses.identity_nets import IdentityNet, cosine_distance  # noqa: F401  (re-exported)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of per-example `values` [B] over `mask` [B] (0 when the mask is empty)."""
  mask = mask.astype(jnp.float32)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def proxy_loss(swapped: jax.Array, res_tokens: jax.Array, has_gt: jax.Array) -> jax.Array:
  """L_proxy: per-token squared error to E(Res), averaged over tokens and ground-truth examples."""
  per_example = jnp.mean(jnp.square(swapped - jax.lax.stop_gradient(res_tokens)), axis=(1, 2, 3))
  return masked_mean(per_example, has_gt)


def identity_losses(net: IdentityNet, params, swapped_images: jax.Array, source: jax.Array,
                    res: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-example (L_id_src, L_id_res) [B] of decoded swapped faces; one batched embedding call."""
  params = jax.lax.stop_gradient(params)
  refs = jax.lax.stop_gradient(jnp.concatenate([source, res], axis=0))
  embeddings = net.embed(params, jnp.concatenate([swapped_images, refs], axis=0))
  e_swap, e_src, e_res = jnp.split(embeddings, 3, axis=0)
  return cosine_distance(e_swap, e_src), cosine_distance(e_swap, e_res)
