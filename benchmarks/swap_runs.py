"""Trained swap runs scored side by side on held-out exact-truth pairs (no training here).

  python benchmarks/swap_runs.py RUN[@STEP] [RUN[@STEP] ...] --data DIR [--json OUT]

Each RUN is a `swaptalk train` workdir of configs/swap.py (its latest checkpoint, or STEP's; EMA
params; the frozen VQGAN its config names). Every run is scored by evaluators/swap_pairs.py on the
test split of DIR (which may hold more held-out identities than the data it was trained on) next
to the trivial swaps of the first run's VQGAN. The question this answers: does a swap beat copying
the source photo's tokens D(S_VQ), and does a longer or different run beat another? So besides
each row's means it prints, paired over the target clips with a bootstrap interval, swap - D(S_VQ)
of each run (its own VQGAN's) and, for two or more runs, each run - the first.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks import claims  # noqa: E402
from benchmarks import swap as swap_bench  # noqa: E402
from swaptalk_jax.core import checkpoint  # noqa: E402
from swaptalk_jax.core.task import FROZEN  # noqa: E402
from swaptalk_jax.data import pipelines  # noqa: E402
from swaptalk_jax.errors import UserError  # noqa: E402
from swaptalk_jax.evaluators import swap_pairs  # noqa: E402
from swaptalk_jax.trainers import swap as swap_trainer  # noqa: E402

METRICS = (("l1", "L1", False), ("l1_lower", "L1 lower", False), ("ssim", "SSIM", True),
           ("id_top1", "ID top-1 (dlib)", True), ("landmarks", "landmarks (px@256)", False))
BASELINES = ("no_swap", "paste_source", "vqgan_source", "vqgan_gt")


def run_and_step(spec: str) -> tuple[str, int | None]:
  """'RUN@1000' -> (RUN, 1000); 'RUN' -> (RUN, None): the latest checkpoint."""
  workdir, at, step = spec.rpartition("@")
  if at and step.isdigit():
    return workdir, int(step)
  return spec, None


def score_run(spec: str, data: str, frames_per_clip: int) -> dict:
  """swap_pair_values of one trained run (RUN or RUN@STEP) on DATA's test split, plus its step."""
  workdir, step = run_and_step(spec)
  params, step, config = checkpoint.load_params(workdir, group="swap", ema=True, step=step)
  if config.get("stage") != "swap":
    raise UserError(f"{workdir} is a {config.get('stage')!r} run, not a swap run")
  task = swap_trainer.make_task(config)
  full = {"swap": params, FROZEN: task.frozen_params()}
  dataset = pipelines.dataset_path(dict(name="synthetic", data_dir=data))
  result = swap_pairs.swap_pair_values(task, full, dataset, "test", int(config.data.image_size),
                                       frames_per_clip=frames_per_clip)
  result["step"] = step
  return result


def paired(a: dict, b: dict, key: str, clips: np.ndarray, resamples: int) -> str:
  """a - b of one metric over the same pairs, averaged per target clip (benchmarks/swap.py's
  per_clip), with claims.paired_difference's bootstrap interval."""
  interval = claims.paired_difference(swap_bench.per_clip({key: a[key]}, clips)[key],
                                      swap_bench.per_clip({key: b[key]}, clips)[key], 0, resamples)
  return f"{interval.value:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]"


def report(names: list[str], results: list[dict], resamples: int = 1000) -> str:
  """The markdown tables: every run's swap and the baselines, then the paired differences."""
  clips = results[0]["target_clip"]
  for name, result in zip(names, results):
    if not np.array_equal(result["target_clip"], clips):
      raise UserError(f"{name} was scored on other pairs than {names[0]}: one --data for all")
  header = "| row | " + " | ".join(title for _, title, _ in METRICS) + " |"
  lines = [f"{len(np.unique(clips))} held-out target clips, {len(clips)} pairs; ID top-1 chance "
           f"{100 * results[0]['chance'].get('id_top1', float('nan')):.1f} %", "", header,
           "|---" * (len(METRICS) + 1) + "|"]

  def row(label, values):
    cells = [f"{np.mean(values[key]):.4f}" if key in values else "-" for key, _, _ in METRICS]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")

  for name, result in zip(names, results):
    row(f"{name} (step {result['step']})", result["values"]["swap"])
  for baseline in BASELINES:
    row(f"{baseline} (VQGAN of {names[0]})" if baseline.startswith("vqgan") else baseline,
        results[0]["values"][baseline])
  lines += ["", "Paired over the same pairs (per-clip means, 95 % bootstrap over clips); lower is "
            "better for L1 and landmarks, higher for SSIM and ID top-1:", "", header,
            "|---" * (len(METRICS) + 1) + "|"]
  comparisons = [(f"{n} - D(S_VQ)", r["values"]["swap"], r["values"]["vqgan_source"])
                 for n, r in zip(names, results)]
  comparisons += [(f"{n} - {names[0]}", r["values"]["swap"], results[0]["values"]["swap"])
                  for n, r in zip(names[1:], results[1:])]
  for label, a, b in comparisons:
    cells = [paired(a, b, key, clips, resamples) if key in a and key in b else "-"
             for key, _, _ in METRICS]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+", help="swaptalk train workdirs of configs/swap.py, each "
                      "optionally @STEP (default: its latest checkpoint)")
  parser.add_argument("--data", required=True, 
                      help="data_dir holding synthetic/ (its test split is scored)")
  parser.add_argument("--names", nargs="*", default=None, help="one label per run")
  parser.add_argument("--frames_per_clip", type=int, default=4)
  parser.add_argument("--resamples", type=int, default=1000)
  parser.add_argument("--json", default=None, help="write every run's per-pair values")
  args = parser.parse_args()
  names = args.names or [os.path.basename(os.path.normpath(r)) for r in args.runs]
  start = time.perf_counter()
  try:
    if len(names) != len(args.runs):
      raise UserError(f"--names gives {len(names)} labels for {len(args.runs)} runs")
    results = [score_run(run, args.data, args.frames_per_clip) for run in args.runs]
    print(report(names, results, args.resamples))
  except UserError as e:
    sys.exit(f"swap_runs: error: {e}")
  if args.json:
    doc = {name: {"step": r["step"], "target_clip": r["target_clip"].tolist(),
                  "values": {c: {k: v.tolist() for k, v in m.items()}
                             for c, m in r["values"].items()}}
           for name, r in zip(names, results)}
    with open(args.json, "w") as f:
      json.dump(doc, f)
  print(f"swap_runs: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
