"""models/layers: the project's GroupNorm equals flax's (values, gradients, parameter tree)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swaptalk_jax.models import layers


def perturbed_params(model, x):
  """The model's params with scale/bias moved off their 1/0 init (so both enter the check)."""
  params = nn.meta.unbox(model.init(jax.random.key(0), x))
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return jax.tree.unflatten(tree, [v + 0.3 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)])


@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 32), 8), ((3, 10, 16), 4), ((1, 3, 4, 2, 8), 2)])
def test_group_norm_equals_flax(shape, groups):
  x = 2.0 * jax.random.normal(jax.random.key(2), shape) + 0.7
  ours = layers.group_norm(groups)
  flax_norm = nn.GroupNorm(num_groups=groups, epsilon=1e-6)
  params = perturbed_params(ours, x)
  assert jax.tree.structure(params) == jax.tree.structure(nn.meta.unbox(flax_norm.init(jax.random.key(0), x)))

  def loss(module):
    return lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))
  np.testing.assert_allclose(ours.apply(params, x), flax_norm.apply(params, x), atol=2e-6)
  for a, b in zip(jax.tree.leaves(jax.grad(loss(ours), argnums=(0, 1))(params, x)),
                  jax.tree.leaves(jax.grad(loss(flax_norm), argnums=(0, 1))(params, x))):
    np.testing.assert_allclose(a, b, atol=5e-5 * max(1.0, float(jnp.abs(b).max())))


def test_group_norm_bf16_takes_f32_statistics():
  x = (3.0 * jax.random.normal(jax.random.key(4), (2, 4, 4, 16)) + 50.0).astype(jnp.bfloat16)
  ours = layers.group_norm(4, dtype=jnp.bfloat16)
  params = perturbed_params(ours, x)
  y = ours.apply(params, x)
  assert y.dtype == jnp.bfloat16
  reference = nn.GroupNorm(num_groups=4, epsilon=1e-6).apply(params, x.astype(jnp.float32))
  np.testing.assert_allclose(y.astype(jnp.float32), reference, atol=0.05)


def test_group_norm_channels_must_split_into_groups():
  with pytest.raises(ValueError, match="12 channels do not split into 8 groups"):
    layers.group_norm(8).init(jax.random.key(0), jnp.zeros((1, 2, 2, 12)))
