"""Items over worker processes on one machine, with a progress bar.

Workers are spawned (clean interpreters: no inherited threads or JAX state), each loads the dlib
models once, and items are handed out one at a time (`imap_unordered`, chunksize 1) so long and
short videos balance. Each finished item is already on disk when its result arrives.
"""
import multiprocessing
from typing import Sequence

import tqdm

from data_prep.real import manifest
from data_prep.real.config import PrepConfig
from data_prep.real.spec import ClipSpec

_worker_state = {}


def _init(config: PrepConfig, staging: str):
  _worker_state.update(config=config, staging=staging, predictor=None)


def _run(spec: ClipSpec) -> manifest.ItemResult:
  from swaptalk_jax.face.landmarks import LandmarkPredictor  # pylint: disable=g-import-not-at-top
  if _worker_state["predictor"] is None:
    _worker_state["predictor"] = LandmarkPredictor()
  return manifest.stage_item(spec, _worker_state["config"], _worker_state["staging"],
                             _worker_state["predictor"])


def run_items(specs: Sequence[ClipSpec], config: PrepConfig, staging: str, workers: int = 1,
              progress: bool = True) -> list[manifest.ItemResult]:
  """Stages every item (skipping finished ones); returns one result per item in input order."""
  bar = tqdm.tqdm(total=len(specs), unit="item", disable=not progress, smoothing=0.05)
  results = {}
  if workers <= 1:
    _init(config, staging)
    for spec in specs:
      results[spec.key] = _run(spec)
      bar.update(1)
  else:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(config, staging)) as pool:
      for result in pool.imap_unordered(_run, specs, chunksize=1):
        results[result.key] = result
        bar.update(1)
        bar.set_postfix(failed=sum(r.status == "failed" for r in results.values()))
  bar.close()
  return [results[s.key] for s in specs]
