"""ArcFace's additive-angular-margin softmax (Deng et al., CVPR 2019; insightface's arcface_torch).

The target class's logit is s * cos(theta + m), the others s * cos(theta). Where theta + m would
pass pi (cos(theta + m) stops decreasing there) the target logit is s * (cos(theta) - m sin(m)),
arcface_torch's fallback, so the logit stays monotonic in theta.
"""
import math

import jax
import jax.numpy as jnp


def margin_logits(cosines: jax.Array, labels: jax.Array, scale: float, margin: float) -> jax.Array:
  """cos(theta) [N, C] and int labels [N] -> logits [N, C] with the margin on each target."""
  cosines = jnp.clip(cosines.astype(jnp.float32), -1.0, 1.0)
  sines = jnp.sqrt(jnp.clip(1.0 - jnp.square(cosines), 1e-12, 1.0))
  with_margin = cosines * math.cos(margin) - sines * math.sin(margin)
  with_margin = jnp.where(cosines > math.cos(math.pi - margin), with_margin,
                          cosines - margin * math.sin(margin))
  target = jax.nn.one_hot(labels, cosines.shape[-1], dtype=jnp.bool_)
  return scale * jnp.where(target, with_margin, cosines)


def margin_softmax_loss(cosines: jax.Array, labels: jax.Array, scale: float, margin: float
                        ) -> jax.Array:
  """Per-example cross-entropy [N] of the margin logits."""
  logits = margin_logits(cosines, labels, scale, margin)
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None].astype(jnp.int32),
                              axis=-1)[:, 0]
