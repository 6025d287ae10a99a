"""Codebook usage over a whole eval split: which codes of each codebook the split's tokens use.

The Task method named by `predict` (default 'token_indices') maps (params, batch) to token indices
int [B, h, w]; the token rows are split evenly into `halves` (the half-split VQGAN: upper rows index
C^U, lower rows C^B). Per half it reports `used_<half>` (fraction of the `num_codes` codes used at all
by the split's tokens), `perplexity_<half>` (exp of the entropy of the split's code histogram; equals
num_codes under uniform use) and `tokens_per_half` (the sample size). Per-batch perplexities
understate usage (one batch cannot use every code); these figures do not.

  c.evals.codebook_usage = dict(type="codebook_usage", num_batches=0)   # 0: the whole split
"""
import ml_collections
import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.evaluators.common import EvalContext


def usage_figures(histograms: dict[str, np.ndarray]) -> dict[str, float]:
  """Code histograms (half -> counts [K]) -> used_<half>, perplexity_<half>, tokens_per_half."""
  out = {}
  for half, counts in histograms.items():
    total = counts.sum()
    p = counts[counts > 0] / max(total, 1)
    out[f"used_{half}"] = float(np.count_nonzero(counts) / counts.size)
    out[f"perplexity_{half}"] = float(np.exp(-np.sum(p * np.log(p))))
    out["tokens_per_half"] = float(total)
  return out


class Evaluator:

  def __init__(self, config: ml_collections.ConfigDict, context: EvalContext):
    self.context = context
    self.num_batches = int(config.get("num_batches", 0) or 0)
    self.halves = tuple(config.get("halves", ("upper", "lower")))
    num_codes = config.get("num_codes", None) or context.config.model.get("num_codes", None)
    if not num_codes:
      raise UserError("config.evals.codebook_usage needs num_codes (or config.model.num_codes)")
    self.num_codes = int(num_codes)
    method = config.get("predict", "token_indices")
    if not hasattr(context.task, method):
      raise UserError(f"config.evals.codebook_usage.predict={method!r}: the "
                      f"{type(context.task).__name__} has no such method")
    self.predict = context.jit_predict(getattr(context.task, method))

  def run(self, params) -> dict[str, float]:
    histograms = {h: np.zeros(self.num_codes, np.int64) for h in self.halves}
    for batch in self.context.batches(self.num_batches):
      indices = np.asarray(self.predict(params, batch))
      for half, rows in zip(self.halves, np.array_split(indices, len(self.halves), axis=1)):
        histograms[half] += np.bincount(rows.ravel(), minlength=self.num_codes)
    return usage_figures(histograms)
