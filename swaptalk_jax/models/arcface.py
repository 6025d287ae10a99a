"""ArcFace IResNet (insightface `arcface_torch` backbones): 112x112 aligned face -> 512-d embedding.

Stem conv3x3-BN-PReLU; four stages of IBasicBlocks (BN, conv3x3, BN, PReLU, conv3x3 (stride 2 in the
first block of a stage), BN, + identity or 1x1-conv-BN shortcut); BN, flatten, (dropout), fc to 512,
BatchNorm1d ("features"). Inference only: BatchNorm uses its running statistics, which live in
'params' with scale/bias (one frozen tree to pass around), and dropout is the identity.

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
  """Inference BatchNorm over the last axis with scale, bias, mean and var all in 'params'.

  Applied as one affine (x * a + b) computed in f32, then cast to `dtype`.
  """
  epsilon: float = BN_EPSILON
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]

    def param(name, init):
      return self.param(name, nn.with_logical_partitioning(init, ("norm",)), (features,),
                        jnp.float32)

    scale, bias = param("scale", nn.initializers.ones), param("bias", nn.initializers.zeros)
    mean, var = param("mean", nn.initializers.zeros), param("var", nn.initializers.ones)
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

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = FrozenBatchNorm(dtype=self.dtype, name="bn1")(x)
    y = _conv3x3(self.features, 1, self.dtype, "conv1")(y)
    y = FrozenBatchNorm(dtype=self.dtype, name="bn2")(y)
    y = PReLU(dtype=self.dtype, name="prelu")(y)
    y = _conv3x3(self.features, self.strides, self.dtype, "conv2")(y)
    y = FrozenBatchNorm(dtype=self.dtype, name="bn3")(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = Conv(self.features, (1, 1), (self.strides, self.strides), padding="VALID", use_bias=False,
               dtype=self.dtype, name="downsample_conv")(x)
      x = FrozenBatchNorm(dtype=self.dtype, name="downsample_bn")(x)
    return y + x


class IResNet(nn.Module):
  """[N, 112, 112, 3] in [-1, 1] -> [N, 512] f32 embeddings (not L2-normalised).

  `dtype` is the compute dtype of the convolutional body; fc and the final BatchNorm run in f32
  (as arcface_torch's fp16 mode does).
  """
  blocks: Sequence[int] = VARIANTS["r50"]
  embedding_dim: int = EMBEDDING_DIM
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(f"IResNet expects [N, {INPUT_SIZE}, {INPUT_SIZE}, 3], got {x.shape}")
    x = _conv3x3(STAGE_WIDTHS[0], 1, self.dtype, "conv1")(x.astype(self.dtype))
    x = FrozenBatchNorm(dtype=self.dtype, name="bn1")(x)
    x = PReLU(dtype=self.dtype, name="prelu")(x)
    for stage, (width, count) in enumerate(zip(STAGE_WIDTHS, self.blocks), start=1):
      for index in range(count):
        x = IBasicBlock(width, 2 if index == 0 else 1, self.dtype, name=f"layer{stage}_{index}")(x)
    x = FrozenBatchNorm(dtype=jnp.float32, name="bn2")(x)
    x = x.reshape(x.shape[0], -1)  # (H, W, C) order; the converters permute torch's (C, H, W) fc
    x = nn.Dense(self.embedding_dim, dtype=jnp.float32, param_dtype=jnp.float32, name="fc",
                 kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                          ("embed", "mlp")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))(x)
    return FrozenBatchNorm(dtype=jnp.float32, name="features")(x)


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
