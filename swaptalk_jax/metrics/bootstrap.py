"""Percentile bootstrap confidence intervals over clips (seeded, so a table is reproducible).

Clips are the resampling unit: frames of one clip are not independent, so resampling frames would
give intervals that are too narrow. `bootstrap` takes any statistic of a set of clip indices (a
per-clip mean, or a set-level figure like FID recomputed on the resampled clips); `mean_interval`
is the common case. Parity: the interval matches scipy.stats.bootstrap(method='percentile') to
within resampling noise (tests/test_metrics_table.py).
"""
import dataclasses
from typing import Callable

import numpy as np

from swaptalk_jax.errors import UserError

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Interval:
  """A statistic on all clips and its percentile bootstrap interval."""
  value: float
  low: float
  high: float
  confidence: float
  num_clips: int
  resamples: int


def bootstrap(statistic: Callable[[np.ndarray], float], num_clips: int,
              resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
              seed: int = 0) -> Interval:
  """statistic(indices int [num_clips]) on all clips, and the percentile interval of the statistic
  over `resamples` draws of num_clips clip indices with replacement (numpy default_rng(seed))."""
  if num_clips < 2:
    raise UserError(f"a bootstrap interval needs at least 2 clips, got {num_clips}")
  if not 0.0 < confidence < 1.0:
    raise UserError(f"confidence must be in (0, 1), got {confidence}")
  if resamples < 10:
    raise UserError(f"resamples must be at least 10, got {resamples}")
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, num_clips, size=(resamples, num_clips))
  values = np.array([float(statistic(d)) for d in draws])
  alpha = (1.0 - confidence) / 2.0
  low, high = np.quantile(values, [alpha, 1.0 - alpha])
  return Interval(value=float(statistic(np.arange(num_clips))), low=float(low), high=float(high),
                  confidence=confidence, num_clips=num_clips, resamples=resamples)


def mean_interval(per_clip, resamples: int = DEFAULT_RESAMPLES,
                  confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> Interval:
  """Mean over clips of per-clip values [N] and its percentile bootstrap interval (vectorised)."""
  values = np.asarray(per_clip, np.float64)
  if values.ndim != 1:
    raise UserError(f"per-clip values must be 1-D, got {values.shape}")
  if not np.all(np.isfinite(values)):
    raise UserError("per-clip values contain NaN or Inf")
  if values.size < 2:
    raise UserError(f"a bootstrap interval needs at least 2 clips, got {values.size}")
  if not 0.0 < confidence < 1.0:
    raise UserError(f"confidence must be in (0, 1), got {confidence}")
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, values.size, size=(resamples, values.size))
  means = values[draws].mean(axis=1)
  alpha = (1.0 - confidence) / 2.0
  low, high = np.quantile(means, [alpha, 1.0 - alpha])
  return Interval(value=float(values.mean()), low=float(low), high=float(high),
                  confidence=confidence, num_clips=int(values.size), resamples=resamples)
