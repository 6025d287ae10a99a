"""The device mesh and how logical axis names map onto it.

Parameters carry logical names (see `swaptalk_jax.models.layers`); `LOGICAL_RULES` maps them onto
the mesh axes ('data', 'fsdp'). Batches are split over both axes; under fsdp > 1 the largest
divisible dimension of each big parameter is sharded over 'fsdp' (ZeRO-3 style), which XLA turns
into all-gathers in the forward pass and reduce-scatters of the gradients.
"""
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from swaptalk_jax.errors import UserError

MESH_AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")

# Logical name -> mesh axis (or None), for parameters and activations alike. 'batch' splits over
# both mesh axes; the big dimension of conv and dense kernels over 'fsdp'. Transformers name their
# weights and activations 'heads', 'kv' (per-head features), 'mlp' and 'length' (sequence); they
# stay unsharded until a 'model' mesh axis exists. A config extends or overrides these with
# `config.logical_axis_rules` (see `rules_from_config`), MaxText's `logical_axis_rules`.
LOGICAL_RULES = (
    ("batch", BATCH_AXES),
    ("conv_out", "fsdp"),
    ("embed", "fsdp"),
    ("vocab", None),
    ("mlp", None),
    ("heads", None),
    ("kv", None),
    ("length", None),
    ("conv_h", None),
    ("conv_w", None),
    ("conv_in", None),
    ("norm", None),
)


def rules_from_config(config) -> tuple:
  """LOGICAL_RULES with `config.logical_axis_rules` applied: a pair (name, mesh axes) replaces the
  rule of that name, a new name is appended. Mesh axes are None, a mesh axis or a tuple of them."""
  extra = config.get("logical_axis_rules", None) or ()
  rules = dict(LOGICAL_RULES)
  for entry in extra:
    if len(entry) != 2 or not isinstance(entry[0], str):
      raise UserError(f"config.logical_axis_rules entries are (logical name, mesh axes), got {entry!r}")
    name, axes = entry
    names = () if axes is None else ((axes,) if isinstance(axes, str) else tuple(axes))
    unknown = [a for a in names if a not in MESH_AXES]
    if unknown:
      raise UserError(f"config.logical_axis_rules: {name!r} -> unknown mesh axes {unknown}; the mesh "
                      f"has {MESH_AXES}")
    rules[name] = axes if axes is None or isinstance(axes, str) else tuple(axes)
  return tuple(rules.items())


def make_mesh(mesh_config: Mapping[str, int], devices=None) -> Mesh:
  """Mesh with axes ('data', 'fsdp') from config sizes; one size may be -1 (the rest)."""
  devices = list(jax.devices() if devices is None else devices)
  unknown = set(mesh_config) - set(MESH_AXES)
  if unknown:
    raise UserError(f"config.mesh has unknown axes {sorted(unknown)}; allowed: {MESH_AXES}")
  sizes = [int(mesh_config.get(a, 1)) for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise UserError(f"config.mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, sizes))}")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise UserError(f"config.mesh {dict(zip(MESH_AXES, sizes))} does not divide {len(devices)} devices")
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise UserError(f"config.mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
                     f"{len(devices)} are present")
  return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (example) dimension over every mesh axis, the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _fit_spec(spec: P, shape, mesh: Mesh, min_size: int) -> P:
  """Drop mesh axes from dims they do not divide, and from small parameters (kept replicated)."""
  if math.prod(shape) < min_size:
    return P()
  fitted = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (axes,) if isinstance(axes, str) else tuple(axes or ())
    size = math.prod(mesh.shape[n] for n in names)
    fitted.append(axes if names and dim % size == 0 else None)
  return P(*fitted)


def strip_boxes(tree: Any) -> Any:
  """Removes logical-partitioning boxes without applying sharding constraints (abstract trees)."""
  return jax.tree.map(
      lambda x: x.unbox(apply_constraint=False) if isinstance(x, nn.meta.AxisMetadata) else x,
      tree, is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))


def logical_to_shardings(abstract_tree: Any, mesh: Mesh, rules=LOGICAL_RULES,
                         min_size: int = 2 ** 14) -> Any:
  """NamedShardings for a tree of (possibly boxed) abstract arrays; unboxed leaves are replicated."""
  logical_specs = nn.get_partition_spec(abstract_tree)
  mesh_specs = nn.logical_to_mesh(logical_specs, rules)
  unboxed = strip_boxes(abstract_tree)
  return jax.tree.map(
      lambda spec, x: NamedSharding(mesh, _fit_spec(spec, np.shape(x), mesh, min_size)),
      mesh_specs, unboxed, is_leaf=lambda s: isinstance(s, P))
