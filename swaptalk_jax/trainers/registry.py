"""Stage name -> the module that builds its Task (`make_task(config)`), imported lazily."""
import importlib

from swaptalk_jax.core.task import Task

STAGES = {
    "toy": "swaptalk_jax.trainers.toy",
    "vqgan": "swaptalk_jax.trainers.vqgan",
}


def make_task(config) -> Task:
  if config.stage not in STAGES:
    raise ValueError(f"config.stage={config.stage!r} is not a known stage; known: {sorted(STAGES)}")
  return importlib.import_module(STAGES[config.stage]).make_task(config)
