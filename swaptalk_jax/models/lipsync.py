"""The Lip Transform Module of the lip-sync stage (PAPER_NOTES section 3, Figure 2d), its audio
encoder, and the whole token-space lip-sync network (face warp + lip transform).

  inputs  T^U (target upper-half token embeddings), R^U, R^B (the reference frame's), audio
          (the pipeline's per-frame log-mel window [16, 80], or any [T, F] feature sequence)
  output  T^^B: predicted lower-half embeddings of the target; the caller joins [T^U; T^^B].
The target's lower half T^B is NEVER an input: it is only the ground truth of L_code.

Backbones (Table V's three rows), chosen by `backbone`:
  'unet'        LDM-style: residual conv blocks, each followed by a spatial cross-attention of the
                token features to the audio sequence (audio = keys/values); skips across levels.
  'plain_unet'  the same UNet without attention: the pooled audio embedding modulates every block
                (FiLM: scale and shift after the second norm).
  'dit'         pre-LN transformer blocks over the lower-half token grid (self-attention, then
                cross-attention to the audio), learned positions.
Every backbone predicts a residual on the warped reference (its output layer starts at zero), so
an untrained network is "the warped reference lower half".
`remat` (models/remat.py) checkpoints every repeated block: the UNet's res blocks and their audio
cross-attentions, the DiT's and the audio encoder's transformer blocks, the face warp's conv blocks.
"""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models import layers
from swaptalk_jax.models.attention import (PositionEmbedding, SpatialCrossAttention,
                                          TransformerBlock, sinusoidal_positions)
from swaptalk_jax.models.face_warp import FaceWarp, downsample, upsample_to
from swaptalk_jax.models.remat import remat_block

Dtype = Any
BACKBONES = ("unet", "plain_unet", "dit")
MEL_SCALE = 4.0   # the log-mel's max_abs_value (swaptalk_jax/audio/mel.py): inputs / 4 in [-1, 1]


def _constrain(x: jax.Array) -> jax.Array:
  return nn.with_logical_constraint(x, ("batch",) + (None,) * (x.ndim - 1))


class AudioEncoder(nn.Module):
  """Audio features [N, T, F] (log-mel: F = 80) -> a sequence [N, T, width] for cross-attention.

  Linear in, fixed sinusoidal positions, `num_conv` residual temporal convs (kernel 3, the local
  phonetic context), then `num_layers` pre-LN self-attention blocks over the window."""
  width: int = 128
  num_conv: int = 2
  num_layers: int = 1
  num_heads: int = 4
  input_scale: float = 1.0 / MEL_SCALE
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    if features.ndim != 3:
      raise ValueError(f"AudioEncoder: features must be [N, T, F], got {features.shape}")
    x = features.astype(jnp.float32) * self.input_scale
    x = layers.dense(self.width, ("mlp", "embed"), self.dtype, name="proj_in")(x)
    x = x + sinusoidal_positions(x.shape[1], self.width)[None].astype(x.dtype)
    for i in range(self.num_conv):
      h = nn.gelu(layers.layer_norm(self.dtype, name=f"conv_{i}_norm")(x))
      h = layers.Conv(self.width, (3, 1), dtype=self.dtype, name=f"conv_{i}")(h[:, :, None, :])
      x = x + h[:, :, 0, :]
    block_cls = remat_block(TransformerBlock, self.remat)
    for i in range(self.num_layers):
      x = block_cls(self.num_heads, self.width // self.num_heads, 4 * self.width,
                    cross_attention=False, self_attention=True, norm_first=True,
                    dtype=self.dtype, name=f"block_{i}")(x)
    return _constrain(layers.layer_norm(self.dtype, name="norm_out")(x))


