"""A small conv + attention autoencoder and a conv critic: the core's test and benchmark model.

Shaped like the real stages (ResNet-style convs, GroupNorm, one self-attention block at the lowest
resolution, two parameter groups) but tiny, so the core is tested without the VQGAN.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models.layers import Conv, dense, group_norm


class ResBlock(nn.Module):
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = Conv(self.features, dtype=self.dtype)(nn.silu(group_norm(8, self.dtype)(x)))
    h = Conv(self.features, dtype=self.dtype)(nn.silu(group_norm(8, self.dtype)(h)))
    if x.shape[-1] != self.features:
      x = Conv(self.features, (1, 1), dtype=self.dtype)(x)
    return x + h


class SelfAttention(nn.Module):
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    y = group_norm(8, self.dtype)(x).reshape(b, h * w, c)
    q, k, v = (dense(c, ("embed", "mlp"), self.dtype, name=n)(y) for n in ("q", "k", "v"))
    att = jax.nn.softmax((q @ k.swapaxes(1, 2)).astype(jnp.float32) / jnp.sqrt(c), axis=-1)
    y = (att.astype(self.dtype) @ v)
    y = dense(c, ("mlp", "embed"), self.dtype, name="out")(y)
    return x + y.reshape(b, h, w, c)


class ToyAutoencoder(nn.Module):
  channels: int = 32
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = self.channels
    x = nn.with_logical_constraint(x, ("batch", None, None, None))
    h = Conv(c, dtype=self.dtype)(x)
    h = ResBlock(c, self.dtype)(h)
    h = Conv(2 * c, strides=(2, 2), dtype=self.dtype)(h)
    h = ResBlock(2 * c, self.dtype)(h)
    h = SelfAttention(self.dtype)(h)
    h = jax.image.resize(h, (h.shape[0], x.shape[1], x.shape[2], h.shape[3]), "nearest")
    h = ResBlock(c, self.dtype)(h)
    y = Conv(x.shape[-1], dtype=self.dtype)(nn.silu(group_norm(8, self.dtype)(h)))
    return nn.with_logical_constraint(y.astype(jnp.float32), ("batch", None, None, None))


class ToyCritic(nn.Module):
  """Predicts a per-image scalar (the reconstruction error) from an image."""
  channels: int = 16
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = nn.leaky_relu(Conv(self.channels, (4, 4), (2, 2), dtype=self.dtype)(x), 0.2)
    h = nn.leaky_relu(Conv(2 * self.channels, (4, 4), (2, 2), dtype=self.dtype)(h), 0.2)
    return dense(1, ("embed", "mlp"), self.dtype)(h.mean(axis=(1, 2))).astype(jnp.float32)[:, 0]
