"""Vector-quantisation losses and codebook-usage metrics (pure functions of `Quantized`)."""
import jax
import jax.numpy as jnp

from swaptalk_jax.models.quantizer import Quantized


def codebook_loss(q: Quantized) -> jax.Array:
  """|sg(z) - e|^2: moves the chosen codes toward the encoder outputs."""
  return jnp.mean(jnp.square(jax.lax.stop_gradient(q.inputs) - q.codes))


def commitment_loss(q: Quantized) -> jax.Array:
  """|z - sg(e)|^2: keeps the encoder outputs near their codes (weighted by beta)."""
  return jnp.mean(jnp.square(q.inputs - jax.lax.stop_gradient(q.codes)))


def vq_loss(q: Quantized, beta: float) -> jax.Array:
  """The VQ-VAE objective: codebook loss + beta * commitment loss."""
  return codebook_loss(q) + beta * commitment_loss(q)


def code_histogram(indices: jax.Array, num_codes: int) -> jax.Array:
  """Fraction of the batch's tokens assigned to each code, f32 [num_codes]."""
  one_hot = jax.nn.one_hot(indices.reshape(-1), num_codes, dtype=jnp.float32)
  return jnp.mean(one_hot, axis=0)


def _entropy(p: jax.Array, axis=-1) -> jax.Array:
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30)), 0.0), axis=axis)


def usage_metrics(hist: jax.Array) -> dict[str, jax.Array]:
  """Perplexity (exp entropy of code usage; K = uniform) and the fraction of codes unused, from a
  batch's `code_histogram`. Batch statistics: a batch of N tokens leaves about exp(-N/K) of K
  uniformly used codes unused by chance; dead codes proper are the trainer's running-usage metric."""
  return {"perplexity": jnp.exp(_entropy(hist)),
          "unused_in_batch": jnp.mean((hist == 0).astype(jnp.float32))}


def entropy_loss(q: Quantized, temperature: float = 1.0) -> jax.Array:
  """Per-token assignment entropy minus batch-average assignment entropy (soft, from distances).

  Minimising it makes each token pick one code confidently while the batch spreads over all codes,
  which pulls unused ("dead") codes back toward the data — the dead-code fix of this project.
  """
  logits = -q.distances.reshape(-1, q.distances.shape[-1]) / temperature
  probs = jax.nn.softmax(logits, axis=-1)
  per_token = jnp.mean(_entropy(probs))
  batch = _entropy(jnp.mean(probs, axis=0))
  return per_token - batch
