"""Train-step time and MFU of the core on a representative conv+attention model (the toy stage at
`configs/toy.py:bench`), f32 and bf16, with and without gradient accumulation, against this
machine's measured f32 matmul peak. FLOPs come from the compiled step's cost analysis of the accumulation-free step (XLA counts a
loop body once, so the accumulated step does the same work as that one).

  python benchmarks/core_step.py
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from benchmarks.common import measure_matmul_peak, print_table, time_fn_stats  # noqa: E402
from configs import toy  # noqa: E402
from swaptalk_jax.core.trainer import global_batch  # noqa: E402
from swaptalk_jax.trainers.registry import build_trainer  # noqa: E402


def step_figures(compute_dtype: str, grad_accum: int):
  config = toy.get_config("bench")
  config.train.compute_dtype = compute_dtype
  config.train.grad_accum_steps = grad_accum
  config.train.eval_every = 0
  with tempfile.TemporaryDirectory() as workdir:
    trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
    with trainer.scope():
      state = trainer.restore_or_init()
      batch = global_batch(next(trainer.train_iter), trainer.batch_sharding)
      compiled = trainer.step_fn.lower(state, batch, trainer.frozen).compile()
      flops = compiled.cost_analysis()
      flops = (flops[0] if isinstance(flops, list) else flops).get("flops", float("nan"))
      holder = {"state": state}

      def one_step():
        holder["state"], metrics = compiled(holder["state"], batch, trainer.frozen)
        return metrics

      best, median, worst = time_fn_stats(one_step, warmup=2, iters=7)
  return flops, best, median, worst, config.data.batch_size


def main():
  peak = measure_matmul_peak()
  print(f"jax {jax.__version__}, {jax.default_backend()}, f32 matmul peak {peak:.1f} GFLOP/s")
  rows = []
  flops_per_dtype = {}
  for dtype, accum in (("float32", 1), ("float32", 4), ("bfloat16", 1)):
    flops, best, median, worst, batch = step_figures(dtype, accum)
    flops = flops_per_dtype.setdefault(dtype, flops)
    gflops = flops / best / 1e9
    rows.append([dtype, accum, batch, flops / 1e9, best * 1e3, median * 1e3, worst * 1e3,
                 gflops, gflops / peak, batch / best])
  print_table(rows, ["compute", "accum", "batch", "GFLOP/step", "best ms", "median ms", "worst ms",
                     "GFLOP/s", "MFU (f32 peak)", "examples/s"])


if __name__ == "__main__":
  main()
