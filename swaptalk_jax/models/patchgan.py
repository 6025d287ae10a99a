"""PatchGAN discriminator (pix2pix / taming NLayerDiscriminator) on NHWC images.

4x4 convs (stride 2 for the first `num_layers`, then two stride-1), LeakyReLU 0.2. Normalisation is
GroupNorm rather than BatchNorm: it needs no running statistics (no mutable state to shard or
checkpoint) and is independent of the per-device batch size, which BatchNorm under pjit is not;
ActNorm's data-dependent initialisation would need an extra init pass for the same effect.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models import layers


def _normal_init(stddev: float = 0.02):
  return nn.initializers.normal(stddev)


class PatchGANDiscriminator(nn.Module):
  """Image [B, H, W, 3] -> patch logits [B, H', W', 1] (f32)."""
  base_features: int = 64
  num_layers: int = 3
  max_mult: int = 8
  num_groups: int = 32
  dtype: jnp.dtype = jnp.float32

  def _norm(self, features: int, name: str):
    return layers.group_norm(min(self.num_groups, features), self.dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = lambda f, s, n, bias=True: layers.Conv(
        f, (4, 4), strides=(s, s), padding=((1, 1), (1, 1)), use_bias=bias, dtype=self.dtype,
        kernel_init=_normal_init(), name=n)
    h = nn.leaky_relu(conv(self.base_features, 2, "conv_0")(x), 0.2)
    for i in range(1, self.num_layers + 1):
      features = self.base_features * min(2 ** i, self.max_mult)
      stride = 2 if i < self.num_layers else 1
      h = conv(features, stride, f"conv_{i}", bias=False)(h)
      h = nn.leaky_relu(self._norm(features, f"norm_{i}")(h), 0.2)
      h = nn.with_logical_constraint(h, ("batch", None, None, None))
    return conv(1, 1, "conv_out")(h).astype(jnp.float32)


def discriminator_from_config(config, dtype: jnp.dtype = jnp.float32) -> PatchGANDiscriminator:
  """The PatchGAN of a `configs/vqgan.py` config's `discriminator` fields."""
  return PatchGANDiscriminator(config.base_features, config.num_layers,
                               num_groups=config.num_groups, dtype=dtype)
