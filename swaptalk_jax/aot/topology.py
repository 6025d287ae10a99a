"""Compile targets: a TPU topology (through libtpu, no TPU needed) or N host CPU devices.

Target names: a TPU topology as libtpu spells it ('v5e:2x2', 'v5e:16x16', 'v4:2x2x2', 'v5p:4x4x8',
'v6e:4x4'), a Cloud TPU slice name for v5e/v6e ('v5e-8', 'v5e-256', 'v6e-64'), or 'cpu:N' (N host
CPU devices of this process: set --xla_force_host_platform_device_count before jax starts).
"""
import dataclasses
import math
import os
import re

import jax

from swaptalk_jax.errors import UserError

GIB = 2 ** 30
# HBM per chip (bytes), by jax device_kind. Per device = per chip x chips / devices (v4 topologies
# may expose each chip's two TensorCores as devices).
HBM_PER_CHIP = {
    "TPU v2": 8 * GIB,
    "TPU v3": 32 * GIB,
    "TPU v4": 32 * GIB,
    "TPU v5 lite": 16 * GIB,
    "TPU v5": 95 * GIB,
    "TPU v6 lite": 32 * GIB,
}
# Cloud TPU slice names of the 2-D generations -> libtpu topology (chips = the number after '-').
_SLICE_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16",
             256: "16x16"}
_TOPOLOGY = re.compile(r"^(v\d+[a-z]*):(\d+(?:x\d+)*)$")
_SLICE = re.compile(r"^(v5e|v6e)-(\d+)$")


@dataclasses.dataclass
class Target:
  name: str                 # as given
  topology: str | None      # libtpu topology name ('v5e:2x4'); None for cpu
  devices: list             # jax devices (TPU topology devices or host CPU devices)
  chips: int
  device_kind: str
  hbm_per_device: int | None   # bytes; None where unknown (cpu)

  @property
  def num_devices(self) -> int:
    return len(self.devices)


def canonical_topology(name: str) -> str:
  """'v5e-8' -> 'v5e:2x4'; a libtpu topology name is returned as is; anything else: UserError."""
  name = name.strip()
  m = _SLICE.match(name)
  if m:
    chips = int(m.group(2))
    if chips not in _SLICE_2D:
      raise UserError(f"unknown TPU slice {name!r}: {m.group(1)} slices have "
                      f"{sorted(_SLICE_2D)} chips")
    return f"{m.group(1)}:{_SLICE_2D[chips]}"
  if not _TOPOLOGY.match(name):
    raise UserError(f"unknown compile target {name!r}: use a TPU topology like 'v5e:2x2', "
                    "'v4:2x2x2', 'v5p:4x4x8', a slice like 'v5e-256', or 'cpu:N'")
  return name


def _tpu_target(name: str) -> Target:
  topology = canonical_topology(name)
  try:
    from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  except ImportError as e:   # pragma: no cover (part of jax)
    raise UserError(f"this jax ({jax.__version__}) has no jax.experimental.topologies") from e
  if not libtpu_available():
    raise UserError(f"compiling for {name!r} needs libtpu: pip install 'swaptalk_jax[tpu]' "
                    "(Python >= 3.12), or compile for 'cpu:N'")
  # libtpu serves here only as a compiler: let several processes (tests, two compiles, a training
  # run on a TPU VM) load it at once instead of failing on /tmp/libtpu_lockfile.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  try:
    desc = topologies.get_topology_desc(platform="tpu", topology_name=topology)
  except Exception as e:  # libtpu's own message names the problem (bad generation, bad shape)
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"unknown TPU topology {name!r}: {first}") from e
  devices = list(desc.devices)
  kind = devices[0].device_kind
  chips = math.prod(int(d) for d in topology.split(":")[1].split("x"))
  hbm = HBM_PER_CHIP.get(kind)
  return Target(name, topology, devices, chips, kind,
                None if hbm is None else hbm * chips // len(devices))


def _cpu_target(name: str) -> Target:
  try:
    count = int(name.split(":", 1)[1])
  except ValueError:
    raise UserError(f"compile target {name!r}: write cpu:N with N a number of devices") from None
  present = jax.devices("cpu")
  if not 1 <= count <= len(present):
    raise UserError(f"compile target {name!r}: this process has {len(present)} CPU devices (set "
                    f"XLA_FLAGS=--xla_force_host_platform_device_count={max(count, 1)} before start)")
  return Target(name, None, present[:count], count, present[0].device_kind, None)


def resolve_target(name: str) -> Target:
  """The devices and memory budget of a compile target (see the module docstring)."""
  if name.startswith("cpu:"):
    return _cpu_target(name)
  return _tpu_target(name)


def libtpu_available() -> bool:
  """Whether libtpu (the TPU compiler, needed to compile for a TPU topology) is installed."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec("libtpu") is not None
