"""syncnet_python's `syncnet_v2.model` (torch state dict) -> our SyncNet params file; its loader.

Per leaf: Conv2d OIHW -> HWIO; the lip stream's Conv3d (O, C, T, H, W) -> (H, W, T*C, O), frames
stacked frame-major as `SyncNet.lip_features` does (T is 5 for the first layer, 1 after); Linear
(out, in) -> (in, out); BatchNorm weight/bias -> params scale/bias, running stats -> batch_stats.
Keys may carry SyncNetInstance's `__S__.` prefix.
"""
from typing import Mapping

import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.convert import common
from swaptalk_jax.models import syncnet

NETWORK = syncnet.PARAMS_NETWORK
VARIANT = syncnet.PARAMS_VARIANT
_STREAMS = {"netcnnaud": "audio_cnn", "netfcaud": "audio_fc", "netcnnlip": "lip_cnn",
            "netfclip": "lip_fc"}
_BN_LEAVES = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _layer_kinds() -> dict:
  """{(sequential, index): 'conv' | 'dense' | 'bn'} from the model's layer tables."""
  kinds = {}
  for seq, convs in (("netcnnaud", syncnet.AUDIO_CONVS), ("netcnnlip", syncnet.LIP_CONVS)):
    for spec in convs:
      kinds[(seq, spec[0])], kinds[(seq, spec[0] + 1)] = "conv", "bn"
  for seq in ("netfcaud", "netfclip"):
    kinds.update({(seq, 0): "dense", (seq, 1): "bn", (seq, 3): "dense"})
  return kinds


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
  if weight.ndim == 4:
    return common.conv_kernel_from_torch(weight)
  o, c, t, h, w = weight.shape
  return np.transpose(weight, (3, 4, 2, 1, 0)).reshape(h, w, t * c, o)


def variables_from_state_dict(state: Mapping[str, np.ndarray], source: str = "state dict") -> dict:
  """syncnet_v2 state dict -> {'params', 'batch_stats'} nested numpy dicts."""
  state = {k[len("__S__."):] if k.startswith("__S__.") else k: v for k, v in state.items()}
  common.require_keys(state, ["netcnnaud.0.weight", "netcnnlip.0.weight", "netfclip.3.weight"],
                      source, "syncnet_python SyncNet (syncnet_v2)")
  kinds = _layer_kinds()
  variables: dict = {"params": {}, "batch_stats": {}}
  for key, value in state.items():
    parts = key.split(".")
    if parts[-1] == "num_batches_tracked":
      continue
    kind = kinds.get((parts[0], int(parts[1]))) if len(parts) == 3 and parts[1].isdigit() else None
    if kind is None:
      raise params_file.PretrainedFileError(f"{source}: unexpected entry {key!r} {np.shape(value)}")
    seq, index, leaf = parts[0], int(parts[1]), parts[2]
    value = np.asarray(value, np.float32)
    collection = "params"
    if kind == "bn" and leaf in _BN_LEAVES:
      collection, leaf = _BN_LEAVES[leaf]
    elif kind != "bn" and leaf == "weight":
      leaf, value = "kernel", (_conv_kernel(value) if kind == "conv" else value.T)
    elif kind == "bn" or leaf != "bias":
      raise params_file.PretrainedFileError(f"{source}: unexpected entry {key!r}")
    layer = variables[collection].setdefault(_STREAMS[seq], {}).setdefault(f"{seq}_{index}", {})
    layer[leaf] = np.ascontiguousarray(value)
  params_file.check_params_match(variables, syncnet.abstract_variables(), source)
  return variables


def convert(src: str, dst: str, **unused_kwargs) -> dict:
  """Reads the torch checkpoint (no torch needed), writes the params file, returns the variables."""
  return common.convert_torch_file(src, dst, variables_from_state_dict, NETWORK, VARIANT)
