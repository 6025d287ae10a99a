"""usage: swaptalk train --config=configs/<stage>.py:<variant> --workdir=DIR [--config.key=value ...]

Trains the config's stage (config.stage: a name in swaptalk_jax/trainers/registry.py) on the shared
core: checkpoints, the data-iterator state and TensorBoard logs go to --workdir; a rerun with the
same workdir resumes.
Any config field can be overridden on the command line (--config.train.num_steps=100).
"""
from absl import app, flags
from ml_collections import config_flags

from swaptalk_jax import cli_support

EXAMPLE = "swaptalk train --config=configs/vqgan.py:tiny --workdir=outputs/vqgan_tiny"

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file with variant, e.g. "
                                          "configs/vqgan.py:tiny.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and TensorBoard logs.")


def _main(argv):
  cli_support.no_positional(argv)
  cli_support.require(config=_CONFIG.value, workdir=_WORKDIR.value)
  from swaptalk_jax.core import distributed, logs  # pylint: disable=import-outside-toplevel
  logs.quiet_library_logs()
  distributed.maybe_initialize()
  from swaptalk_jax.trainers import registry  # pylint: disable=import-outside-toplevel
  registry.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(f"swaptalk train: done; checkpoints and TensorBoard logs in {_WORKDIR.value}")


def main(argv):
  app.run(_main, argv=argv)
