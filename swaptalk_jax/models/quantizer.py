"""Vector quantiser: nearest codebook entry with a straight-through gradient.

One `VectorQuantizer` holds one codebook (the half-split VQGAN has two: upper and lower face half).
Its losses (codebook + commitment, optional usage entropy) live in `swaptalk_jax.losses.vq`; this
module returns what they need: the continuous inputs, the selected codes and the distances.

Dead codes, two configurable fixes: the batch usage-entropy term of `losses.vq.entropy_loss` (soft
assignments from the distances, MAGVIT-v2 style), and `restart_dead_codes` (codes whose running
usage fell near zero are re-initialised to encoder outputs; the VQGAN trainer runs it in the core's
post-update hook). `l2_normalize=True` (ViT-VQGAN) also keeps codes in use.
"""
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class Quantized(NamedTuple):
  """Output of `VectorQuantizer`: all [..., D] arrays share the input's leading shape."""
  quantized: jax.Array     # straight-through codes: forward = codes, gradient flows to `inputs`
  inputs: jax.Array        # encoder outputs (after the optional l2 normalisation), f32
  codes: jax.Array         # selected codebook entries (gradient flows to the codebook), f32
  indices: jax.Array       # int32 [...]
  distances: jax.Array     # f32 [..., K] squared distances (or 2 - 2 cos) to every code


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + eps)


def pairwise_sq_distances(x: jax.Array, codebook: jax.Array) -> jax.Array:
  """[N, D] x [K, D] -> [N, K] squared L2 distances in f32 (|x|^2 - 2 x.c + |c|^2)."""
  x = x.astype(jnp.float32)
  codebook = codebook.astype(jnp.float32)
  cross = jnp.einsum("nd,kd->nk", x, codebook, precision=jax.lax.Precision.HIGHEST)
  return (jnp.sum(jnp.square(x), -1, keepdims=True) - 2.0 * cross
          + jnp.sum(jnp.square(codebook), -1)[None, :])


class VectorQuantizer(nn.Module):
  """Nearest-neighbour lookup into a learned [num_codes, code_dim] codebook.

  l2_normalize: inputs and codes are unit-normalised before the lookup, so L2 distance is the
    cosine distance (2 - 2 cos) — the "cosine option".
  """
  num_codes: int
  code_dim: int
  l2_normalize: bool = False

  def setup(self):
    init = nn.initializers.uniform(scale=2.0 / self.num_codes)  # taming: U(-1/K, 1/K)
    shifted = lambda key, shape, dtype: init(key, shape, dtype) - 1.0 / self.num_codes
    self.codebook = self.param(
        "codebook", nn.with_logical_partitioning(shifted, ("vocab", "embed")),
        (self.num_codes, self.code_dim), jnp.float32)

  def embedding_table(self) -> jax.Array:
    """The codebook as the lookup sees it (normalised when `l2_normalize`)."""
    return l2_normalize(self.codebook) if self.l2_normalize else self.codebook

  def __call__(self, x: jax.Array) -> Quantized:
    if x.shape[-1] != self.code_dim:
      raise ValueError(f"VectorQuantizer: input dim {x.shape[-1]} != code_dim {self.code_dim}")
    lead = x.shape[:-1]
    inputs = x.astype(jnp.float32)
    if self.l2_normalize:
      inputs = l2_normalize(inputs)
    table = self.embedding_table()
    distances = pairwise_sq_distances(inputs.reshape(-1, self.code_dim), table)
    indices = jnp.argmin(distances, axis=-1).astype(jnp.int32)
    codes = jnp.take(table, indices, axis=0).reshape(inputs.shape)
    quantized = inputs + jax.lax.stop_gradient(codes - inputs)
    return Quantized(quantized, inputs, codes, indices.reshape(lead),
                     distances.reshape(lead + (self.num_codes,)))

  def lookup(self, indices: jax.Array) -> jax.Array:
    """Integer indices [...] -> code embeddings [..., code_dim] (f32)."""
    return jnp.take(self.embedding_table(), indices, axis=0)


def restart_dead_codes(codebook: jax.Array, dead: jax.Array, candidates: jax.Array,
                       rng: jax.Array) -> jax.Array:
  """Codebook [K, D] with each `dead` row ([K] bool) replaced by a random row of `candidates`
  ([N, D], e.g. this batch's encoder outputs; drawn without replacement when N >= K)."""
  num_codes, num_candidates = codebook.shape[0], candidates.shape[0]
  picks = jax.random.choice(rng, num_candidates, (num_codes,), replace=num_candidates < num_codes)
  return jnp.where(dead[:, None], candidates[picks].astype(codebook.dtype), codebook)
