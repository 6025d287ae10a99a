"""The runtime weights format of the project (read by losses, metrics and models; written by
`swaptalk convert`): a flat dict of arrays in safetensors + a metadata header.

Keys are '/'-joined paths of the nested Flax params dict ('layer1_0/conv1/kernel'); the header names
the network ('arcface', 'lpips', 'inception', 'syncnet', ...) and its variant ('r50', 'vgg16', ...),
so a config pointing at the wrong file fails at start-up instead of computing a wrong loss or metric.
"""
import os
from typing import Any, Mapping

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from swaptalk_jax.errors import UserError

FORMAT_VERSION = "1"
SEPARATOR = "/"

# Where users get the original checkpoint of each network (no machine here can download them).
SOURCES = {
    "arcface": (
        "an ArcFace IResNet checkpoint: insightface's arcface_torch release (backbone.pth of ms1mv3/"
        "glint360k r50/r100) or an insightface model pack's recognition .onnx (e.g. buffalo_l/w600k_r50"
        ".onnx); convert it with `swaptalk convert arcface SRC DST --variant r50`"),
    "lpips": (
        "torchvision's ImageNet VGG16 state dict (vgg16-397923af.pth) plus the LPIPS v0.1 linear heads "
        "(lpips/weights/v0.1/vgg.pth in the `lpips` pip package); convert them with `swaptalk convert "
        "lpips VGG16.pth DST --heads .../lpips/weights/v0.1/vgg.pth`"),
    "inception": (
        "the FID InceptionV3 weights of pytorch-fid (pt_inception-2015-12-05-6726825d.pth); convert "
        "them with `swaptalk convert inception SRC DST`"),
    "syncnet": (
        "syncnet_python's pretrained syncnet_v2.model; convert it with `swaptalk convert syncnet SRC "
        "DST`"),
}


class PretrainedFileError(UserError):
  """A params file is missing, unreadable, or holds another network/variant than the config expects."""


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
  """Nested dict of arrays -> {'a/b/c': array}; leaves with a shape (jax arrays, ShapeDtypeStructs)
  are kept as they are, anything else becomes a numpy array."""
  flat = {}
  for key, value in params.items():
    if SEPARATOR in key:
      raise ValueError(f"parameter name {key!r} contains the separator {SEPARATOR!r}")
    path = f"{prefix}{SEPARATOR}{key}" if prefix else key
    if isinstance(value, Mapping):
      flat.update(flatten_params(value, path))
    else:
      flat[path] = value if hasattr(value, "shape") else np.asarray(value)
  return flat


