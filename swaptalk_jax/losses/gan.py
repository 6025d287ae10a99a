"""Adversarial losses: hinge discriminator/generator terms and taming's adaptive generator weight."""
from typing import Callable

import jax
import jax.numpy as jnp


def hinge_discriminator_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), halved as in taming."""
  return 0.5 * (jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake)))


def paired_accuracy(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
  """Share of patches where D scores the real image above its own reconstruction (same example,
  same position): 0.5 is a D that cannot tell them apart, whatever its offset. A health metric:
  a D that collapsed to a nearly input-independent output reads ~0.5 (its residual noise) while
  its hinge loss reads 1.0; exact ties count as not above, so a constant D reads 0."""
  return jnp.mean((logits_real > logits_fake).astype(jnp.float32))


def hinge_generator_loss(logits_fake: jax.Array) -> jax.Array:
  """-mean(D(G(z)))."""
  return -jnp.mean(logits_fake)


def last_layer_grad_norm(loss_fn: Callable[[jax.Array], jax.Array], output: jax.Array,
                         last_layer: Callable[[jax.Array], jax.Array],
                         weight: jax.Array) -> jax.Array:
  """|d loss / d weight| where output = last_layer(weight) (+ terms not depending on it).

  The output-side cotangent comes from jax.grad of `loss_fn` at `output`; jax.vjp of the last layer
  turns it into the weight gradient, so the rest of the network is not differentiated again.
  """
  cotangent = jax.grad(lambda y: loss_fn(y).astype(jnp.float32))(output)
  _, pullback = jax.vjp(last_layer, weight)
  (grad_weight,) = pullback(cotangent.astype(output.dtype))
  return jnp.sqrt(jnp.sum(jnp.square(grad_weight.astype(jnp.float32))))


def adaptive_weight(nll_grad_norm: jax.Array, gan_grad_norm: jax.Array,
                    max_weight: float = 1e4, eps: float = 1e-4) -> jax.Array:
  """Taming's balance |grad nll| / (|grad gan| + eps), clipped to [0, max_weight], no gradient."""
  w = nll_grad_norm / (gan_grad_norm + eps)
  return jax.lax.stop_gradient(jnp.clip(w, 0.0, max_weight))
