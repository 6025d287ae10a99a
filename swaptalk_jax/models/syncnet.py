"""SyncNet as syncnet_python's `syncnet_v2` (Chung & Zisserman): the network behind LSE-C / LSE-D.

Two streams into a shared 1024-d space:
- audio: a (13 MFCC x 20 steps) window (0.2 s at 100 steps/s) -> 2-D conv stack -> 512 -> MLP.
- lip: 5 consecutive 224x224 face crops, BGR in 0..255 as cv2 reads them (no normalisation) ->
  conv stack -> 512 -> MLP. The reference's first layer is a Conv3d whose 5-frame temporal kernel
  spans the whole window, and every later 3-D op has temporal size 1, so the stream is exactly a 2-D
  network over the 5 frames stacked as 15 channels (frame-major); the converter reshapes that
  kernel.
Submodule names are the PyTorch `nn.Sequential` keys with '.' -> '_' (`netcnnaud_0` is
`netcnnaud.0`).
Variables: {'params', 'batch_stats'}; BatchNorm uses running statistics (eps 1e-5), frozen.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax import params_file
from swaptalk_jax.models.layers import Conv, dense

# The header of this network's params file (written by `swaptalk convert syncnet`).
PARAMS_NETWORK = "syncnet"
PARAMS_VARIANT = "syncnet_v2"

Dtype = Any

MFCC_COEFFS = 13
MFCC_STEPS = 20
LIP_FRAMES = 5
LIP_SIZE = 224
EMBED_DIM = 1024
BN_EPSILON = 1e-5

# (torch index of the conv, features, kernel, strides, padding, max-pool after its BN+ReLU or None).
# A max-pool is (window, strides, padding).
AUDIO_CONVS = (
    (0, 64, (3, 3), (1, 1), (1, 1), None),
    (4, 192, (3, 3), (1, 1), (1, 1), ((3, 3), (1, 2), (0, 0))),
    (8, 384, (3, 3), (1, 1), (1, 1), None),
    (11, 256, (3, 3), (1, 1), (1, 1), None),
    (14, 256, (3, 3), (1, 1), (1, 1), ((3, 3), (2, 2), (0, 0))),
    (18, 512, (5, 4), (1, 1), (0, 0), None),
)
LIP_CONVS = (
    (0, 96, (7, 7), (2, 2), (0, 0), ((3, 3), (2, 2), (0, 0))),
    (4, 256, (5, 5), (2, 2), (1, 1), ((3, 3), (2, 2), (1, 1))),
    (8, 256, (3, 3), (1, 1), (1, 1), None),
    (11, 256, (3, 3), (1, 1), (1, 1), None),
    (14, 256, (3, 3), (1, 1), (1, 1), ((3, 3), (2, 2), (0, 0))),
    (18, 512, (6, 6), (1, 1), (0, 0), None),
)


def _batch_norm(name, dtype):
  return nn.BatchNorm(
      use_running_average=True, epsilon=BN_EPSILON, dtype=dtype, param_dtype=jnp.float32, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))


class ConvStack(nn.Module):
  """conv + BN + ReLU (+ max-pool) units named after the torch Sequential indices; -> (N, 512)."""
  prefix: str
  convs: Any
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    for index, features, kernel, strides, (ph, pw), pool in self.convs:
      x = Conv(features, kernel, strides, padding=((ph, ph), (pw, pw)), dtype=self.dtype,
               name=f"{self.prefix}_{index}")(x)
      x = nn.relu(_batch_norm(f"{self.prefix}_{index + 1}", self.dtype)(x))
      if pool is not None:
        window, pool_strides, (qh, qw) = pool
        x = nn.max_pool(x, window, strides=pool_strides, padding=((qh, qh), (qw, qw)))
    if x.shape[1:3] != (1, 1):
      raise ValueError(f"{self.prefix}: input size gives a {x.shape[1:3]} map, not 1x1")
    return x.reshape(x.shape[0], -1)


class EmbeddingHead(nn.Module):
  """Linear 512 -> BN -> ReLU -> Linear 512 -> 1024 (torch indices 0, 1, 3)."""
  prefix: str
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = dense(512, ("embed", "mlp"), self.dtype, name=f"{self.prefix}_0")(x)
    x = nn.relu(_batch_norm(f"{self.prefix}_1", self.dtype)(x))
    return dense(EMBED_DIM, ("mlp", "embed"), self.dtype, name=f"{self.prefix}_3")(x)


class SyncNet(nn.Module):
  """`embed_audio(mfcc (N, 13, 20))` and `embed_lip(frames (N, 5, 224, 224, 3) BGR 0..255)`."""
  dtype: Dtype = jnp.float32

  def setup(self):
    self.audio_cnn = ConvStack("netcnnaud", AUDIO_CONVS, self.dtype)
    self.audio_fc = EmbeddingHead("netfcaud", self.dtype)
    self.lip_cnn = ConvStack("netcnnlip", LIP_CONVS, self.dtype)
    self.lip_fc = EmbeddingHead("netfclip", self.dtype)

  def embed_audio(self, mfcc: jax.Array) -> jax.Array:
    if mfcc.ndim != 3 or mfcc.shape[1:] != (MFCC_COEFFS, MFCC_STEPS):
      raise ValueError(f"expected MFCC windows (N, {MFCC_COEFFS}, {MFCC_STEPS}), got {mfcc.shape}")
    x = mfcc[..., None].astype(self.dtype)
    return self.audio_fc(self.audio_cnn(x)).astype(jnp.float32)

  def lip_features(self, frames: jax.Array) -> jax.Array:
    """The 512-d conv features before the head (syncnet_python's `forward_lipfeat`)."""
    n, t, h, w, c = frames.shape
    if (t, h, w, c) != (LIP_FRAMES, LIP_SIZE, LIP_SIZE, 3):
      raise ValueError(f"expected lip windows (N, {LIP_FRAMES}, {LIP_SIZE}, {LIP_SIZE}, 3), "
                       f"got {frames.shape}")
    x = jnp.transpose(frames, (0, 2, 3, 1, 4)).reshape(n, h, w, t * c).astype(self.dtype)
    return self.lip_cnn(x)

  def embed_lip(self, frames: jax.Array) -> jax.Array:
    return self.lip_fc(self.lip_features(frames)).astype(jnp.float32)

  def __call__(self, mfcc: jax.Array, frames: jax.Array):
    """(audio embeddings, lip embeddings); used to create all variables at once."""
    return self.embed_audio(mfcc), self.embed_lip(frames)


def abstract_variables(model: SyncNet = SyncNet()) -> Any:
  """Shape/dtype tree of the model's variables (no compute): what a converted file must match."""
  mfcc = jax.ShapeDtypeStruct((1, MFCC_COEFFS, MFCC_STEPS), jnp.float32)
  frames = jax.ShapeDtypeStruct((1, LIP_FRAMES, LIP_SIZE, LIP_SIZE, 3), jnp.float32)
  return nn.unbox(jax.eval_shape(model.init, jax.random.key(0), mfcc, frames))


def load_variables(path: str) -> dict:
  """A params file from `swaptalk convert syncnet` -> variables for `apply`; a clear error if it is
  missing, holds another network or does not match the model."""
  return params_file.load_checked(PARAMS_NETWORK, PARAMS_VARIANT, path, abstract_variables())