def unflatten_params(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """{'a/b/c': array} -> nested dict."""
  nested: dict[str, Any] = {}
  for path, value in flat.items():
    node = nested
    *parents, leaf = path.split(SEPARATOR)
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = value
  return nested


def random_params(shapes: Mapping[str, Any], seed: int = 0) -> dict[str, Any]:
  """Stand-in params with the shapes of `shapes` (e.g. `jax.eval_shape(model.init, ...)`), drawn
  with numpy: no per-parameter XLA compiles, so tests and benchmarks of big frozen nets start fast.

  kernels ~ N(0, 1/fan_in); norm 'scale'/'var' 1; 'alpha' (PReLU) 0.25; everything else 0.
  """
  rng = np.random.default_rng(seed)
  filled = {}
  for path, leaf in flatten_params(shapes).items():
    shape, name = tuple(leaf.shape), path.rsplit(SEPARATOR, 1)[-1]
    if name == "kernel":
      fan_in = int(np.prod(shape[:-1]))
      filled[path] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    else:
      value = {"scale": 1.0, "var": 1.0, "alpha": 0.25}.get(name, 0.0)
      filled[path] = np.full(shape, value, np.float32)
  return unflatten_params(filled)


def save_params(path: str, params: Mapping[str, Any], *, network: str, variant: str,
                extra_metadata: Mapping[str, str] | None = None) -> None:
  """Writes a nested params dict (np/jax arrays) and its header to `path` (.safetensors)."""
  flat = {k: np.ascontiguousarray(np.asarray(v)) for k, v in flatten_params(params).items()}
  metadata = {"format_version": FORMAT_VERSION, "network": network, "variant": variant}
  metadata.update({k: str(v) for k, v in (extra_metadata or {}).items()})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  save_file(flat, path, metadata=metadata)


def read_metadata(path: str) -> dict[str, str]:
  """The header of a params file (network, variant, format_version, ...)."""
  _check_exists(path)
  with safe_open(path, framework="np") as f:
    return dict(f.metadata() or {})


def load_params(path: str) -> tuple[dict[str, Any], dict[str, str]]:
  """Reads a params file -> (nested dict of np arrays, metadata)."""
  _check_exists(path)
  try:
    with safe_open(path, framework="np") as f:
      flat = {key: f.get_tensor(key) for key in f.keys()}
      metadata = dict(f.metadata() or {})
  except Exception as e:  # safetensors raises its own error types for corrupt headers
    raise PretrainedFileError(f"{path}: not a readable safetensors params file ({e})") from e
  return unflatten_params(flat), metadata


def load_pretrained(kind: str, path: str, expected_variant: str | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
  """Loads a converted params file, failing clearly if it is missing or holds another network.

  `kind` is the network ('arcface', 'lpips', 'inception', 'syncnet'); `expected_variant` (e.g. 'r50')
  is checked against the file's header when given. Errors name the file, the network and where users
  get the original checkpoint.
  """
  where = SOURCES.get(kind, "the original checkpoint of this network")
  if not path:
    raise PretrainedFileError(
        f"no {kind} params file configured; expected a file written by `swaptalk convert {kind}` "
        f"from {where}")
  if not os.path.isfile(path):
    raise PretrainedFileError(
        f"{kind} params file {path!r} does not exist; create it with `swaptalk convert {kind}` "
        f"from {where}")
  params, metadata = load_params(path)
  network = metadata.get("network")
  if network != kind:
    raise PretrainedFileError(
        f"{path!r} holds network {network!r}, expected {kind!r}; convert {where}")
  variant = metadata.get("variant")
  if expected_variant is not None and variant != expected_variant:
    raise PretrainedFileError(
        f"{path!r} holds {kind} variant {variant!r}, but the config expects {expected_variant!r}; "
        f"convert the matching checkpoint ({where})")
  return params, metadata


def _check_exists(path: str) -> None:
  if not os.path.isfile(path):
    raise PretrainedFileError(f"params file {path!r} does not exist")


def _flat_shapes(tree: Mapping[str, Any], prefix: str = "") -> dict[str, tuple]:
  shapes = {}
  for key, value in tree.items():
    path = f"{prefix}{SEPARATOR}{key}" if prefix else key
    shapes.update(_flat_shapes(value, path) if isinstance(value, Mapping)
                  else {path: tuple(np.shape(value))})
  return shapes


def check_params_match(params: Mapping[str, Any], expected: Mapping[str, Any], source: str) -> None:
  """Raises PretrainedFileError naming the missing, unexpected and mis-shaped arrays of a converted
  tree against the model's (arrays or ShapeDtypeStructs; params or full variables)."""
  got, want = _flat_shapes(params), _flat_shapes(expected)
  missing = sorted(set(want) - set(got))
  unexpected = sorted(set(got) - set(want))
  mismatched = [f"{p}: {got[p]} vs expected {want[p]}" for p in sorted(set(got) & set(want))
                if got[p] != want[p]]
  problems = [f"{label} ({len(items)}): {items[:4]}{' ...' if len(items) > 4 else ''}"
              for label, items in (("missing", missing), ("unexpected", unexpected),
                                   ("wrong shape", mismatched)) if items]
  if problems:
    raise PretrainedFileError(f"{source}: does not match the model; " + "; ".join(problems))


def load_checked(network: str, variant: str, path: str, expected: Mapping[str, Any]) -> dict:
  """A converted params file, checked against the model's tree `expected`; clear errors if the file
  is missing, holds another network or variant, or does not match."""
  variables, _ = load_pretrained(network, path, expected_variant=variant)
  check_params_match(variables, expected, path)
  return variables
