"""Checkpoint save time of a ~100M-parameter train state through the core's one checkpoint path:
the blocking part (what the train loop waits for) vs the asynchronous part (written in the
background), against a synchronous save of the same state.

  python benchmarks/checkpoint_save.py [--params_millions=100]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import print_table  # noqa: E402
from swaptalk_jax.core import checkpoint  # noqa: E402


def fake_state(params_millions: float) -> dict:
  """params + Adam mu/nu + EMA, like a TrainState of that many parameters (4 copies, f32)."""
  n_layers = 50
  per_layer = int(params_millions * 1e6 / n_layers)
  width = int(np.sqrt(per_layer))
  key = jax.random.PRNGKey(0)
  params = {f"layer_{i}": jax.random.normal(jax.random.fold_in(key, i), (width, width))
            for i in range(n_layers)}
  zeros = jax.tree.map(jnp.zeros_like, params)
  return {"params": params, "mu": zeros, "nu": zeros, "ema": params, "step": jnp.array(1)}


def timed_save(state, async_save: bool, step: int = 1):
  config = ml_collections.ConfigDict(dict(stage="bench", model=dict(size=1)))
  with tempfile.TemporaryDirectory() as workdir:
    manager = checkpoint.make_manager(workdir, keep=2, async_save=async_save)
    start = time.perf_counter()
    checkpoint.save(manager, step, state, None, config, force=True)
    blocking = time.perf_counter() - start
    manager.wait_until_finished()
    total = time.perf_counter() - start
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(workdir) for f in fs)
    manager.close()
  return blocking, total, size


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--params_millions", type=float, default=100.0)
  args = parser.parse_args()
  state = fake_state(args.params_millions)
  jax.block_until_ready(state)
  n = sum(x.size for x in jax.tree.leaves(state["params"]))
  print(f"{n / 1e6:.1f}M parameters; state (params, Adam mu/nu, EMA) "
        f"{sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20:.0f} MiB")
  rows = []
  for mode in ("sync", "async", "async"):
    blocking, total, size = timed_save(state, mode == "async")
    rows.append([mode, blocking, total - blocking, total, size / 2**20, blocking / total])
  print_table(rows, ["mode", "blocking s", "background s", "total s", "MiB on disk",
                     "blocking share"])


if __name__ == "__main__":
  main()
