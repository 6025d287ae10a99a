"""Shared helpers for benchmarks: CPU matmul peak, robust timing, plain tables, torch thread parity.

Other helpers share this machine's cores, so every timing is a median over several runs and the
callers interleave the systems they compare (load then hits both alike).
"""
import os
import statistics
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def cpu_threads() -> int:
  """Cores this process may run on: the size of XLA's CPU thread pool (it uses one per core)."""
  return len(os.sched_getaffinity(0))


def torch_threads_like_jax() -> int:
  """Gives torch the same intra-op thread count as XLA:CPU and returns it.

  XLA's CPU client sizes its Eigen pool to the cores this process may use; torch defaults to the
  physical core count and also keeps inter-op threads. Set both so neither side gets extra cores.
  Call before torch runs any op (set_num_interop_threads fails after the first parallel op).
  """
  import torch  # pylint: disable=g-import-not-at-top
  n = cpu_threads()
  torch.set_num_threads(n)
  try:
    torch.set_num_interop_threads(1)
  except RuntimeError:  # Already started; intra-op count is what matters for convs and matmuls.
    pass
  return n


def _block(out):
  """Waits for every array in `out` (jax or torch); returns `out`."""
  def wait(leaf):
    if hasattr(leaf, "block_until_ready"):
      leaf.block_until_ready()
    return leaf
  jax.tree_util.tree_map(wait, out)
  return out


def time_fn(fn: Callable, *args, warmup: int = 2, iters: int = 5) -> float:
  """Median wall seconds of `fn(*args)` over `iters` runs after `warmup` runs (results blocked on)."""
  return time_fn_stats(fn, *args, warmup=warmup, iters=iters)[1]


def time_fn_stats(fn: Callable, *args, warmup: int = 2, iters: int = 5):
  """(min, median, max) wall seconds of `fn(*args)`; for reporting the spread under shared load."""
  for _ in range(warmup):
    _block(fn(*args))
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    _block(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times), statistics.median(times), max(times)


def interleaved_times(fns: dict, warmup: int = 1, iters: int = 5) -> dict:
  """{name: [seconds per run]} for zero-arg callables run round-robin, so shared load hits all alike.

  Report min (best case, least disturbed by other processes) and the spread max/min.
  """
  for fn in fns.values():
    for _ in range(warmup):
      _block(fn())
  times = {name: [] for name in fns}
  for _ in range(iters):
    for name, fn in fns.items():
      start = time.perf_counter()
      _block(fn())
      times[name].append(time.perf_counter() - start)
  return times


def measure_matmul_peak(dtype=jnp.float32, n: int = 2048, repeats: int = 5) -> float:
  """Best GFLOP/s of an n x n x n jax matmul in `dtype` on the default device (a practical peak)."""
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.random.normal(key_a, (n, n), dtype)
  b = jax.random.normal(key_b, (n, n), dtype)
  matmul = jax.jit(jnp.matmul)
  _block(matmul(a, b))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    _block(matmul(a, b))
    best = min(best, time.perf_counter() - start)
  return 2.0 * n ** 3 / best / 1e9


def print_table(rows: Sequence[Sequence], columns: Sequence[str]) -> None:
  """Prints rows as a plain left-aligned text table; floats get 3 significant digits."""
  def fmt(value):
    if isinstance(value, (float, np.floating)):
      return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)
  cells = [[str(c) for c in columns]] + [[fmt(v) for v in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
  for i, row in enumerate(cells):
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if i == 0:
      print("  ".join("-" * width for width in widths))


if __name__ == "__main__":
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, {cpu_threads()} cpu threads")
  print_table([[str(jnp.dtype(d)), measure_matmul_peak(d)] for d in (jnp.float32, jnp.bfloat16)],
              ["dtype", "matmul GFLOP/s"])
