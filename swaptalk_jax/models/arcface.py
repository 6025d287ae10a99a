"""ArcFace IResNet (insightface `arcface_torch` backbones): 112x112 aligned face -> 512-d embedding.

Stem conv3x3-BN-PReLU; four stages of IBasicBlocks (BN, conv3x3, BN, PReLU, conv3x3 (stride 2 in the
first block of a stage), BN, + identity or 1x1-conv-BN shortcut); BN, flatten, (dropout), fc to 512,
BatchNorm1d ("features"). BatchNorm's running statistics live in 'params' with scale/bias (one frozen
tree to pass around) and are used at inference; dropout is the identity. Training the net here
(`configs/identity.py`, `trainers/identity.py`) sets `use_batch_stats`: every BatchNorm then
normalises with the batch's statistics and writes them to the 'batch_stats' collection (when
mutable), from which the trainer keeps the running statistics. `widths` and `input_size` give the
small CPU variants; the defaults are arcface_torch's.

Input: RGB, NHWC, 112x112, normalised as (pixel / 255 - 0.5) / 0.5, i.e. in [-1, 1]
(`normalise_pixels`). Faces must be aligned to `ARCFACE_TEMPLATE_112` (`alignment_transform`).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.models.layers import Conv

Dtype = Any

INPUT_SIZE = 112
EMBEDDING_DIM = 512
BN_EPSILON = 1e-5
STAGE_WIDTHS = (64, 128, 256, 512)
# Blocks per stage of each arcface_torch variant.
VARIANTS = {
    "r18": (2, 2, 2, 2), "r34": (3, 4, 6, 3), "r50": (3, 4, 14, 3), "r100": (3, 13, 30, 3),
    "r200": (6, 26, 60, 6),
}

# insightface's 112x112 five-point template (eye centres, nose tip, mouth corners; x, y in pixels).
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]], np.float64)


def normalise_pixels(pixels: jax.Array) -> jax.Array:
  """[0, 255] RGB -> ArcFace's input range [-1, 1]."""
  return (pixels.astype(jnp.float32) / 255.0 - 0.5) / 0.5


def alignment_transform(landmarks_5: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
  """2x3 matrix taking image coordinates to the `size` x `size` ArcFace crop, from 5 landmarks
  (left eye, right eye, nose tip, left and right mouth corner, as seen in the image; e.g.
  `swaptalk_jax.face.landmarks.five_points`). The least-squares similarity fit is the face
  module's (`face.align.fit_similarity`), so the project has one crop transform."""
  from swaptalk_jax.face import align  # pylint: disable=import-outside-toplevel  (cv2, scipy)
  return align.fit_similarity(landmarks_5, ARCFACE_TEMPLATE_112 * (size / INPUT_SIZE))


class FrozenBatchNorm(nn.Module):
  """BatchNorm over the last axis with scale, bias, mean and var all in 'params'.

  Inference (default): one affine (x * a + b) from the running mean/var, computed in f32, then
  cast to `dtype`. use_batch_stats: normalise with the batch's mean and (biased) variance over all
  but the last axis instead, and put them in the 'batch_stats' collection when it is mutable.
  """
  epsilon: float = BN_EPSILON
  dtype: Dtype = jnp.float32
  use_batch_stats: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]

    def param(name, init):
      return self.param(name, nn.with_logical_partitioning(init, ("norm",)), (features,),
                        jnp.float32)

    scale, bias = param("scale", nn.initializers.ones), param("bias", nn.initializers.zeros)
    mean, var = param("mean", nn.initializers.zeros), param("var", nn.initializers.ones)
    if self.use_batch_stats:
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(x.astype(jnp.float32), axes)
      var = jnp.mean(jnp.square(x.astype(jnp.float32) - mean), axes)
      if self.is_mutable_collection("batch_stats"):
        self.put_variable("batch_stats", "mean", mean)
        self.put_variable("batch_stats", "var", var)
    multiplier = scale * jax.lax.rsqrt(var + self.epsilon)
    offset = bias - mean * multiplier
    return (x.astype(jnp.float32) * multiplier + offset).astype(self.dtype)


class PReLU(nn.Module):
  """Per-channel PReLU: x if x >= 0 else alpha * x."""
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    alpha = self.param("alpha", nn.with_logical_partitioning(
        nn.initializers.constant(0.25), ("norm",)), (x.shape[-1],), jnp.float32)
    return jnp.where(x >= 0, x, x * alpha.astype(x.dtype))


def _conv3x3(features, strides, dtype, name):
  return Conv(features, (3, 3), (strides, strides), padding=((1, 1), (1, 1)), use_bias=False,
              dtype=dtype, name=name)


