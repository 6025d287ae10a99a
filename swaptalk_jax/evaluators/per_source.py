"""Eval metrics per dataset of a mixture: the mean of `Task.eval_metrics` over the eval split of
each source of `config.data` (its `mixture` or `sources`) on its own, written as
`eval/<prefix><source>/<metric>` — so an extra-data run shows how each dataset fares.

  c.evals.per_source = dict(type="per_source", num_batches=2)   # default: train.eval_batches

A source is labelled by its name, or `<name>_<index>` where two sources share a name.
"""
import copy
import itertools

import jax
import ml_collections

from swaptalk_jax.core.reporting import Averager
from swaptalk_jax.evaluators.common import EvalContext


def source_labels(sources) -> list[str]:
  names = [s["name"] for s in sources]
  return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


class Evaluator:

  def __init__(self, config: ml_collections.ConfigDict, context: EvalContext):
    from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
    self.context = context
    run = context.config
    num = config.get("num_batches", None)
    self.num_batches = int(run.train.eval_batches if num is None else num)
    self.seed = int(run.seed) + 1
    self.sources = list(pipelines.resolve_config(run.data).sources)
    self.labels = source_labels(self.sources)

  def _batches(self, source: dict):
    """Global eval batches of one source (the run's data config with only that source)."""
    from swaptalk_jax.trainers import registry  # pylint: disable=g-import-not-at-top
    config = copy.deepcopy(self.context.config)
    with config.unlocked():
      config.data.sources = [dict(source)]
      config.data.mixture = ""
    local = registry.data_module(config).make_eval_iterator(config, jax.process_index(),
                                                            jax.process_count())
    if self.num_batches > 0:
      local = itertools.islice(local, self.num_batches)
    for batch in local:
      yield self.context.to_global(batch)

  def run(self, params) -> dict[str, float]:
    scores = {}
    rng = jax.random.PRNGKey(self.seed)
    for label, source in zip(self.labels, self.sources):
      averager = Averager()
      for i, batch in enumerate(self._batches(source)):
        averager.update(self.context.eval_fn(params, batch, jax.random.fold_in(rng, i)))
      scores.update({f"{label}/{k}": v for k, v in averager.compute_and_reset().items()})
    return scores
