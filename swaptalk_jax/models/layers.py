"""Building blocks shared by every model, with logical axis names on every parameter.

Logical names (mapped to mesh axes by `swaptalk_jax.core.sharding` rules):
  conv kernels ('conv_h', 'conv_w', 'conv_in', 'conv_out'); dense kernels ('embed', 'mlp') or
  ('mlp', 'embed'); norms ('norm',); token embeddings ('vocab', 'embed').
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models.conv_ops import conv2d

Dtype = Any


class Conv(nn.Module):
  """2-D convolution on NHWC inputs through `conv_ops.conv2d`; params f32, compute in `dtype`."""
  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 1)
  padding: Any = "SAME"
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    kernel = self.param(
        "kernel",
        nn.with_logical_partitioning(self.kernel_init, ("conv_h", "conv_w", "conv_in", "conv_out")),
        (kh, kw, x.shape[-1], self.features), self.param_dtype)
    y = conv2d(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding)
    if self.use_bias:
      bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("conv_out",)),
                        (self.features,), self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y


def dense(features: int, names=("embed", "mlp"), dtype=jnp.float32, use_bias=True, name=None,
          kernel_init=nn.initializers.lecun_normal()) -> nn.Dense:
  """A Dense layer whose kernel and bias carry logical axis names."""
  return nn.Dense(
      features, dtype=dtype, param_dtype=jnp.float32, use_bias=use_bias, name=name,
      kernel_init=nn.with_logical_partitioning(kernel_init, names),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (names[-1],)))


def group_norm(num_groups: int = 32, dtype=jnp.float32, name=None) -> nn.GroupNorm:
  """GroupNorm (statistics in f32 whatever the compute dtype) with named scale/bias."""
  return nn.GroupNorm(
      num_groups=num_groups, epsilon=1e-6, dtype=dtype, param_dtype=jnp.float32, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))


def layer_norm(dtype=jnp.float32, name=None) -> nn.LayerNorm:
  """LayerNorm with named scale/bias."""
  return nn.LayerNorm(
      epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))
