"""The default evaluator: the mean of the Task's per-batch scalars (`Task.eval_metrics`) over
`num_batches` eval batches (default `config.train.eval_batches`), as periodic eval always did."""
import jax
import ml_collections

from swaptalk_jax.core.reporting import Averager
from swaptalk_jax.evaluators.common import EvalContext


class Evaluator:

  def __init__(self, config: ml_collections.ConfigDict, context: EvalContext):
    self.context = context
    num = config.get("num_batches", None)
    self.num_batches = int(context.config.train.eval_batches if num is None else num)
    self.seed = int(context.config.seed) + 1

  def run(self, params) -> dict[str, float]:
    averager = Averager()
    rng = jax.random.PRNGKey(self.seed)
    for i, batch in enumerate(self.context.batches(self.num_batches)):
      averager.update(self.context.eval_fn(params, batch, jax.random.fold_in(rng, i)))
    return averager.compute_and_reset()
