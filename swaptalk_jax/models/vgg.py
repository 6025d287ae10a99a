"""VGG16 convolutional trunk (torchvision's `vgg16().features`), returning the activations LPIPS uses.

NHWC; 3x3 convs with bias and padding 1, ReLU, 2x2 max-pools. Outputs relu1_2, relu2_2, relu3_3,
relu4_3 and relu5_3 (the trunk stops there: the last pool and the classifier are never used).
Parameter names follow the layers: conv{stage}_{index}, e.g. conv3_2.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from swaptalk_jax.models.layers import Conv

Dtype = Any

# Output channels of each conv, per stage; torchvision 'D' config.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
TAP_NAMES = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def torchvision_feature_indices() -> dict[str, int]:
  """conv name -> index of that conv in torchvision's `vgg16().features` Sequential."""
  indices, position = {}, 0
  for stage, widths in enumerate(VGG16_STAGES, start=1):
    for index in range(1, len(widths) + 1):
      indices[f"conv{stage}_{index}"] = position
      position += 2  # conv, relu
    position += 1  # max-pool
  return indices


class VGG16Features(nn.Module):
  """x: [N, H, W, 3] (already shifted/scaled by the caller) -> tuple of the 5 relu taps.

  Each stage after the first starts with relu(max_pool(pre-activation)) of the previous stage's
  last conv, which equals max_pool(relu(...)) exactly (relu is monotone). Written this way because
  XLA:CPU in jax 0.12.0.1 compiles bf16 conv -> relu -> 2x2 max-pool -> conv chains into inf/NaN
  (f32, and jax 0.10.2, are fine); the pool-then-relu order avoids that fusion.
  """
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
    taps = []
    x = x.astype(self.dtype)
    pre_activation = None
    for stage, widths in enumerate(VGG16_STAGES, start=1):
      if stage > 1:
        x = nn.relu(nn.max_pool(pre_activation, (2, 2), strides=(2, 2), padding="VALID"))
      for index, width in enumerate(widths, start=1):
        pre_activation = Conv(width, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype,
                              name=f"conv{stage}_{index}")(x)
        x = nn.relu(pre_activation)
      taps.append(x)
    return tuple(taps)
