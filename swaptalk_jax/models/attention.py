"""Attention blocks shared by the swap transformer, the lip-sync UNet's audio cross-attention and
the DiT, with logical axis names on every parameter (q/k/v kernels ('embed', 'heads', 'kv'), output
('heads', 'kv', 'embed'), MLP ('embed', 'mlp') / ('mlp', 'embed'), positions ('length', 'embed')).

Softmax and LayerNorm statistics run in f32 whatever the compute dtype.
"""
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.models.layers import dense, layer_norm

Dtype = Any


class _Projection(nn.Module):
  """x [..., *in] -> [..., *features] contracting x's last `num_in` axes with a kernel created at its
  full rank (in + features), so every axis carries its logical name when it is made (flax's
  DenseGeneral makes it flat and reshapes, which a mesh's logical constraint rejects)."""
  features: tuple[int, ...]
  num_in: int
  names: tuple[str, ...]
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    rank = self.num_in + len(self.features)
    init = nn.initializers.lecun_normal(in_axis=tuple(range(self.num_in)),
                                        out_axis=tuple(range(self.num_in, rank)))
    kernel = self.param("kernel", nn.with_logical_partitioning(init, self.names),
                        x.shape[-self.num_in:] + tuple(self.features), jnp.float32)
    bias = self.param("bias", nn.with_logical_partitioning(
        nn.initializers.zeros, self.names[-len(self.features):]), tuple(self.features), jnp.float32)
    out = jnp.tensordot(x.astype(self.dtype), kernel.astype(self.dtype), axes=self.num_in)
    return out + bias.astype(self.dtype)


def _projection(features: tuple[int, ...], num_in: int, names: tuple[str, ...], dtype, name: str):
  return _Projection(tuple(features), num_in, names, dtype, name=name)


class MultiHeadAttention(nn.Module):
  """Scaled dot-product attention: queries from `x` [B, Lq, D], keys/values from `context`
  [B, Lk, Dc] (`x` itself when None: self-attention). `mask` [B, 1|H, Lq, Lk], True = attend."""
  num_heads: int
  head_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, context: Optional[jax.Array] = None,
               mask: Optional[jax.Array] = None) -> jax.Array:
    context = x if context is None else context
    heads = (self.num_heads, self.head_dim)
    names = ("embed", "heads", "kv")
    q = _projection(heads, 1, names, self.dtype, "query")(x.astype(self.dtype))
    k = _projection(heads, 1, names, self.dtype, "key")(context.astype(self.dtype))
    v = _projection(heads, 1, names, self.dtype, "value")(context.astype(self.dtype))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) / np.sqrt(self.head_dim)
    if mask is not None:
      logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    return _projection((x.shape[-1],), 2, ("heads", "kv", "embed"), self.dtype, "out")(out)


class MlpBlock(nn.Module):
  """Feed-forward: Dense(mlp_dim) -> GELU -> Dense(D)."""
  mlp_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = dense(self.mlp_dim, ("embed", "mlp"), self.dtype, name="fc1")(x)
    h = nn.gelu(h)
    return dense(x.shape[-1], ("mlp", "embed"), self.dtype, name="fc2")(h)


class TransformerBlock(nn.Module):
  """[self-attention] -> [cross-attention to `context`] -> feed-forward, each with a residual.

  norm_first=False is the paper's post-LN block (Fig. 2c: attention, add, LayerNorm, feed-forward,
  add, LayerNorm); norm_first=True is the pre-LN block of ViT/DiT.
  """
  num_heads: int
  head_dim: int
  mlp_dim: int
  cross_attention: bool = True
  self_attention: bool = False
  norm_first: bool = False
  dtype: Dtype = jnp.float32

  def _residual(self, x, fn, name):
    norm = layer_norm(self.dtype, name=f"{name}_norm")
    if self.norm_first:
      return x + fn(norm(x))
    return norm(x + fn(x))

  @nn.compact
  def __call__(self, x: jax.Array, context: Optional[jax.Array] = None) -> jax.Array:
    if self.self_attention:
      attn = MultiHeadAttention(self.num_heads, self.head_dim, self.dtype, name="self_attention")
      x = self._residual(x, attn, "self_attention")
    if self.cross_attention:
      if context is None:
        raise ValueError("TransformerBlock(cross_attention=True) needs a context sequence")
      attn = MultiHeadAttention(self.num_heads, self.head_dim, self.dtype, name="cross_attention")
      x = self._residual(x, lambda h: attn(h, context), "cross_attention")
    return self._residual(x, MlpBlock(self.mlp_dim, self.dtype, name="mlp"), "mlp")


class SpatialCrossAttention(nn.Module):
  """Residual cross-attention of a feature map [B, H, W, C] to a sequence `context` [B, L, D]
  (e.g. audio features as keys/values): pre-LN over the H*W tokens, attention, add."""
  num_heads: int
  head_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, feature_map: jax.Array, context: jax.Array) -> jax.Array:
    b, h, w, c = feature_map.shape
    tokens = feature_map.reshape(b, h * w, c)
    normed = layer_norm(self.dtype, name="norm")(tokens)
    out = MultiHeadAttention(self.num_heads, self.head_dim, self.dtype, name="attention")(
        normed, context)
    return (tokens + out).reshape(b, h, w, c).astype(feature_map.dtype)


class PositionEmbedding(nn.Module):
  """Learned additive position embedding for sequences of up to `length` tokens [B, L, D]."""
  length: int
  stddev: float = 0.02

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.shape[-2] > self.length:
      raise ValueError(f"PositionEmbedding: sequence of {x.shape[-2]} > length {self.length}")
    table = self.param(
        "embedding",
        nn.with_logical_partitioning(nn.initializers.normal(self.stddev), ("length", "embed")),
        (self.length, x.shape[-1]), jnp.float32)
    return x + table[:x.shape[-2]].astype(x.dtype)


def sinusoidal_positions(length: int, dim: int, max_period: float = 10_000.0) -> np.ndarray:
  """Fixed sine/cosine positions [length, dim] (Transformer, DiT); dim must be even."""
  if dim % 2:
    raise ValueError(f"sinusoidal_positions: dim must be even, got {dim}")
  freqs = np.exp(-np.log(max_period) * np.arange(dim // 2) / (dim // 2))
  angles = np.arange(length)[:, None] * freqs[None]
  return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)
