"""models/attention.py: shapes, logical names, the post-LN/pre-LN residual order, masking, and that
cross-attention output depends on the context only through keys/values."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swaptalk_jax.models import attention


def _init_apply(module, *args):
  variables = module.init(jax.random.PRNGKey(0), *args)
  return variables, module.apply(variables, *args)


def test_attention_shapes_and_logical_names():
  x, ctx = jnp.ones((2, 6, 16)), jnp.ones((2, 9, 12))
  variables, y = _init_apply(attention.MultiHeadAttention(4, 8), x, ctx)
  assert y.shape == (2, 6, 16)
  specs = nn.get_partition_spec(variables)["params"]
  assert tuple(specs["query"]["kernel"]) == ("embed", "heads", "kv")
  assert tuple(specs["out"]["kernel"]) == ("heads", "kv", "embed")
  assert nn.unbox(variables)["params"]["key"]["kernel"].shape == (12, 4, 8)


def test_attention_matches_numpy_reference():
  rng = np.random.default_rng(0)
  x, ctx = rng.normal(size=(1, 3, 8)).astype(np.float32), rng.normal(size=(1, 5, 8)).astype(np.float32)
  module = attention.MultiHeadAttention(2, 4)
  variables = nn.unbox(module.init(jax.random.PRNGKey(1), x, ctx))
  p = jax.tree.map(np.asarray, variables["params"])
  for name in ("query", "key", "value", "out"):   # non-zero biases
    p[name]["bias"] = rng.normal(size=p[name]["bias"].shape).astype(np.float32)
  got = module.apply({"params": p}, x, ctx)
  q = np.einsum("bld,dhk->blhk", x, p["query"]["kernel"]) + p["query"]["bias"]
  k = np.einsum("bld,dhk->blhk", ctx, p["key"]["kernel"]) + p["key"]["bias"]
  v = np.einsum("bld,dhk->blhk", ctx, p["value"]["kernel"]) + p["value"]["bias"]
  logits = np.einsum("bqhd,bkhd->bhqk", q, k) / 2.0
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  want = np.einsum("bqhd,hdo->bqo", np.einsum("bhqk,bkhd->bqhd", w, v), p["out"]["kernel"])
  np.testing.assert_allclose(got, want + p["out"]["bias"], rtol=1e-5, atol=1e-5)


def test_mask_hides_keys():
  x = jnp.ones((1, 2, 8))
  ctx = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 8))
  module = attention.MultiHeadAttention(2, 4)
  variables = module.init(jax.random.PRNGKey(1), x, ctx)
  mask = jnp.array([True, True, False, False])[None, None, None, :]
  a = module.apply(variables, x, ctx, mask)
  b = module.apply(variables, x, ctx.at[:, 2:].set(99.0), mask)
  np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_block_residual_order(norm_first):
  x, ctx = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 16)), jnp.ones((2, 3, 16))
  block = attention.TransformerBlock(2, 8, 32, cross_attention=True, self_attention=True,
                                     norm_first=norm_first)
  variables, y = _init_apply(block, x, ctx)
  assert y.shape == x.shape
  # Post-LN ends in a LayerNorm (zero mean per token at init); pre-LN ends in a residual add.
  means = np.abs(np.asarray(y).mean(-1))
  assert (means.max() < 1e-4) == (not norm_first)
  with pytest.raises(ValueError, match="needs a context"):
    block.apply(variables, x, None)


def test_spatial_cross_attention_and_positions():
  fmap, audio = jnp.ones((2, 4, 4, 16)), jax.random.normal(jax.random.PRNGKey(0), (2, 7, 24))
  variables, y = _init_apply(attention.SpatialCrossAttention(2, 8), fmap, audio)
  assert y.shape == fmap.shape
  moved = attention.SpatialCrossAttention(2, 8).apply(variables, fmap, audio * 2.0)
  assert float(jnp.abs(moved - y).max()) > 1e-4         # the audio reaches the features
  _, z = _init_apply(attention.PositionEmbedding(10), jnp.zeros((2, 6, 16)))
  assert z.shape == (2, 6, 16) and float(jnp.abs(z).max()) > 0
  pos = attention.sinusoidal_positions(12, 8)
  assert pos.shape == (12, 8) and np.allclose(pos[0, :4], 0.0) and np.allclose(pos[0, 4:], 1.0)
