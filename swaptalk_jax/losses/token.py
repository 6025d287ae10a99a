"""Token-space losses of the lip-sync stage: L_code and a cross-entropy over code indices.

L_code compares the predicted lower-half embeddings T^^B with the target's own T^B (the frozen
VQGAN's codes from C^B). The cross-entropy treats the negative squared distances of each predicted
embedding to every code of C^B as logits and the target's code index as the label, so the
prediction is pulled toward its own code and away from the others (what quantising it would pick).
"""
import jax
import jax.numpy as jnp

from swaptalk_jax.models.quantizer import pairwise_sq_distances

CODE_LOSSES = ("l2", "l1")


def code_loss(predicted: jax.Array, target: jax.Array, kind: str = "l2") -> jax.Array:
  """L_code: mean squared ('l2') or absolute ('l1') error of [..., D] embeddings, scalar f32."""
  if predicted.shape != target.shape:
    raise ValueError(f"code_loss: predicted {predicted.shape} != target {target.shape}")
  diff = predicted.astype(jnp.float32) - jax.lax.stop_gradient(target.astype(jnp.float32))
  if kind == "l2":
    return jnp.mean(jnp.square(diff))
  if kind == "l1":
    return jnp.mean(jnp.abs(diff))
  raise ValueError(f"code_loss: kind {kind!r} is not one of {CODE_LOSSES}")


def code_logits(predicted: jax.Array, codebook: jax.Array, temperature: float = 1.0) -> jax.Array:
  """-|p - c_k|^2 / temperature for every code: [..., D] x [K, D] -> [..., K] f32."""
  lead = predicted.shape[:-1]
  d = pairwise_sq_distances(predicted.reshape(-1, predicted.shape[-1]),
                            jax.lax.stop_gradient(codebook))
  return (-d / temperature).reshape(lead + (codebook.shape[0],))


def code_cross_entropy(predicted: jax.Array, codebook: jax.Array, target_indices: jax.Array,
                       temperature: float = 1.0) -> jax.Array:
  """Mean cross-entropy of `target_indices` [...] under `code_logits` (the codebook is frozen)."""
  logits = code_logits(predicted, codebook, temperature)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  picked = jnp.take_along_axis(log_probs, target_indices[..., None].astype(jnp.int32), axis=-1)
  return -jnp.mean(picked)


def code_accuracy(predicted: jax.Array, codebook: jax.Array, target_indices: jax.Array) -> jax.Array:
  """Fraction of predicted embeddings whose nearest code is the target's code."""
  nearest = jnp.argmin(-code_logits(predicted, codebook), axis=-1)
  return jnp.mean((nearest == target_indices).astype(jnp.float32))
