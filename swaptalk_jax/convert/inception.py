"""pytorch-fid's `pt_inception-2015-12-05-*.pth` -> our FIDInceptionV3 params file, and its loader.

The Flax module mirrors the torch names, so the mapping is per leaf: conv `weight` OIHW -> `kernel`
HWIO; BatchNorm `weight`/`bias` -> params `scale`/`bias`, `running_mean`/`running_var` ->
batch_stats `mean`/`var`. The 1008-way `fc` classifier is not needed for pool3 features and is
dropped, but its size tells the FID graph (1008 classes) from torchvision's ImageNet model (1000),
whose same-named weights would give incomparable FIDs. Every other key must map onto the model
exactly (no missing, extra or mis-shaped arrays).
"""
from typing import Mapping

import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.convert import common
from swaptalk_jax.models import inception

NETWORK = inception.PARAMS_NETWORK
VARIANT = inception.PARAMS_VARIANT
FID_CLASSES = 1008  # the TF 2015-12-05 graph's classifier; torchvision's ImageNet model has 1000
_BN_LEAVES = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _set(tree: dict, path, value) -> None:
  *parents, leaf = path
  for name in parents:
    tree = tree.setdefault(name, {})
  if leaf in tree:
    raise ValueError(f"two checkpoint entries map onto {'/'.join(path)}")
  tree[leaf] = value


def variables_from_state_dict(state: Mapping[str, np.ndarray], source: str = "state dict") -> dict:
  """pytorch-fid FID Inception state dict -> {'params', 'batch_stats'} nested numpy dicts."""
  common.require_keys(state, ["Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var"],
                      source, "pytorch-fid FID InceptionV3")
  classes = np.shape(state.get("fc.weight", np.zeros((FID_CLASSES, 0))))[0]
  if classes != FID_CLASSES:
    raise params_file.PretrainedFileError(
        f"{source}: classifier has {classes} classes; the FID graph has {FID_CLASSES} "
        "(torchvision's ImageNet InceptionV3 gives FID values that are not comparable); "
        + params_file.SOURCES[NETWORK])
  variables: dict = {}
  for key, value in state.items():
    *modules, leaf = key.split(".")
    if modules[:1] == ["fc"] or leaf == "num_batches_tracked":
      continue
    value = np.asarray(value, np.float32)
    if modules[-1:] == ["conv"] and leaf == "weight":
      _set(variables, ("params", *modules, "kernel"), common.conv_kernel_from_torch(value))
    elif modules[-1:] == ["bn"] and leaf in _BN_LEAVES:
      collection, name = _BN_LEAVES[leaf]
      _set(variables, (collection, *modules, name), value)
    else:
      raise params_file.PretrainedFileError(f"{source}: unexpected entry {key!r} {value.shape}")
  params_file.check_params_match(variables, inception.abstract_variables(), source)
  return variables


def convert(src: str, dst: str, **unused_kwargs) -> dict:
  """Reads the torch checkpoint (no torch needed), writes the params file, returns the variables."""
  return common.convert_torch_file(src, dst, variables_from_state_dict, NETWORK, VARIANT)