class IBasicBlock(nn.Module):
  """BN-conv-BN-PReLU-conv-BN + shortcut (1x1 conv + BN when the shape changes)."""
  features: int
  strides: int = 1
  dtype: Dtype = jnp.float32
  use_batch_stats: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    def bn(name, dtype=self.dtype):
      return FrozenBatchNorm(dtype=dtype, use_batch_stats=self.use_batch_stats, name=name)

    y = bn("bn1")(x)
    y = _conv3x3(self.features, 1, self.dtype, "conv1")(y)
    y = bn("bn2")(y)
    y = PReLU(dtype=self.dtype, name="prelu")(y)
    y = _conv3x3(self.features, self.strides, self.dtype, "conv2")(y)
    y = bn("bn3")(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = Conv(self.features, (1, 1), (self.strides, self.strides), padding="VALID", use_bias=False,
               dtype=self.dtype, name="downsample_conv")(x)
      x = bn("downsample_bn")(x)
    return y + x


class IResNet(nn.Module):
  """[N, input_size, input_size, 3] in [-1, 1] -> [N, embedding_dim] f32 embeddings (not
  L2-normalised). Defaults: arcface_torch's 112 px, stage widths (64, 128, 256, 512), 512-d.

  `dtype` is the compute dtype of the convolutional body; fc and the final BatchNorm run in f32
  (as arcface_torch's fp16 mode does). `use_batch_stats`: training-mode BatchNorm (see
  FrozenBatchNorm).
  """
  blocks: Sequence[int] = VARIANTS["r50"]
  embedding_dim: int = EMBEDDING_DIM
  dtype: Dtype = jnp.float32
  widths: Sequence[int] = STAGE_WIDTHS
  input_size: int = INPUT_SIZE
  use_batch_stats: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    size = self.input_size
    if x.shape[1:] != (size, size, 3):
      raise ValueError(f"IResNet expects [N, {size}, {size}, 3], got {x.shape}")
    if len(self.widths) != 4 or len(self.blocks) != 4:
      raise ValueError(f"IResNet needs 4 stages; got widths {self.widths}, blocks {self.blocks}")

    def bn(name, dtype=self.dtype):
      return FrozenBatchNorm(dtype=dtype, use_batch_stats=self.use_batch_stats, name=name)

    x = _conv3x3(self.widths[0], 1, self.dtype, "conv1")(x.astype(self.dtype))
    x = bn("bn1")(x)
    x = PReLU(dtype=self.dtype, name="prelu")(x)
    for stage, (width, count) in enumerate(zip(self.widths, self.blocks), start=1):
      for index in range(count):
        x = IBasicBlock(width, 2 if index == 0 else 1, self.dtype, self.use_batch_stats,
                        name=f"layer{stage}_{index}")(x)
    x = bn("bn2", jnp.float32)(x)
    x = x.reshape(x.shape[0], -1)  # (H, W, C) order; the converters permute torch's (C, H, W) fc
    x = nn.Dense(self.embedding_dim, dtype=jnp.float32, param_dtype=jnp.float32, name="fc",
                 kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                          ("embed", "mlp")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))(x)
    return bn("features", jnp.float32)(x)


def stage_features(model: IResNet, params: dict, x: jax.Array) -> list[jax.Array]:
  """The output of each of the 4 stages (its last IBasicBlock) [N, h, w, C_s], shallow to deep:
  the feature maps an LPIPS-style distance compares (losses/identity_nets.feature_distance)."""
  last = {f"layer{s}_{count - 1}" for s, count in enumerate(model.blocks, start=1)}
  _, state = model.apply({"params": params}, x, capture_intermediates=lambda mdl, method: (
      isinstance(mdl, IBasicBlock) and mdl.name in last and method == "__call__"),
                         mutable=["intermediates"])
  captured = state["intermediates"]
  return [captured[f"layer{s}_{count - 1}"]["__call__"][0]
          for s, count in enumerate(model.blocks, start=1)]


def iresnet(variant: str = "r50", dtype: Dtype = jnp.float32) -> IResNet:
  if variant not in VARIANTS:
    raise ValueError(f"unknown IResNet variant {variant!r}; choose from {sorted(VARIANTS)}")
  return IResNet(blocks=VARIANTS[variant], dtype=dtype)


def arcface_param_shapes(variant: str = "r50", blocks: Sequence[int] | None = None) -> dict:
  """ShapeDtypeStructs of the params of a variant (or of any `blocks` per stage); no computation."""
  model = iresnet(variant) if blocks is None else IResNet(blocks=tuple(blocks))
  x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return nn.unbox(jax.eval_shape(model.init, jax.random.key(0), x)["params"])


def init_arcface_params(seed: int = 0, variant: str = "r50", blocks: Sequence[int] | None = None
                        ) -> dict:
  """Random stand-in params (tests, benchmarks); real ones come from `swaptalk convert arcface`."""
  return params_file.random_params(arcface_param_shapes(variant, blocks), seed)


def blocks_of_params(params: dict) -> tuple[int, ...]:
  """Blocks per stage of a params tree (e.g. (3, 4, 14, 3) for r50)."""
  return tuple(sum(1 for name in params if name.startswith(f"layer{s}_")) for s in range(1, 5))


def variant_of_params(params: dict) -> str:
  """The variant whose block counts match a params tree (e.g. 'r50')."""
  counts = blocks_of_params(params)
  for name, blocks in VARIANTS.items():
    if blocks == counts:
      return name
  raise ValueError(f"no IResNet variant has blocks {counts}")


def arcface_embed(params: dict, faces: jax.Array, dtype: Dtype = jnp.float32) -> jax.Array:
  """[N, 112, 112, 3] aligned faces in [-1, 1] -> L2-normalised [N, 512] f32 embeddings."""
  model = IResNet(blocks=blocks_of_params(params), dtype=dtype)
  embedding = model.apply({"params": params}, faces)
  return embedding * jax.lax.rsqrt(jnp.sum(jnp.square(embedding), -1, keepdims=True) + 1e-12)
