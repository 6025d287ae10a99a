"""The face-swapping module of SwapTalk (Fig. 2c, PAPER_NOTES section 2) and its UNet ablation.

Both map a source face's VQ token embeddings S_VQ and a target frame's T_VQ ([B, h, w, D], upper
half rows first) to swapped token embeddings T~_VQ [B, h, w, D] of the same grid. Identity enters
only through the source tokens (never as an identity vector); the target's tokens carry pose and
expression. The same module maps the lip-sync reference frame R_VQ to R~_VQ.

- `SwapTransformer` (the paper): each stream's tokens pass its own Linear, plus a learned position
  embedding (shared by both streams: token (i, j) of the source and of the target sit at the same
  face position) and a learned semantic embedding of (stream, half): source/target x upper/lower.
  N post-LN blocks (`models.attention.TransformerBlock`): [self-attention over the target when
  `self_attention`], cross-attention with queries from the target and keys/values from the
  source, feed-forward. A final Linear gives T~_VQ.
- `SwapUNet` (Table IV's weaker backbone): a conv UNet over the token grid; the source comes in by
  CHANNEL CONCATENATION with the target (each position sees the source token at the same grid
  position, and the wider context only through the receptive field), which is what a UNet without
  attention can do and why the paper's transformer beats it.

`quantize_to_codes` snaps T~_VQ to the nearest code of the frozen VQGAN's codebook of each half
(optional at inference; training uses the continuous output).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models import layers
from swaptalk_jax.models.attention import PositionEmbedding, TransformerBlock
from swaptalk_jax.models.remat import remat_block
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, ResnetBlock

Dtype = Any
SOURCE, TARGET = 0, 1


def _check_pair(name: str, source: jax.Array, target: jax.Array) -> None:
  if source.ndim != 4 or source.shape[1:] != target.shape[1:] or source.shape[0] != target.shape[0]:
    raise ValueError(f"{name}: source and target token grids must both be [B, h, w, D] of one "
                     f"shape, got {source.shape} and {target.shape}")
  if target.shape[1] % 2:
    raise ValueError(f"{name}: token grid height {target.shape[1]} must be even (upper/lower halves)")


def _constrain(x: jax.Array) -> jax.Array:
  """Batch-sharded activations (no-op without logical rules)."""
  return nn.with_logical_constraint(x, ("batch",) + (None,) * (x.ndim - 1))


class SwapTransformer(nn.Module):
  """Cross-attention transformer in token space (Fig. 2c): (S_VQ, T_VQ) -> T~_VQ."""
  width: int = 512
  num_layers: int = 6
  num_heads: int = 8
  head_dim: int = 64
  mlp_dim: int = 2048
  max_tokens: int = 256           # position table size (h * w of the token grid)
  self_attention: bool = False    # a self-attention over the target before each cross-attention
  position_stddev: float = 0.02   # init scale of the position table (larger: attend by position)
  source_skip: bool = False       # T~_VQ = S_VQ + final Linear (ours, not the paper's; see below)
  dtype: Dtype = jnp.float32
  remat: str = "none"             # activation checkpointing of each block (models/remat.py)

  @nn.compact
  def __call__(self, source: jax.Array, target: jax.Array) -> jax.Array:
    _check_pair("SwapTransformer", source, target)
    b, h, w, d = target.shape
    positions = PositionEmbedding(self.max_tokens, self.position_stddev, name="position")
    # Semantic embedding of the token type: row = 2 * stream + half (source/target x upper/lower).
    semantic = self.param(
        "semantic", nn.with_logical_partitioning(nn.initializers.normal(0.02), ("vocab", "embed")),
        (4, self.width), jnp.float32)
    half_of_token = jnp.repeat((jnp.arange(h) >= h // 2).astype(jnp.int32), w)   # [h * w]

    def embed(tokens, stream, name):
      x = layers.dense(self.width, ("mlp", "embed"), self.dtype, name=name)(
          tokens.reshape(b, h * w, d).astype(self.dtype))
      x = positions(x)
      x = x + semantic[2 * stream + half_of_token].astype(self.dtype)[None]
      return _constrain(x)

    context = embed(source, SOURCE, "source_in")
    x = embed(target, TARGET, "target_in")
    block_cls = remat_block(TransformerBlock, self.remat)
    for i in range(self.num_layers):
      x = block_cls(self.num_heads, self.head_dim, self.mlp_dim, cross_attention=True,
                    self_attention=self.self_attention, norm_first=False,
                    dtype=self.dtype, name=f"block_{i}")(x, context)
      x = _constrain(x)
    out = layers.dense(d, ("embed", "mlp"), self.dtype, name="out")(x)
    out = out.astype(jnp.float32).reshape(b, h, w, d)
    # source_skip: the blocks predict the change from the source's tokens at the same grid
    # position (face crops are aligned, so that token shows the same part of the face). It starts
    # the module at "paste the source" instead of "copy the target" and generalises to unseen
    # identities on a CPU budget; identity still enters only through the source tokens.
    return out + source.astype(jnp.float32) if self.source_skip else out


class SwapUNet(nn.Module):
  """Conv UNet over the token grid; the source enters by channel concatenation with the target."""
  width: int = 256
  width_mult: Sequence[int] = (1, 2, 2)   # one level per entry; each level below the first halves h, w
  num_res_blocks: int = 2
  num_groups: int = 32
  dtype: Dtype = jnp.float32
  remat: str = "none"             # activation checkpointing of each res block (models/remat.py)

  @nn.compact
  def __call__(self, source: jax.Array, target: jax.Array) -> jax.Array:
    _check_pair("SwapUNet", source, target)
    d = target.shape[-1]
    factor = 2 ** (len(self.width_mult) - 1)
    if target.shape[1] % factor or target.shape[2] % factor:
      raise ValueError(f"SwapUNet: token grid {target.shape[1:3]} must divide by {factor} "
                       f"({len(self.width_mult)} levels)")
    block_cls = remat_block(ResnetBlock, self.remat)
    block = lambda f, n: block_cls(f, self.num_groups, self.dtype, name=n)
    x = jnp.concatenate([target, source], axis=-1).astype(self.dtype)
    h = layers.Conv(self.width, (3, 3), dtype=self.dtype, name="conv_in")(x)
    skips = [h]
    for level, mult in enumerate(self.width_mult):
      for i in range(self.num_res_blocks):
        h = block(self.width * mult, f"down_{level}_block_{i}")(h)
        skips.append(h)
      if level != len(self.width_mult) - 1:
        h = layers.Conv(h.shape[-1], (3, 3), strides=(2, 2), dtype=self.dtype,
                        name=f"down_{level}_downsample")(h)
        skips.append(h)
    h = block(h.shape[-1], "mid_block_1")(h)
    h = block(h.shape[-1], "mid_block_2")(h)
    for level in reversed(range(len(self.width_mult))):
      for i in range(self.num_res_blocks + 1):
        h = block(self.width * self.width_mult[level], f"up_{level}_block_{i}")(
            jnp.concatenate([h, skips.pop()], axis=-1))
      if level != 0:
        b, hh, ww, c = h.shape
        h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest")
        h = layers.Conv(c, (3, 3), dtype=self.dtype, name=f"up_{level}_upsample")(h)
    h = nn.silu(layers.group_norm(self.num_groups, self.dtype, name="norm_out")(h))
    out = layers.Conv(d, (3, 3), dtype=self.dtype, name="conv_out")(h)
    return out.astype(jnp.float32)


def swap_model_from_config(model_config, dtype=jnp.float32) -> nn.Module:
  """`config.model` of configs/swap.py -> SwapTransformer or SwapUNet (by `backbone`)."""
  m = model_config
  if m.backbone == "transformer":
    return SwapTransformer(width=m.width, num_layers=m.num_layers, num_heads=m.num_heads,
                           head_dim=m.head_dim, mlp_dim=m.mlp_dim, max_tokens=m.max_tokens,
                           self_attention=m.self_attention,
                           position_stddev=m.get("position_stddev", 0.02),
                           source_skip=m.get("source_skip", False),
                           remat=m.get("remat", "none"), dtype=jnp.dtype(dtype))
  if m.backbone == "unet":
    return SwapUNet(width=m.width, width_mult=tuple(m.width_mult),
                    num_res_blocks=m.num_res_blocks, num_groups=m.num_groups,
                    remat=m.get("remat", "none"), dtype=jnp.dtype(dtype))
  raise ValueError(f"config.model.backbone={m.backbone!r}; use 'transformer' or 'unet'")


def quantize_to_codes(vqgan: HalfSplitVQGAN, vqgan_params, tokens: jax.Array) -> jax.Array:
  """T~_VQ [B, h, w, D] -> the nearest codes: upper rows in C^U, lower rows in C^B (f32)."""
  half = tokens.shape[1] // 2

  def snap(module, x):
    return jnp.concatenate([module.quantizer_upper(x[:, :half]).codes,
                            module.quantizer_lower(x[:, half:]).codes], axis=1)

  return vqgan.apply({"params": vqgan_params}, tokens.astype(jnp.float32), method=snap)