class ResBlock(nn.Module):
  """GroupNorm-SiLU-Conv twice with a residual; `film` [N, 2C] (scale, shift) modulates the second
  norm's output when given (the plain UNet's audio path)."""
  features: int
  num_groups: int = 8
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, film: Optional[jax.Array] = None) -> jax.Array:
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm1")(x))
    h = layers.Conv(self.features, dtype=self.dtype, name="conv1")(h)
    h = layers.group_norm(self.num_groups, self.dtype, name="norm2")(h)
    if film is not None:
      scale, shift = jnp.split(
          layers.dense(2 * self.features, ("embed", "mlp"), self.dtype, name="film",
                       kernel_init=nn.initializers.zeros)(film), 2, axis=-1)
      h = h * (1.0 + scale[:, None, None, :]) + shift[:, None, None, :]
    h = layers.Conv(self.features, dtype=self.dtype, name="conv2")(nn.silu(h))
    if x.shape[-1] != self.features:
      x = layers.Conv(self.features, (1, 1), dtype=self.dtype, name="skip")(x)
    return _constrain(x.astype(self.dtype) + h)


class LipUNet(nn.Module):
  """UNet over the lower-half token grid [N, h, w, Cin] -> [N, h, w, out_features], conditioned on
  the audio sequence [N, L, A]: by cross-attention after every res block (`attention=True`, the
  'unet' backbone) or by FiLM from its mean over time (`attention=False`, 'plain_unet')."""
  out_features: int
  features: Sequence[int] = (64, 128)
  num_res_blocks: int = 1
  attention: bool = True
  num_heads: int = 4
  num_groups: int = 8
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, x: jax.Array, audio: jax.Array) -> jax.Array:
    film = None if self.attention else jnp.mean(audio, axis=1)
    res_cls = remat_block(ResBlock, self.remat)
    attn_cls = remat_block(SpatialCrossAttention, self.remat)

    def block(h, f, name):
      h = res_cls(f, self.num_groups, self.dtype, name=name)(h, film)
      if self.attention:
        h = attn_cls(self.num_heads, f // self.num_heads, self.dtype, name=f"{name}_attn")(h, audio)
      return h

    h = layers.Conv(self.features[0], dtype=self.dtype, name="conv_in")(x)
    skips = []
    last = len(self.features) - 1
    for level, f in enumerate(self.features):
      for i in range(self.num_res_blocks):
        h = block(h, f, f"down_{level}_{i}")
      if level != last:
        skips.append(h)
        h = downsample(h, f, self.dtype, f"downsample_{level}")
    h = block(h, self.features[-1], "mid")
    for level in reversed(range(last)):
      skip = skips.pop()
      h = jnp.concatenate([upsample_to(h, skip.shape[1:3]), skip], axis=-1)
      for i in range(self.num_res_blocks):
        h = block(h, self.features[level], f"up_{level}_{i}")
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm_out")(h))
    return layers.Conv(self.out_features, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                       name="conv_out")(h)


class LipDiT(nn.Module):
  """Pre-LN transformer over the h*w tokens of the grid [N, h, w, Cin] -> [N, h, w, out_features]:
  each block self-attends over the face tokens and cross-attends to the audio sequence."""
  out_features: int
  width: int = 128
  depth: int = 4
  num_heads: int = 4
  mlp_ratio: int = 4
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, x: jax.Array, audio: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    tokens = layers.dense(self.width, ("mlp", "embed"), self.dtype, name="proj_in")(
        x.reshape(n, h * w, c))
    tokens = PositionEmbedding(h * w, name="positions")(tokens)
    context = layers.dense(self.width, ("mlp", "embed"), self.dtype, name="audio_proj")(audio)
    block_cls = remat_block(TransformerBlock, self.remat)
    for i in range(self.depth):
      tokens = block_cls(self.num_heads, self.width // self.num_heads,
                         self.mlp_ratio * self.width, cross_attention=True,
                         self_attention=True, norm_first=True, dtype=self.dtype,
                         name=f"block_{i}")(tokens, context)
      tokens = _constrain(tokens)
    tokens = layers.layer_norm(self.dtype, name="norm_out")(tokens)
    out = layers.dense(self.out_features, ("embed", "mlp"), self.dtype, name="proj_out",
                       kernel_init=nn.initializers.zeros)(tokens)
    return out.reshape(n, h, w, self.out_features)


class LipSyncNet(nn.Module):
  """(T^U, R^U, R^B, audio) -> (T^^B, aux): the whole token-space lip-sync network.

  use_warp: the Face Warping Module aligns R^B to the target pose first (False: R^B as is, the
    warping ablation). condition_on_upper: T^U also enters the lip transform as extra channels
    (row i of the upper grid beside row i of the lower), telling it the target's pose.
  aux: {'warped': warped R^B, 'flow': the warp's offsets (zeros without warping)}.
  """
  embed_dim: int
  backbone: str = "unet"
  use_warp: bool = True
  condition_on_upper: bool = True
  warp_features: Sequence[int] = (32, 64)
  max_offset: float = 4.0
  unet_features: Sequence[int] = (64, 128)
  num_res_blocks: int = 1
  num_heads: int = 4
  num_groups: int = 8
  dit_width: int = 128
  dit_depth: int = 4
  audio_width: int = 128
  audio_layers: int = 1
  dtype: Dtype = jnp.float32
  remat: str = "none"

  @nn.compact
  def __call__(self, target_upper: jax.Array, reference_upper: jax.Array,
               reference_lower: jax.Array, audio: jax.Array) -> tuple[jax.Array, dict]:
    if self.backbone not in BACKBONES:
      raise ValueError(f"LipSyncNet: backbone {self.backbone!r} is not one of {BACKBONES}")
    if target_upper.shape[-1] != self.embed_dim:
      raise ValueError(f"LipSyncNet: token dim {target_upper.shape[-1]} != embed_dim {self.embed_dim}")
    if audio.shape[0] != target_upper.shape[0]:
      raise ValueError(f"LipSyncNet: {audio.shape[0]} audio windows for {target_upper.shape[0]} frames")
    reference_lower = reference_lower.astype(jnp.float32)
    if self.use_warp:
      warped, flow = FaceWarp(self.warp_features, self.warp_features, self.num_groups,
                              self.max_offset, self.dtype, remat=self.remat, name="face_warp")(
                                  target_upper, reference_upper, reference_lower)
    else:
      warped = reference_lower
      flow = jnp.zeros(reference_lower.shape[:-1] + (2,), jnp.float32)
    context = AudioEncoder(self.audio_width, num_layers=self.audio_layers,
                           num_heads=self.num_heads, dtype=self.dtype, remat=self.remat,
                           name="audio_encoder")(audio)
    x = warped
    if self.condition_on_upper:
      x = jnp.concatenate([warped, target_upper.astype(jnp.float32)], axis=-1)
    if self.backbone == "dit":
      delta = LipDiT(self.embed_dim, self.dit_width, self.dit_depth, self.num_heads,
                     dtype=self.dtype, remat=self.remat, name="lip_transform")(x, context)
    else:
      delta = LipUNet(self.embed_dim, self.unet_features, self.num_res_blocks,
                      attention=self.backbone == "unet", num_heads=self.num_heads,
                      num_groups=self.num_groups, dtype=self.dtype, remat=self.remat,
                      name="lip_transform")(x, context)
    return warped + delta.astype(jnp.float32), {"warped": warped, "flow": flow}


def lipsync_from_config(model_config, embed_dim: int, dtype=jnp.float32) -> LipSyncNet:
  """The network of `config.model` (configs/lipsync.py) for a VQGAN with `embed_dim`-dim tokens."""
  m = model_config
  return LipSyncNet(
      embed_dim=embed_dim, backbone=m.backbone, use_warp=m.use_warp,
      condition_on_upper=m.condition_on_upper, warp_features=tuple(m.warp_features),
      max_offset=m.max_offset, unet_features=tuple(m.unet_features),
      num_res_blocks=m.num_res_blocks, num_heads=m.num_heads, num_groups=m.num_groups,
      dit_width=m.dit_width, dit_depth=m.dit_depth, audio_width=m.audio_width,
      audio_layers=m.audio_layers, remat=m.get("remat", "none"), dtype=jnp.dtype(dtype))
