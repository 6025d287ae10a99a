"""Two trained chains scored on the same held-out clips, paired: which one is nearer the truth.

  python benchmarks/compare_chains.py outputs/chain outputs_long/chain --data data --out /tmp/cmp \
      --max_frames 25

Each chain (a folder holding vqgan/ swap/ lipsync/, e.g. the quickstart's and the same script with
SWAPTALK_RECIPE=long) is run through `swaptalk eval --setting cross` without cascades on the same
clips (or given as a finished eval's table1_cross.json). For each exact-ground-truth metric (SSIM
and L1 to the true swap-and-resync frames, mouth-opening correlation with the truth, dlib ID
retrieve) the table gives both chains' means and the PAIRED difference B - A over the same clips
with a bootstrap interval and a verdict naming the side the interval favours. Claim C1
(benchmarks/claims_c1.py) is this comparison between two compressions.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from benchmarks import claims_c3  # noqa: E402
from swaptalk_jax.errors import UserError  # noqa: E402
from swaptalk_jax.evaluators import table1  # noqa: E402
from swaptalk_jax.metrics import bootstrap  # noqa: E402

# (column key, title, higher is better): the exact-ground-truth columns of swaptalk eval
EXACT_GT_METRICS = (("gt_ssim", "SSIM to exact GT", True), ("gt_l1", "L1 to exact GT", False),
                    ("mouth_corr", "mouth corr. with GT", True),
                    ("id_retrieve", "ID retrieve %", True))
CHAIN = table1.ROWS["chain"]


def _cases(doc: dict) -> list:
  return [(c["target_clip"], c["frames"]) for c in doc["meta"]["cases"]]


def paired_table(a: dict, b: dict, names: tuple[str, str], heading: str, seed: int = 0,
                 resamples: int = 1000) -> str:
  """Markdown: both chains' exact-GT means and the paired difference b - a, from their
  table1_cross.json documents; `names` = (short name of a, of b) for the columns and verdicts."""
  for doc, name in ((a, names[0]), (b, names[1])):
    if doc.get("setting") != "cross" or CHAIN not in doc.get("rows", {}):
      raise UserError(f"the comparison needs cross-driven swaptalk evals with the chain row; "
                      f"{name}'s is not")
  if _cases(a) != _cases(b):
    raise UserError("the two chains were scored on different clips or frame counts; run both "
                    "evals with the same --max_clips/--max_frames/--seed")
  cases = a["meta"]["cases"]
  lines = [f"### {heading} (cross-driven, {len(cases)} held-out clips x {cases[0]['frames']} "
           "frames, exact ground truth)", "",
           f"| metric | {names[0]} [95% CI] | {names[1]} [95% CI] | {names[1]} - {names[0]}, "
           "paired [95% CI] | verdict |", "|---|---|---|---|---|"]
  for key, title, higher in EXACT_GT_METRICS:
    arrow = "↑" if higher else "↓"
    cell_a, cell_b = a["rows"][CHAIN][key], b["rows"][CHAIN][key]
    if cell_a["skipped"] or cell_b["skipped"]:
      lines.append(f"| {title} {arrow} | skipped: {cell_a['skipped'] or cell_b['skipped']} | | | |")
      continue
    clips = sorted(cell_a["per_clip"])
    if sorted(cell_b["per_clip"]) != clips:
      raise UserError(f"{key}: the two chains' per-clip values cover different clips")
    x = np.array([cell_a["per_clip"][c] for c in clips], dtype=np.float64)
    y = np.array([cell_b["per_clip"][c] for c in clips], dtype=np.float64)
    ivs = [bootstrap.mean_interval(v, resamples=resamples, seed=seed) for v in (x, y, y - x)]
    word = claims_c3.verdict(ivs[2], higher, f"{names[1]} better", f"{names[0]} better")
    cells = " | ".join(claims_c3._cell(iv, 1.0) for iv in ivs)   # pylint: disable=protected-access
    lines.append(f"| {title} {arrow} | {cells} | {word} |")
  return "\n".join(lines) + "\n"


def read_json(path: str, flag: str) -> dict:
  if not os.path.isfile(path):
    raise UserError(f"{flag} {path} does not exist")
  try:
    return json.loads(open(path).read())
  except json.JSONDecodeError as e:
    raise UserError(f"{flag} {path} is not JSON: {e}") from None


def cross_eval(args, run: str, out: str, cascades: bool = False) -> dict:
  """swaptalk eval --setting cross of one chain folder (cascade rows on or off); its JSON."""
  options = table1.EvalOptions(setting="cross", max_clips=args.max_clips,
                               max_frames=args.max_frames, seed=args.seed,
                               resamples=args.resamples, cascades=cascades)
  result = table1.evaluate_run(run, None, args.data, out, options,
                               log=lambda line: print(f"eval: {line}", flush=True))
  print(result.paths["md"].read_text())
  return json.loads(result.paths["json"].read_text())


def eval_or_read(args, path: str, out_name: str, flag: str) -> dict:
  """A chain folder evaluated into --out/OUT_NAME, or a finished eval's table1_cross.json."""
  if os.path.isdir(path):
    if not (args.data and args.out):
      raise UserError(f"{flag} with chain folders needs --data and --out")
    return cross_eval(args, path, os.path.join(args.out, out_name))
  return read_json(path, flag)


def add_eval_flags(parser: argparse.ArgumentParser):
  parser.add_argument("--data", help="the synthetic dataset (the quickstart's data)")
  parser.add_argument("--out", help="folder for each chain's eval (cases and table1_cross.*)")
  parser.add_argument("--max_clips", type=int, default=0, help="0: every held-out clip")
  parser.add_argument("--max_frames", type=int, default=0, help="0: whole clips")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--resamples", type=int, default=1000)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("a", help="chain folder (vqgan/ swap/ lipsync/) or table1_cross.json")
  parser.add_argument("b", help="the other chain, compared as b - a")
  parser.add_argument("--names", nargs=2, default=None, metavar=("A", "B"),
                      help="short names for the columns (default: the two paths)")
  add_eval_flags(parser)
  args = parser.parse_args()
  start = time.perf_counter()
  try:
    docs = [eval_or_read(args, path, name, "compare_chains")
            for path, name in ((args.a, "a"), (args.b, "b"))]
    names = tuple(args.names or (args.a, args.b))
    print(paired_table(*docs, names, f"{names[1]} vs {names[0]}", args.seed, args.resamples))
  except UserError as e:
    sys.exit(f"compare_chains: error: {e}")
  print(f"compare_chains: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
