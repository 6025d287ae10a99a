"""LPIPS (VGG16, v0.1) checkpoints -> our params file.

The trunk comes from torchvision's ImageNet VGG16 state dict (`features.<i>.weight`), or from a full
LPIPS model state dict (`net.slice<k>.<i>.weight`, the lpips package's layout); the five linear
heads from the lpips package's `weights/v0.1/vgg.pth` (`lin<k>.model.1.weight`), or from the same
full LPIPS state dict.
"""
import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.convert import common
from swaptalk_jax.models import lpips, vgg

NETWORK = "lpips"
VARIANT = "vgg16"


def _trunk_key(state: dict, index: int, kind: str) -> str:
  """The state-dict key of conv `index` of vgg16.features in either layout."""
  for key in (f"features.{index}.{kind}", *(f"net.slice{s}.{index}.{kind}" for s in range(1, 6))):
    if key in state:
      return key
  return f"features.{index}.{kind}"


def trunk_params(state: dict, source: str) -> dict:
  """torchvision vgg16 (or LPIPS `net.slice*`) conv weights -> our VGG16Features params."""
  indices = vgg.torchvision_feature_indices()
  keys = {name: (_trunk_key(state, i, "weight"), _trunk_key(state, i, "bias"))
          for name, i in indices.items()}
  common.require_keys(state, [k for pair in keys.values() for k in pair], source,
                      "torchvision VGG16 (features.<i>.weight/bias)")
  params = {}
  for name, (weight_key, bias_key) in keys.items():
    params[name] = {"kernel": common.conv_kernel_from_torch(state[weight_key]),
                    "bias": np.asarray(state[bias_key], np.float32)}
  return params


def _head_key(state: dict, index: int) -> str:
  for key in (f"lin{index}.model.1.weight", f"lin{index}.model.0.weight"):
    if key in state:
      return key
  return f"lin{index}.model.1.weight"


def head_params(state: dict, source: str) -> dict:
  """The lpips package's linear heads (1x1 convs to one channel, no bias) -> our lin0..lin4."""
  keys = [_head_key(state, i) for i in range(len(lpips.HEAD_CHANNELS))]
  common.require_keys(state, keys, source, "LPIPS v0.1 heads (lin<k>.model.1.weight)")
  return {f"lin{i}": {"kernel": common.check_shape(
      common.conv_kernel_from_torch(state[key]), (1, 1, channels, 1), source, key)}
          for i, (key, channels) in enumerate(zip(keys, lpips.HEAD_CHANNELS))}


def params_from_state_dicts(trunk_state: dict, head_state: dict, trunk_source: str = "trunk",
                            head_source: str = "heads") -> dict:
  params = dict(head_params(head_state, head_source))
  params["vgg"] = trunk_params(trunk_state, trunk_source)
  params_file.check_params_match(params, lpips.lpips_param_shapes(), f"{trunk_source} + {head_source}")
  return params


def convert(source: str, destination: str, heads: str | None = None, **unused) -> dict[str, str]:
  """`swaptalk convert lpips VGG16.pth DST --heads lpips/weights/v0.1/vgg.pth`.

  `heads` may be omitted when `source` is a full LPIPS state dict holding trunk and heads.
  """
  trunk_state = common.read_torch_state_dict(source)
  if heads is None:
    if not any(key.startswith("lin0.") for key in trunk_state):
      raise params_file.PretrainedFileError(
          f"{source} holds no LPIPS heads; pass --heads with the lpips package's "
          "weights/v0.1/vgg.pth (pip install lpips; the file is in the installed package)")
    head_state, head_source = trunk_state, source
  else:
    head_state, head_source = common.read_torch_state_dict(heads), heads
  params = params_from_state_dicts(trunk_state, head_state, source, head_source)
  extra = {"source": source, "heads": head_source, "source_format": "torch"}
  params_file.save_params(destination, params, network=NETWORK, variant=VARIANT, extra_metadata=extra)
  return {"network": NETWORK, "variant": VARIANT, **extra}
