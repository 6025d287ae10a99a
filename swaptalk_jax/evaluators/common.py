"""The evaluator interface and its registry by name (big_vision's `evaluators/common.py` shape).

An evaluator sees a whole eval split, not one batch: it runs the model over every batch, keeps what
it needs on the host (token histograms, embeddings, images) and computes its figures at the end, so
FID, LSE, retrieval or codebook usage over a split are expressible. A stage configures its
evaluators by name:

  c.evals.batch_mean = dict(type="batch_mean", prefix="")        # base_config(): Task.eval_metrics
  c.evals.codebook_usage = dict(type="codebook_usage", num_batches=0)

The core's periodic eval (`core/loop.evaluate`, and later `swaptalk eval`) builds each one once with
`make_evaluators(config, context)` and writes `eval/<prefix><metric>` for every figure it returns.
Writing one: a module here with a class `Evaluator(config, context)` whose `run(params)` returns
{metric: float}, and a line in EVALUATORS.
"""
import dataclasses
import importlib
import itertools
from typing import Any, Callable, Iterator, Mapping, Protocol

import ml_collections

from swaptalk_jax.errors import UserError

# type -> "module:Class" (imported when a config names it).
EVALUATORS = {
    "av_offset": "swaptalk_jax.evaluators.av_offset:Evaluator",
    "batch_mean": "swaptalk_jax.evaluators.batch_mean:Evaluator",
    "codebook_usage": "swaptalk_jax.evaluators.codebook_usage:Evaluator",
    "per_source": "swaptalk_jax.evaluators.per_source:Evaluator",
    "swap_pairs": "swaptalk_jax.evaluators.swap_pairs:Evaluator",
    "verification": "swaptalk_jax.evaluators.verification:Evaluator",
}


@dataclasses.dataclass
class EvalContext:
  """What an evaluator may use: the stage's Task, the run's config, the eval split's batches and a
  way to jit a prediction function with the run's shardings."""
  task: Any                                        # the stage's Task (swaptalk_jax/core/task.py)
  config: ml_collections.ConfigDict                # the whole run config
  make_eval_iter: Callable[[], Iterator[dict]]     # a fresh pass over the eval split (local batches)
  to_global: Callable[[dict], dict]                # process-local numpy batch -> global jax arrays
  jit_predict: Callable[[Callable], Callable]      # fn(params, batch) -> pytree: jitted, outputs
                                                   # replicated (host-readable on every process)
  eval_fn: Callable                                # jitted Task.eval_metrics(params, batch, rng)

  def batches(self, num_batches: int = 0) -> Iterator[dict]:
    """Global batches of the eval split: one whole pass, or the first `num_batches` (> 0)."""
    local = self.make_eval_iter()
    if num_batches > 0:
      local = itertools.islice(local, num_batches)
    for batch in local:
      yield self.to_global(batch)


class Evaluator(Protocol):
  """One named evaluator. `config` is its own `config.evals.<name>` section."""

  def __init__(self, config: ml_collections.ConfigDict, context: EvalContext):
    ...

  def run(self, params: Mapping[str, Any]) -> dict[str, float]:
    """Figures over the split; `params` as `Task.eval_metrics` receives them (EMA, frozen nets)."""


@dataclasses.dataclass
class Named:
  name: str
  prefix: str                                      # prepended to each metric name ('' or 'name/')
  evaluator: Any


def evaluator_class(kind: str) -> type:
  if kind not in EVALUATORS:
    raise UserError(f"unknown evaluator type {kind!r}; known: {sorted(EVALUATORS)}")
  module, cls = EVALUATORS[kind].split(":")
  return getattr(importlib.import_module(module), cls)


def eval_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
  """config.evals by name; a config without `evals` gets the batch-mean evaluator alone."""
  evals = config.get("evals", None)
  if evals is None:
    return {"batch_mean": ml_collections.ConfigDict(dict(type="batch_mean", prefix=""))}
  return {name: evals[name] for name in evals}


def check_configs(config: ml_collections.ConfigDict) -> list[tuple[str, ml_collections.ConfigDict, type]]:
  """(name, its config, its class) of every evaluator of `config`; a UserError names a bad one."""
  out = []
  for name, cfg in eval_configs(config).items():
    if "type" not in cfg:
      raise UserError(f"config.evals.{name} has no 'type'; known: {sorted(EVALUATORS)}")
    out.append((name, cfg, evaluator_class(cfg.type)))
  return out


def make_evaluators(config: ml_collections.ConfigDict, context: EvalContext) -> list[Named]:
  """Every evaluator of `config.evals`, built once (their jitted functions compile on first use)."""
  out = []
  for name, cfg, cls in check_configs(config):
    prefix = cfg.get("prefix", None)
    out.append(Named(name, f"{name}/" if prefix is None else prefix, cls(cfg, context)))
  return out


def run_all(evaluators: list[Named], params: Mapping[str, Any]) -> dict[str, float]:
  """All figures of all evaluators, each under its prefix."""
  scores = {}
  for named in evaluators:
    scores.update({f"{named.prefix}{k}": float(v) for k, v in named.evaluator.run(params).items()})
  return scores
