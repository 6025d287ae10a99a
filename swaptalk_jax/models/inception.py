"""InceptionV3 as used for FID: pytorch-fid's `FIDInception` variant of TF's 2015-12-05 graph.

Returns the 2048-d pool3 features. Differences from torchvision's InceptionV3 (why pytorch-fid
patches it): the A/C/E_1 blocks average-pool without counting the zero padding (TF semantics) and
the last E block max-pools in its pool branch. Submodule names mirror the PyTorch state dict
(`Mixed_5b/branch1x1/conv`, `.../bn`) so `swaptalk convert inception` is a plain key mapping.
Variables: {'params', 'batch_stats'}; BatchNorm always uses its running statistics (frozen).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.models.layers import Conv

# The header of this network's params file (written by `swaptalk convert inception`).
PARAMS_NETWORK = "inception"
PARAMS_VARIANT = "pt_inception-2015-12-05"

Dtype = Any

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPSILON = 1e-3


def _pairs(value):
  return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class BasicConv(nn.Module):
  """conv (no bias) + BatchNorm (eps 1e-3, running stats) + ReLU: TF Inception's conv unit."""
  features: int
  kernel_size: Any = 1
  strides: Any = 1
  padding: Any = 0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    ph, pw = _pairs(self.padding)
    x = Conv(self.features, _pairs(self.kernel_size), _pairs(self.strides),
             padding=((ph, ph), (pw, pw)), use_bias=False, dtype=self.dtype, name="conv")(x)
    x = nn.BatchNorm(
        use_running_average=True, epsilon=BN_EPSILON, dtype=self.dtype, param_dtype=jnp.float32,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)), name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3_same(x):
  """3x3 stride-1 average pool that ignores padded zeros (TF's 'SAME' average pool)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, strides=2, padding="VALID"):
  return nn.max_pool(x, (3, 3), strides=(strides, strides), padding=padding)


class InceptionA(nn.Module):
  """35x35 block: 1x1, 5x5, double 3x3 and pooled 1x1 branches."""
  pool_features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = lambda f, k=1, p=0, name=None: BasicConv(f, k, 1, p, self.dtype, name=name)
    b1 = c(64, name="branch1x1")(x)
    b5 = c(48, name="branch5x5_1")(x)
    b5 = c(64, 5, 2, name="branch5x5_2")(b5)
    b3 = c(64, name="branch3x3dbl_1")(x)
    b3 = c(96, 3, 1, name="branch3x3dbl_2")(b3)
    b3 = c(96, 3, 1, name="branch3x3dbl_3")(b3)
    bp = c(self.pool_features, name="branch_pool")(_avg_pool_3x3_same(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """35->17 reduction block."""
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, 3, 2, 0, self.dtype, name="branch3x3")(x)
    bd = BasicConv(64, 1, 1, 0, self.dtype, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, 3, 1, 1, self.dtype, name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, 3, 2, 0, self.dtype, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x)], axis=-1)


class InceptionC(nn.Module):
  """17x17 block with factorised 1x7/7x1 convolutions."""
  channels_7x7: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    c = lambda f, k=1, p=0, name=None: BasicConv(f, k, 1, p, self.dtype, name=name)
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    b1 = c(192, name="branch1x1")(x)
    b7 = c(c7, name="branch7x7_1")(x)
    b7 = c(c7, *row, name="branch7x7_2")(b7)
    b7 = c(192, *col, name="branch7x7_3")(b7)
    bd = c(c7, name="branch7x7dbl_1")(x)
    bd = c(c7, *col, name="branch7x7dbl_2")(bd)
    bd = c(c7, *row, name="branch7x7dbl_3")(bd)
    bd = c(c7, *col, name="branch7x7dbl_4")(bd)
    bd = c(192, *row, name="branch7x7dbl_5")(bd)
    bp = c(192, name="branch_pool")(_avg_pool_3x3_same(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """17->8 reduction block."""
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = lambda f, k=1, s=1, p=0, name=None: BasicConv(f, k, s, p, self.dtype, name=name)
    b3 = c(192, name="branch3x3_1")(x)
    b3 = c(320, 3, 2, name="branch3x3_2")(b3)
    b7 = c(192, name="branch7x7x3_1")(x)
    b7 = c(192, (1, 7), 1, (0, 3), name="branch7x7x3_2")(b7)
    b7 = c(192, (7, 1), 1, (3, 0), name="branch7x7x3_3")(b7)
    b7 = c(192, 3, 2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x)], axis=-1)


class InceptionE(nn.Module):
  """8x8 block with split 1x3/3x1 outputs; `max_pool_branch` is the FID graph's last-block quirk."""
  max_pool_branch: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = lambda f, k=1, p=0, name=None: BasicConv(f, k, 1, p, self.dtype, name=name)
    row, col = ((1, 3), (0, 1)), ((3, 1), (1, 0))
    b1 = c(320, name="branch1x1")(x)
    b3 = c(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([c(384, *row, name="branch3x3_2a")(b3),
                          c(384, *col, name="branch3x3_2b")(b3)], axis=-1)
    bd = c(448, name="branch3x3dbl_1")(x)
    bd = c(384, 3, 1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([c(384, *row, name="branch3x3dbl_3a")(bd),
                          c(384, *col, name="branch3x3dbl_3b")(bd)], axis=-1)
    pooled = (_max_pool_3x3(x, 1, ((1, 1), (1, 1))) if self.max_pool_branch
              else _avg_pool_3x3_same(x))
    bp = c(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out, in) weights of PyTorch's bilinear resize (align_corners=False, no antialias).

  Rounding as PyTorch's CPU kernel (float32 scale, the position's multiply-add rounded once to
  float32, float32 weights), so resized pixels agree to float32 rounding, not just to ~1e-5.
  """
  scale = np.float64(np.float32(in_size) / np.float32(out_size))
  src = np.maximum((scale * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32), np.float32(0))
  lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  hi = np.minimum(lo + 1, in_size - 1)
  frac = np.clip(src - lo.astype(np.float32), np.float32(0), np.float32(1))
  weights = np.zeros((out_size, in_size), np.float32)
  np.add.at(weights, (np.arange(out_size), lo), np.float32(1) - frac)
  np.add.at(weights, (np.arange(out_size), hi), frac)
  return weights


def resize_bilinear(images: jax.Array, size: int) -> jax.Array:
  """NHWC bilinear resize to size x size exactly as `F.interpolate(mode='bilinear')` (2 matmuls)."""
  _, h, w, _ = images.shape
  if (h, w) == (size, size):
    return images
  rows = jnp.asarray(bilinear_matrix(h, size), images.dtype)
  cols = jnp.asarray(bilinear_matrix(w, size), images.dtype)
  return jnp.einsum("oh,nhwc,pw->nopc", rows, images, cols, precision=jax.lax.Precision.HIGHEST)


class FIDInceptionV3(nn.Module):
  """Images (N, H, W, 3) RGB in [0, 1] -> (N, 2048) pool3 features, as pytorch-fid's InceptionV3.

  `resize_input` resizes to 299x299 bilinearly (pytorch-fid's default); inputs are then mapped to
  [-1, 1] as the TF graph expects.
  """
  resize_input: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"expected NHWC RGB images, got shape {images.shape}")
    if not jnp.issubdtype(images.dtype, jnp.floating):
      raise TypeError(f"expected float images in [0, 1], got {images.dtype} (divide uint8 by 255)")
    x = images.astype(jnp.float32)
    if self.resize_input:
      x = resize_bilinear(x, INPUT_SIZE)
    x = (2.0 * x - 1.0).astype(self.dtype)
    d = self.dtype
    x = BasicConv(32, 3, 2, 0, d, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, 3, 1, 0, d, name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, 3, 1, 1, d, name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3(x)
    x = BasicConv(80, 1, 1, 0, d, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, 3, 1, 0, d, name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3(x)
    x = InceptionA(32, d, name="Mixed_5b")(x)
    x = InceptionA(64, d, name="Mixed_5c")(x)
    x = InceptionA(64, d, name="Mixed_5d")(x)
    x = InceptionB(d, name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, d, name=name)(x)
    x = InceptionD(d, name="Mixed_7a")(x)
    x = InceptionE(False, d, name="Mixed_7b")(x)
    x = InceptionE(True, d, name="Mixed_7c")(x)
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


def abstract_variables(model: FIDInceptionV3 = FIDInceptionV3()) -> Any:
  """Shape/dtype tree of the model's variables (no compute): what a converted file must match."""
  images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return nn.unbox(jax.eval_shape(model.init, jax.random.key(0), images))


def load_variables(path: str) -> dict:
  """A params file from `swaptalk convert inception` -> variables for `apply`; a clear error if it is
  missing, holds another network or does not match the model."""
  return params_file.load_checked(PARAMS_NETWORK, PARAMS_VARIANT, path, abstract_variables())
