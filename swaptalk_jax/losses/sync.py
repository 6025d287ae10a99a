"""The sync expert as a loss: its BCE when training it (stage 2), L_sync when it judges (stage 3).

The expert's params are always an ARGUMENT of the caller's jitted function (`Task.frozen_params`
of the stage that uses it), never closed over, so they are neither baked into the program as
constants nor differentiated: `sync_score` stops their gradient, and the gradient of `sync_loss`
flows only into the token embeddings (what stage 3 predicts).
"""
from typing import Any

import jax
import jax.numpy as jnp

from swaptalk_jax.models.lip_expert import LipExpert


def bce_with_logits(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example binary cross-entropy of sigmoid(logits) against labels in {0, 1} (stable)."""
  logits = logits.astype(jnp.float32)
  labels = labels.astype(jnp.float32)
  return jnp.maximum(logits, 0.0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def expert_logits(expert: LipExpert, expert_params: Any, lower_embeddings: jax.Array,
                  mel_window: jax.Array) -> jax.Array:
  """Logits [B] of the FROZEN expert on lower-half token embeddings [B, T, h/2, w, D] (C^B
  vectors, or stage 3's predictions of them) and mel windows [B, steps, 80]."""
  params = jax.lax.stop_gradient(expert_params)
  return expert.apply({"params": params}, lower_embeddings, mel_window)


def sync_score(expert: LipExpert, expert_params: Any, lower_embeddings: jax.Array,
               mel_window: jax.Array) -> jax.Array:
  """Probability [B] that the lower-face window and the audio window are in sync."""
  return jax.nn.sigmoid(expert_logits(expert, expert_params, lower_embeddings, mel_window))


def sync_loss(expert: LipExpert, expert_params: Any, lower_embeddings: jax.Array,
              mel_window: jax.Array) -> jax.Array:
  """L_sync: mean BCE of the frozen expert's judgement against "in sync" (label 1), scalar."""
  logits = expert_logits(expert, expert_params, lower_embeddings, mel_window)
  return jnp.mean(bce_with_logits(logits, jnp.ones_like(logits)))
