"""`swaptalk compile --config=configs/<stage>.py:<variant> --target=v5e:2x4[,v5e-256,...]`

Compiles the stage's train step ahead of time for each target (a TPU topology through libtpu, on a
CPU-only machine; or `cpu:N`), prints per-device memory against the chip's HBM and FLOPs per step,
and exits 3 when a target does not fit. Flag parsing only: the work is in swaptalk_jax/aot/.
"""
import os
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file with variant, e.g. "
                                          "configs/vqgan.py:f16.", lock_config=True)
_TARGET = flags.DEFINE_list("target", None, "Compile targets: TPU topologies ('v5e:2x2', "
                            "'v4:2x2x2', 'v5p:4x4x8'), slices ('v5e-8', 'v5e-256') or 'cpu:N'.")
_DUMP_DIR = flags.DEFINE_string("dump_dir", None, "Write the compiled HLO, every state leaf's "
                                "sharding and the report here (one folder per target).")
flags.mark_flags_as_required(["config", "target"])

EXAMPLE = "swaptalk compile --config=configs/vqgan.py:f16 --target=v5e:2x4"

EXIT_DOES_NOT_FIT = 3


def _prepare_environment(argv) -> None:
  """Before jax starts: never claim a real accelerator (compiling needs none), and give cpu:N
  targets their N host devices."""
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  counts = [int(t.split(":", 1)[1]) for a in argv if a.startswith("--target=")
            for t in a.split("=", 1)[1].split(",") if t.startswith("cpu:") and
            t.split(":", 1)[1].isdigit()]
  if counts and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={max(counts)}")


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from swaptalk_jax.aot import compile as aot_compile, topology  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.core import logs  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  logs.quiet_library_logs()
  too_big = []
  try:
    for name in _TARGET.value:
      target = topology.resolve_target(name)
      dump = os.path.join(_DUMP_DIR.value, name.replace(":", "_")) if _DUMP_DIR.value else None
      report = aot_compile.compile_for_target(_CONFIG.value, target, dump)
      print("\n".join(report.lines()), flush=True)
      if report.fits is False:
        too_big.append(name)
  except UserError as e:
    print(f"swaptalk compile: error: {e}", file=sys.stderr)
    sys.exit(1)
  if too_big:
    print(f"swaptalk compile: does not fit on {', '.join(too_big)}", file=sys.stderr)
    sys.exit(EXIT_DOES_NOT_FIT)


def main(argv):
  _prepare_environment(argv)
  app.run(_main, argv=argv)
