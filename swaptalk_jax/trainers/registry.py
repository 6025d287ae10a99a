"""Stage name -> the module that trains it, imported lazily.

A stage module provides `make_task(config) -> Task`, and the data it trains on:
`make_train_iterator(config, process_index, process_count)` and `make_eval_iterator(...)`, each
returning a checkpointable grain iterator of process-local numpy batches.
"""
import importlib
from types import ModuleType

from swaptalk_jax.core.task import Task

STAGES = {
    "toy": "swaptalk_jax.trainers.toy",
    "vqgan": "swaptalk_jax.trainers.vqgan",
}


def stage_module(config) -> ModuleType:
  if config.stage not in STAGES:
    raise ValueError(f"config.stage={config.stage!r} is not a known stage; known: {sorted(STAGES)}")
  return importlib.import_module(STAGES[config.stage])


def make_task(config) -> Task:
  return stage_module(config).make_task(config)


def data_module(config) -> ModuleType:
  return stage_module(config)
