"""`swaptalk train --config=configs/<stage>.py:<variant> --workdir=DIR [--config.key=value ...]`."""
import logging
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file with variant, e.g. "
                                          "configs/vqgan.py:tiny.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and TensorBoard logs.")
flags.mark_flags_as_required(["config", "workdir"])


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from swaptalk_jax.core import distributed, logs
  logs.quiet_library_logs()
  distributed.maybe_initialize()
  from swaptalk_jax.core import checkpoint, loop
  try:
    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (ValueError, checkpoint.CheckpointMismatchError) as e:
    if not getattr(e, "_swaptalk_user_error", True):
      raise
    logging.error("%s", e)
    print(f"swaptalk train: error: {e}", file=sys.stderr)
    sys.exit(1)
  print(f"swaptalk train: done; checkpoints and TensorBoard logs in {_WORKDIR.value}")


def main(argv):
  app.run(_main, argv=argv)
