"""Stage name -> the module that trains it, imported lazily; and the stage-aware entry points
that hand the core (`swaptalk_jax/core/`, which knows no stage) its Task and data.

A stage module provides `make_task(config) -> Task`, and the data it trains on:
`make_train_iterator(config, process_index, process_count)` and `make_eval_iterator(...)`, each
returning a checkpointable grain iterator of process-local numpy batches.
"""
import importlib
from types import ModuleType

from swaptalk_jax.core.task import Task
from swaptalk_jax.errors import UserError

STAGES = {
    "toy": "swaptalk_jax.trainers.toy",
    "vqgan": "swaptalk_jax.trainers.vqgan",
    "lipsync": "swaptalk_jax.trainers.lipsync",
    "swap": "swaptalk_jax.trainers.swap",
    "lip_expert": "swaptalk_jax.trainers.lip_expert",
    "identity": "swaptalk_jax.trainers.identity",
}


def stage_module(config) -> ModuleType:
  if config.stage not in STAGES:
    raise UserError(f"config.stage={config.stage!r} is not a known stage; known: {sorted(STAGES)}")
  return importlib.import_module(STAGES[config.stage])


def make_task(config) -> Task:
  return stage_module(config).make_task(config)


def data_module(config) -> ModuleType:
  return stage_module(config)


def build_trainer(config, workdir: str, devices=None):
  """The core's Trainer for config.stage (see swaptalk_jax/core/trainer.py)."""
  from swaptalk_jax.core import trainer  # pylint: disable=import-outside-toplevel
  return trainer.build_trainer(config, workdir, task=make_task(config), data=data_module(config),
                               devices=devices)


def train_and_evaluate(config, workdir: str):
  """`swaptalk train`: builds the stage's trainer and runs the loop; returns the final state."""
  from swaptalk_jax.core import loop  # pylint: disable=import-outside-toplevel
  return loop.run(build_trainer(config, workdir))
