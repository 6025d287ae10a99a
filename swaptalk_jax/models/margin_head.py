"""The classification head of ArcFace training: cosines of embeddings to learned class centres.

A training-only parameter group of `trainers/identity.py` (the swap stage loads the embedder
alone). `losses/angular_margin.py` turns the cosines into the additive-angular-margin softmax.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp


def l2_normalise(x: jax.Array, axis: int = -1) -> jax.Array:
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True) + 1e-12)


class MarginHead(nn.Module):
  """[N, E] embeddings -> [N, num_classes] cos(theta) to the unit-normalised class centres."""
  num_classes: int

  @nn.compact
  def __call__(self, embeddings: jax.Array) -> jax.Array:
    centres = self.param("centres", nn.with_logical_partitioning(
        nn.initializers.normal(0.01), ("embed", "vocab")),
        (embeddings.shape[-1], self.num_classes), jnp.float32)
    return l2_normalise(embeddings) @ l2_normalise(centres, axis=0)
