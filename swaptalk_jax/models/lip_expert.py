"""The VQ-lip expert (stage 2): a SyncNet that judges audio-visual sync on lower-half VQ embeddings.

Two streams into one `embed_dim`-sized space, both L2-normalised (PAPER_NOTES section 3):
- visual: the lower-half token embeddings (codebook C^B of the frozen VQGAN, NOT pixels) of a
  window of T frames, [B, T, h/2, w, D]. The T frames are stacked on channels per token
  ([B, h/2, w, T*D], frame-major) so the very first conv sees every frame of the window at once,
  as Wav2Lip's and SyncNet's experts do with their 15-channel 5-frame stacks (SyncNet's Conv3d with
  a full-window temporal kernel is exactly this). A separate temporal conv would add a stage and
  gain nothing at T = 5. Then a strided conv stack over the token grid, a global mean, a Dense.
- audio: the log-mel window [B, 16, 80] as a 1-channel image -> strided conv stack -> mean -> Dense.

Score (`LipExpert.__call__` returns the logit):
- 'scaled' (default): logit = scale * cos(v, a) + bias, scale = exp(log_scale) learnable
  (`temperature='learnable'`, CLIP/SigLIP style) or fixed (`'fixed'`), bias learnable. BCE with
  logits. The cosine alone lives in [-1, 1], so without a scale a sigmoid of it cannot go past
  0.73: the loss has no way to fall far and its gradients stay small (the 0.69 plateau).
- 'wav2lip': Wav2Lip's expert as published: ReLU'd embeddings, probability = cos in [0, 1],
  BCE on it (kept to measure the plateau against; `logit` is then log(p / (1 - p))).

Window centring (`center_window`, default on): each token position's mean over the window's T
frames is subtracted before the visual stream. Who a face is lives in what stays still, sync lives
in what moves; without it the expert on the 32 px synthetic tokens sat at BCE 0.694 on train and
held-out windows alike (the identity content swamps the mouth's), with it held-out accuracy reached
0.78 in 2000 steps (benchmarks/lip_expert.py `no_center` row).

Normalisation inside the streams (`stream_norm`: 'group' | 'none') and of the inputs (`token_norm`:
LayerNorm of each token embedding over D, since codebook vectors carry an arbitrary scale; the mel
is divided by its max_abs_value 4) are switches, measured in `benchmarks/lip_expert.py`.

`remat` (models/remat.py) checkpoints each stream's conv stack as one block (the streams are the
expert's only repeated structure; the params keep their names).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.models.layers import Conv, dense, group_norm, layer_norm
from swaptalk_jax.models.remat import remat_block

Dtype = Any
MEL_SCALE = 4.0          # the log-mel's max_abs_value (swaptalk_jax/audio/mel.py)
_PROB_EPS = 1e-6


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  x = x.astype(jnp.float32)
  return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps * eps)


class ConvStack(nn.Module):
  """Convs (3x3; `strides[i]` each) -> [GroupNorm] -> ReLU, then the small final grid flattened
  (`pool='flatten'`: keeps where and when a feature fired: mouth position, audio time order) or
  averaged (`'mean'`)."""
  features: Sequence[int]
  strides: Sequence[Sequence[int]]
  num_groups: int = 8
  stream_norm: str = "group"
  pool: str = "flatten"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, (f, s) in enumerate(zip(self.features, self.strides)):
      x = Conv(f, (3, 3), strides=tuple(s), dtype=self.dtype, name=f"conv_{i}")(x)
      if self.stream_norm == "group":
        x = group_norm(min(self.num_groups, f), self.dtype, name=f"norm_{i}")(x)
      x = nn.relu(x)
    if self.pool == "mean":
      return jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return x.reshape(x.shape[0], -1)


class LipExpert(nn.Module):
  """(lower-half token embeddings [B, T, h, w, D], mel [B, steps, 80]) -> sync logit [B]."""
  visual_features: Sequence[int] = (64, 128, 128)
  visual_strides: Sequence[Sequence[int]] = ((1, 1), (2, 2), (2, 2))
  audio_features: Sequence[int] = (32, 64, 128, 128)
  audio_strides: Sequence[Sequence[int]] = ((1, 2), (2, 2), (2, 2), (2, 2))
  embed_dim: int = 128
  num_groups: int = 8
  stream_norm: str = "group"        # 'group' | 'none'
  pool: str = "flatten"             # 'flatten' | 'mean' of each stream's final grid
  token_norm: bool = True           # LayerNorm of each input token embedding
  center_window: bool = True        # subtract each token position's mean over the T frames
  score: str = "scaled"             # 'scaled' | 'wav2lip'
  temperature: str = "learnable"    # 'learnable' | 'fixed' (score='scaled')
  init_scale: float = 10.0          # initial (or fixed) scale of the cosine
  dtype: Dtype = jnp.float32
  remat: str = "none"               # activation checkpointing of each stream (models/remat.py)

  def setup(self):
    if self.stream_norm not in ("group", "none"):
      raise ValueError(f"LipExpert.stream_norm must be 'group' or 'none', got {self.stream_norm!r}")
    if self.pool not in ("flatten", "mean"):
      raise ValueError(f"LipExpert.pool must be 'flatten' or 'mean', got {self.pool!r}")
    if self.score not in ("scaled", "wav2lip"):
      raise ValueError(f"LipExpert.score must be 'scaled' or 'wav2lip', got {self.score!r}")
    if self.temperature not in ("learnable", "fixed"):
      raise ValueError(f"LipExpert.temperature must be 'learnable' or 'fixed', "
                       f"got {self.temperature!r}")
    self.token_ln = layer_norm(self.dtype, name="token_norm") if self.token_norm else None
    stack_cls = remat_block(ConvStack, self.remat)
    self.visual = stack_cls(self.visual_features, self.visual_strides, self.num_groups,
                            self.stream_norm, self.pool, self.dtype, name="visual")
    self.visual_out = dense(self.embed_dim, ("mlp", "embed"), self.dtype, name="visual_out")
    self.audio = stack_cls(self.audio_features, self.audio_strides, self.num_groups,
                           self.stream_norm, self.pool, self.dtype, name="audio")
    self.audio_out = dense(self.embed_dim, ("mlp", "embed"), self.dtype, name="audio_out")
    if self.score == "scaled":
      init = lambda *_: jnp.asarray(np.log(self.init_scale), jnp.float32)
      if self.temperature == "learnable":
        self.log_scale = self.param("log_scale", nn.with_logical_partitioning(init, ()), ())
      self.bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ()), ())

  def embed_visual(self, tokens: jax.Array) -> jax.Array:
    """[B, T, h, w, D] lower-half token embeddings -> unit-norm [B, embed_dim] (f32)."""
    if tokens.ndim != 5:
      raise ValueError(f"LipExpert: visual input must be [B, T, h, w, D] token embeddings, got "
                       f"{tokens.shape}")
    b, t, h, w, d = tokens.shape
    x = tokens.astype(jnp.float32)
    if self.token_ln is not None:
      x = self.token_ln(x).astype(jnp.float32)
    if self.center_window:
      x = x - jnp.mean(x, axis=1, keepdims=True)
    x = x.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * d)   # frames stacked on channels
    return self._finish(self.visual_out(self.visual(x.astype(self.dtype))))

  def embed_audio(self, mel: jax.Array) -> jax.Array:
    """[B, steps, 80] log-mel window -> unit-norm [B, embed_dim] (f32)."""
    if mel.ndim != 3:
      raise ValueError(f"LipExpert: audio input must be a [B, steps, mels] log-mel, "
                       f"got {mel.shape}")
    x = (mel.astype(jnp.float32) / MEL_SCALE)[..., None]
    return self._finish(self.audio_out(self.audio(x.astype(self.dtype))))

  def _finish(self, x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    if self.score == "wav2lip":
      x = nn.relu(x)
    return l2_normalize(x)

  def scale(self) -> jax.Array:
    if self.score != "scaled":
      return jnp.asarray(1.0, jnp.float32)
    if self.temperature == "learnable":
      return jnp.exp(self.log_scale)
    return jnp.asarray(self.init_scale, jnp.float32)

  def logits_from_embeddings(self, visual: jax.Array, audio: jax.Array) -> jax.Array:
    """Sync logits of unit-norm embeddings; broadcasting ([W, 1, E] x [W, O, E] -> [W, O])."""
    cos = jnp.sum(visual * audio, axis=-1)
    if self.score == "wav2lip":
      p = jnp.clip(cos, _PROB_EPS, 1.0 - _PROB_EPS)
      return jnp.log(p) - jnp.log1p(-p)
    return self.scale() * cos + self.bias

  def __call__(self, tokens: jax.Array, mel: jax.Array) -> jax.Array:
    return self.logits_from_embeddings(self.embed_visual(tokens), self.embed_audio(mel))

  def cosine(self, tokens: jax.Array, mel: jax.Array) -> jax.Array:
    return jnp.sum(self.embed_visual(tokens) * self.embed_audio(mel), axis=-1)


def lip_expert_from_config(model_config, dtype=jnp.float32) -> LipExpert:
  """The expert of `config.model` (configs/lip_expert.py). A config without `center_window`
  predates it (such checkpoints were trained without centring)."""
  m = model_config
  return LipExpert(
      visual_features=tuple(m.visual_features), visual_strides=tuple(map(tuple, m.visual_strides)),
      audio_features=tuple(m.audio_features), audio_strides=tuple(map(tuple, m.audio_strides)),
      embed_dim=m.embed_dim, num_groups=m.num_groups, stream_norm=m.stream_norm,
      token_norm=m.token_norm, center_window=m.get("center_window", False),
      pool=m.get("pool", "flatten"), score=m.score,
      temperature=m.temperature,
      init_scale=m.init_scale, remat=m.get("remat", "none"), dtype=jnp.dtype(dtype))
