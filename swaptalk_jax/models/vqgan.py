"""The half-split VQGAN of SwapTalk (PAPER_NOTES section 1): one encoder, two codebooks, one decoder.

A face [B, S, S, 3] is cut into its upper and lower halves; both go through the same taming-style
encoder as separate images (a batch of 2B, so no receptive field crosses the cut), the upper
latents are quantised against codebook C^U and the lower against C^B, and the two token grids,
stacked along height, form T_VQ [B, h, w, D] (rows [0, h/2) upper, [h/2, h) lower). One decoder
maps T_VQ back to the full face. NHWC throughout; params f32, compute in `dtype`. `remat`
(models/remat.py) checkpoints every res and attention block of the encoder and decoder.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models import layers
from swaptalk_jax.models.quantizer import Quantized, VectorQuantizer
from swaptalk_jax.models.remat import remat_block

Dtype = jnp.dtype


def _constrain(x: jax.Array) -> jax.Array:
  """Batch-sharded activations at block boundaries (no-op without logical rules)."""
  return nn.with_logical_constraint(x, ("batch", None, None, None))


class ResnetBlock(nn.Module):
  """GroupNorm-SiLU-Conv twice, plus a (1x1-projected when channels change) skip."""
  features: int
  num_groups: int = 32
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm1")(x))
    h = layers.Conv(self.features, (3, 3), dtype=self.dtype, name="conv1")(h)
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm2")(h))
    h = layers.Conv(self.features, (3, 3), dtype=self.dtype, name="conv2")(h)
    if x.shape[-1] != self.features:
      x = layers.Conv(self.features, (1, 1), dtype=self.dtype, name="nin_shortcut")(x)
    return _constrain(x.astype(self.dtype) + h)


class AttnBlock(nn.Module):
  """Single-head self-attention over all positions of a feature map, residual (taming AttnBlock)."""
  num_groups: int = 32
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, hgt, wid, c = x.shape
    h = layers.group_norm(self.num_groups, self.dtype, name="norm")(x)
    q, k, v = (layers.Conv(c, (1, 1), dtype=self.dtype, name=n)(h).reshape(b, hgt * wid, c)
               for n in ("q", "k", "v"))
    logits = jnp.einsum("bqc,bkc->bqk", q, k).astype(jnp.float32) * (c ** -0.5)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    h = jnp.einsum("bqk,bkc->bqc", weights, v).reshape(b, hgt, wid, c)
    h = layers.Conv(c, (1, 1), dtype=self.dtype, name="proj_out")(h)
    return _constrain(x.astype(self.dtype) + h)


class Encoder(nn.Module):
  """Image [N, H, W, 3] -> latents [N, H/f, W/f, embed_dim], f = 2 ** (len(ch_mult) - 1)."""
  ch: int
  ch_mult: Sequence[int]
  num_res_blocks: int
  z_channels: int
  embed_dim: int
  num_groups: int = 32
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    block_cls, attn_cls = (remat_block(c, self.remat) for c in (ResnetBlock, AttnBlock))
    block = lambda f, n: block_cls(f, self.num_groups, self.dtype, name=n)
    attn = lambda n: attn_cls(self.num_groups, self.dtype, name=n)
    h = layers.Conv(self.ch, (3, 3), dtype=self.dtype, name="conv_in")(x)
    last = len(self.ch_mult) - 1
    for level, mult in enumerate(self.ch_mult):
      for i in range(self.num_res_blocks):
        h = block(self.ch * mult, f"down_{level}_block_{i}")(h)
        if level == last:
          h = attn(f"down_{level}_attn_{i}")(h)
      if level != last:  # taming's asymmetric pad: (0, 1) on height and width, stride-2 3x3 conv
        h = layers.Conv(h.shape[-1], (3, 3), strides=(2, 2), padding=((0, 1), (0, 1)),
                        dtype=self.dtype, name=f"down_{level}_downsample")(h)
        h = _constrain(h)
    h = block(h.shape[-1], "mid_block_1")(h)
    h = attn("mid_attn_1")(h)
    h = block(h.shape[-1], "mid_block_2")(h)
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm_out")(h))
    h = layers.Conv(self.z_channels, (3, 3), dtype=self.dtype, name="conv_out")(h)
    return layers.Conv(self.embed_dim, (1, 1), dtype=self.dtype, name="quant_conv")(h)


class Decoder(nn.Module):
  """Tokens [B, h, w, embed_dim] -> image [B, h*f, w*f, out_channels].

  `__call__(z, return_features=True)` also returns the input of the last conv (`conv_out`), which
  the adaptive GAN weight differentiates through.
  """
  ch: int
  ch_mult: Sequence[int]
  num_res_blocks: int
  z_channels: int
  out_channels: int = 3
  num_groups: int = 32
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, z: jax.Array, return_features: bool = False):
    block_cls, attn_cls = (remat_block(c, self.remat) for c in (ResnetBlock, AttnBlock))
    block = lambda f, n: block_cls(f, self.num_groups, self.dtype, name=n)
    attn = lambda n: attn_cls(self.num_groups, self.dtype, name=n)
    h = layers.Conv(self.z_channels, (1, 1), dtype=self.dtype, name="post_quant_conv")(z)
    h = layers.Conv(self.ch * self.ch_mult[-1], (3, 3), dtype=self.dtype, name="conv_in")(h)
    h = block(h.shape[-1], "mid_block_1")(h)
    h = attn("mid_attn_1")(h)
    h = block(h.shape[-1], "mid_block_2")(h)
    last = len(self.ch_mult) - 1
    for level in reversed(range(len(self.ch_mult))):
      for i in range(self.num_res_blocks + 1):
        h = block(self.ch * self.ch_mult[level], f"up_{level}_block_{i}")(h)
        if level == last:
          h = attn(f"up_{level}_attn_{i}")(h)
      if level != 0:
        h = layers.UpsampleConv(h.shape[-1], dtype=self.dtype, name=f"up_{level}_upsample")(h)
        h = _constrain(h)
    features = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm_out")(h))
    out = layers.Conv(self.out_channels, (3, 3), dtype=self.dtype, name="conv_out")(features)
    out = out.astype(jnp.float32)
    return (out, features) if return_features else out


class HalfSplitVQGAN(nn.Module):
  """Shared encoder, codebooks C^U (`quantizer_upper`) and C^B (`quantizer_lower`), one decoder."""
  ch: int = 128
  ch_mult: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  z_channels: int = 256
  embed_dim: int = 256
  num_codes: int = 1024
  l2_normalize_codes: bool = False
  num_groups: int = 32
  dtype: Dtype = jnp.float32
  remat: str = "none"

  def setup(self):
    self.encoder = Encoder(self.ch, self.ch_mult, self.num_res_blocks, self.z_channels,
                           self.embed_dim, self.num_groups, self.dtype, remat=self.remat)
    self.decoder = Decoder(self.ch, self.ch_mult, self.num_res_blocks, self.z_channels, 3,
                           self.num_groups, self.dtype, remat=self.remat)
    self.quantizer_upper = VectorQuantizer(self.num_codes, self.embed_dim, self.l2_normalize_codes)
    self.quantizer_lower = VectorQuantizer(self.num_codes, self.embed_dim, self.l2_normalize_codes)

  @property
  def downsample_factor(self) -> int:
    return 2 ** (len(self.ch_mult) - 1)

  def _check_images(self, images: jax.Array) -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"HalfSplitVQGAN: images must be [B, S, S, 3], got {images.shape}")
    _, s, w, _ = images.shape
    if s % (2 * self.downsample_factor) or w % self.downsample_factor:
      raise ValueError(f"HalfSplitVQGAN: image size {s}x{w} must divide into halves that are "
                       f"multiples of the downsample factor {self.downsample_factor}")

  def encode(self, images: jax.Array) -> tuple[Quantized, Quantized]:
    """Images [B, S, W, 3] in [-1, 1] -> (upper, lower) `Quantized`, each [B, h/2, w, D].

    The halves are stacked example-major ([B, 2, S/2, W, 3] -> [2B, ...]) so a batch-sharded input
    stays local to its device, and go through ONE encoder call, each half as its own image.
    """
    self._check_images(images)
    b, s, w, c = images.shape
    halves = images.reshape(b * 2, s // 2, w, c)
    z = self.encoder(halves).astype(jnp.float32)
    z = z.reshape((b, 2) + z.shape[1:])
    return self.quantizer_upper(z[:, 0]), self.quantizer_lower(z[:, 1])

  def encode_to_indices(self, images: jax.Array) -> jax.Array:
    """Images -> int32 token indices [B, h, w]: upper rows index C^U, lower rows index C^B."""
    upper, lower = self.encode(images)
    return jnp.concatenate([upper.indices, lower.indices], axis=1)

  def indices_to_embeddings(self, indices: jax.Array) -> jax.Array:
    """Indices [B, h, w] (upper rows first) -> token embeddings T_VQ [B, h, w, D] (f32)."""
    half = indices.shape[1] // 2
    if indices.shape[1] != 2 * half:
      raise ValueError(f"indices_to_embeddings: token grid height {indices.shape[1]} must be even")
    return jnp.concatenate([self.quantizer_upper.lookup(indices[:, :half]),
                            self.quantizer_lower.lookup(indices[:, half:])], axis=1)

  def join_halves(self, upper: jax.Array, lower: jax.Array) -> jax.Array:
    """Upper [B, h/2, w, D] and lower [B, h/2, w, D] token grids -> T_VQ [B, h, w, D]."""
    return jnp.concatenate([upper, lower], axis=1)

  def decode(self, tokens: jax.Array, return_features: bool = False):
    """T_VQ [B, h, w, D] -> face [B, h*f, w*f, 3] (f32); see `Decoder` for return_features."""
    return self.decoder(tokens.astype(self.dtype), return_features=return_features)

  def __call__(self, images: jax.Array, return_features: bool = False):
    """Images -> (reconstruction [, decoder features], (upper, lower) `Quantized`)."""
    upper, lower = self.encode(images)
    decoded = self.decode(self.join_halves(upper.quantized, lower.quantized), return_features)
    return decoded, (upper, lower)


def vqgan_from_config(model_config, dtype=jnp.float32, remat=None) -> HalfSplitVQGAN:
  """The model of `config.model` (configs/vqgan.py); later stages build their frozen VQGAN here.
  `remat` (a policy name) overrides `model_config.remat` (absent in older configs: 'none'): the
  swap stage checkpoints the frozen decoder its identity losses backpropagate through."""
  return HalfSplitVQGAN(
      ch=model_config.ch, ch_mult=tuple(model_config.ch_mult),
      num_res_blocks=model_config.num_res_blocks, z_channels=model_config.z_channels,
      embed_dim=model_config.embed_dim, num_codes=model_config.num_codes,
      l2_normalize_codes=model_config.l2_normalize_codes, num_groups=model_config.num_groups,
      remat=remat or model_config.get("remat", "none"), dtype=jnp.dtype(dtype))
