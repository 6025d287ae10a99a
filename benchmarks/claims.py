"""The paper's three claims checked on the synthetic set's exact ground truth, in one table.

  python benchmarks/claims.py --run outputs/chain --data data --out /tmp/claims
  python benchmarks/claims.py --table /tmp/claims/table1_cross.json     # re-read a finished eval
  python benchmarks/claims.py --swap_table /tmp/table_iv.json            # C3 from a Table IV run

C2 (the latent-space pipeline beats the pixel cascades): `swaptalk eval --setting cross` with the
cascade rows (evaluators/cascades.py: Swap->Sync and Sync->Swap, stage 2 re-detecting the faces of
stage 1's RGB video or keeping the target's face track) on every held-out test clip, through the
one inference path. For each exact-ground-truth metric (SSIM and L1 to the true swap-and-resync
frames, mouth-opening correlation with the truth, dlib ID retrieve) it prints every method's mean
with its 95 % bootstrap interval over clips, and the PAIRED difference chain - cascade (the same
clips resampled for both) with its interval and a verdict: 'chain better' / 'cascade better' when
the interval excludes 0, else 'not resolved'. Stage 2's face coverage is printed too: a
re-detected cascade whose second stage found few faces mostly passes stage 1's frames through.

C3 (the identity losses help unseen identities): from the JSON of a Table IV run
(`benchmarks/swap.py --identity_kind trained --json FILE`, benchmarks/claims_c3.py): each swap row
trained with identity losses against the same transformer trained on L_proxy alone, paired over
the held-out target clips (dlib and identity-net retrieval, SSIM/L1/landmarks to the exact truth).

C1 (16x beats 8x compression for swap and sync; benchmarks/claims_c1.py): `--c1 LESS MORE`, two
chains from the same recipe and budget differing only in the VQGAN's compression (the quickstart
run as is, micro: 16x16 tokens at 32 px, and with SWAPTALK_VQGAN=micro_8x8: 8x8 tokens), each a
chain folder (evaluated here, cross-driven without cascades, on the same clips) or the
table1_cross.json of a finished eval; the paired difference more - less over clips per metric.

  SWAPTALK_OUT=outputs_8x8 SWAPTALK_VQGAN=micro_8x8 bash tools/quickstart.sh
  python benchmarks/claims.py --c1 outputs/chain outputs_8x8/chain --data data --out /tmp/c1 \
      --max_frames 25 --no_c2

A claim whose input is not given is printed as "not run" with what it needs.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from benchmarks import claims_c1, claims_c3, compare_chains  # noqa: E402
from swaptalk_jax.errors import UserError  # noqa: E402
from swaptalk_jax.evaluators import cascades, table1  # noqa: E402
from swaptalk_jax.metrics import bootstrap  # noqa: E402

C2_METRICS = compare_chains.EXACT_GT_METRICS   # (column key, title, higher is better)
CHAIN = table1.ROWS["chain"]
NOT_RUN = {
    "C1": "not run in this invocation: needs two chains trained at the same budget on VQGANs of "
          "two compressions, given as --c1 LESS MORE (e.g. the quickstart's outputs/chain and a "
          "SWAPTALK_VQGAN=micro_8x8 quickstart run's chain)",
    "C2": "not run in this invocation: give --run/--data/--out (or --table FILE of a finished "
          "eval)",
    "C3": "not run in this invocation: needs the JSON of a Table IV run with and without the "
          "identity losses (benchmarks/swap.py --identity_kind trained --identity_workdir DIR "
          "--json FILE), given as --swap_table FILE",
}


def _fmt(x: float) -> str:
  return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def _interval(mean: float, low: float, high: float) -> str:
  return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def paired_difference(chain: dict, other: dict, seed: int, resamples: int):
  """chain - other over their common clips (per-clip values), percentile bootstrap interval."""
  clips = sorted(chain)
  if sorted(other) != clips:
    raise UserError("the two rows were scored on different clips; cannot pair them")
  diff = np.array([chain[c] - other[c] for c in clips])
  return bootstrap.mean_interval(diff, resamples=resamples, seed=seed)


def verdict(diff, higher_is_better: bool) -> str:
  return claims_c3.verdict(diff, higher_is_better, "chain better", "cascade better")


def c2_table(doc: dict, seed: int = 0, resamples: int = 1000) -> str:
  """The C2 table (markdown) from a table1_cross.json written with the cascade rows."""
  rows = doc["rows"]
  cascade_rows = [spec[0] for spec in cascades.CASCADES.values() if spec[0] in rows]
  if CHAIN not in rows or not cascade_rows:
    raise UserError("the eval JSON has no chain or no cascade rows: run swaptalk eval with "
                    "cascades on (the default)")
  cases = doc["meta"]["cases"]
  lines = [f"### C2: latent-space chain vs pixel cascades (cross-driven, {len(cases)} held-out "
           f"clips x {cases[0]['frames']} frames, exact ground truth)", "",
           "| metric | method | mean [95% CI over clips] | chain - method, paired [95% CI] | "
           "verdict |", "|---|---|---|---|---|"]
  for key, title, higher in C2_METRICS:
    arrow = "↑" if higher else "↓"
    chain_cell = rows[CHAIN][key]
    if chain_cell["skipped"]:
      lines.append(f"| {title} {arrow} | all | skipped: {chain_cell['skipped']} | | |")
      continue
    lines.append(f"| {title} {arrow} | {CHAIN} | "
                 f"{_interval(chain_cell['value'], chain_cell['low'], chain_cell['high'])} | | |")
    for row in cascade_rows:
      cell = rows[row][key]
      diff = paired_difference(chain_cell["per_clip"], cell["per_clip"], seed, resamples)
      lines.append(f"| | {row} | {_interval(cell['value'], cell['low'], cell['high'])} | "
                   f"{_interval(diff.value, diff.low, diff.high)} | {verdict(diff, higher)} |")
  lines += ["", "Stage-2 face coverage of each cascade (frames in which its second stage found "
            "or was given a face / frames), summed over clips:", ""]
  total = sum(c["frames"] for c in cases)
  for key, (title, _, _) in cascades.CASCADES.items():
    counts = [c.get(f"{key}_face_frames") for c in cases]
    if None in counts:
      continue
    stage2 = sum(c[1] for c in counts)
    lines.append(f"- {title}: {stage2}/{total} ({100.0 * stage2 / total:.0f} %)")
  return "\n".join(lines) + "\n"


def report(doc: dict | None, seed: int, resamples: int, swap_doc: dict | None = None,
           c1: tuple | None = None) -> str:
  """C1 from two chains' eval JSONs (less, more, labels), C2 from an eval JSON with cascades, C3
  from a Table IV JSON (each may be None: 'not run')."""
  out = ["## The paper's claims on the synthetic set", ""]
  if c1 is not None:
    out.append(claims_c1.c1_table(*c1, seed=seed, resamples=resamples))
  if doc is not None:
    out.append(c2_table(doc, seed, resamples))
  if swap_doc is not None:
    out.append(claims_c3.c3_table(swap_doc, seed, resamples))
  given = {"C1": c1, "C2": doc, "C3": swap_doc}
  for claim, reason in NOT_RUN.items():
    if given[claim] is None:
      out.append(f"### {claim}: {reason}\n")
  return "\n".join(out)


def c1_inputs(args) -> tuple:
  """(less doc, more doc, labels) for --c1: each a chain folder (evaluated into --out/c1_less,
  c1_more) or a finished eval's table1_cross.json."""
  docs, labels = [], []
  for which, path in zip(("less", "more"), args.c1):
    docs.append(compare_chains.eval_or_read(args, path, f"c1_{which}", "--c1"))
    labels.append(f"{path} ({claims_c1.compression_label(path)})" if os.path.isdir(path) else path)
  return docs[0], docs[1], tuple(labels)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", help="a folder holding vqgan/, swap/, lipsync/ (the quickstart's "
                      "outputs/chain)")
  parser.add_argument("--table", help="a finished eval's table1_cross.json (no generation)")
  parser.add_argument("--swap_table", help="benchmarks/swap.py --json output (claim C3)")
  parser.add_argument("--c1", nargs=2, metavar=("LESS", "MORE"),
                      help="claim C1: the less and the more compressed chain (folders holding "
                      "vqgan/ swap/ lipsync/, or finished evals' table1_cross.json)")
  parser.add_argument("--no_c2", action="store_true", help="skip C2 (its eval with cascades)")
  compare_chains.add_eval_flags(parser)
  args = parser.parse_args()
  start = time.perf_counter()
  try:
    doc = swap_doc = c1 = None
    if args.swap_table:
      swap_doc = compare_chains.read_json(args.swap_table, "--swap_table")
    if args.c1:
      c1 = c1_inputs(args)
    if args.table:
      doc = compare_chains.read_json(args.table, "--table")
    elif not args.no_c2 and (args.run or not (swap_doc or c1)):
      if not (args.run and args.data and args.out):
        raise UserError("give --run, --data and --out (or --table FILE of a finished eval), "
                        "and/or --swap_table FILE, and/or --c1 LESS MORE")
      doc = compare_chains.cross_eval(args, args.run, args.out, cascades=True)
    if doc is not None and doc.get("setting") != "cross":
      raise UserError(f"C2 is measured cross-driven; {args.table} is {doc.get('setting')!r}")
    print(report(doc, args.seed, args.resamples, swap_doc, c1))
  except UserError as e:
    sys.exit(f"claims: error: {e}")
  print(f"claims: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
