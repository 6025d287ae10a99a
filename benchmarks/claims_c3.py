"""Claim C3 (the identity losses help unseen identities) from a Table IV run's JSON.

`benchmarks/swap.py --identity_kind trained|arcface --json FILE` trains the tiny Table IV rows on one
VQGAN for the same steps (same seed, init and batch order) and writes, per row, every figure's
mean over the held-out cross-identity pairs and its mean per target clip. C3 compares each row with
identity losses against the row trained on L_proxy alone: for each figure (dlib ID retrieval,
independent of the identity net the losses train through; retrieval with that net; SSIM, L1 and
landmark distance to the exact ground-truth swap) the paired difference row - L_proxy only over the
same target clips, with a percentile bootstrap interval over clips, and a verdict that names the
side the interval favours ('not resolved' when it spans 0). Whatever the direction, it is printed.
"""
import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.metrics import bootstrap

CONTROL = "transformer, L_proxy only"
WITH_LOSSES = ("transformer", "transformer w/o L_id_res", "transformer w/o L_id_src")
# (key, title, higher is better, scale for printing: retrieval as %)
METRICS = (("id_top1", "ID retrieve % (dlib)", True, 100.0),
           ("id_top1_net", "ID retrieve % (trained id net)", True, 100.0),
           ("ssim", "SSIM to exact GT", True, 1.0),
           ("l1", "L1 to exact GT", False, 1.0),
           ("landmarks", "landmark dist. (px@256)", False, 1.0))


def _fmt(x: float) -> str:
  return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def _cell(interval, scale: float) -> str:
  return (f"{_fmt(interval.value * scale)} [{_fmt(interval.low * scale)}, "
          f"{_fmt(interval.high * scale)}]")


def paired(row: dict, control: dict, seed: int, resamples: int):
  """(row's interval, control's interval, row - control paired interval) over the common clips."""
  clips = sorted(control)
  if sorted(row) != clips:
    raise UserError("the Table IV rows were scored on different target clips; cannot pair them")
  a = np.array([row[c] for c in clips])
  b = np.array([control[c] for c in clips])
  return (bootstrap.mean_interval(a, resamples=resamples, seed=seed),
          bootstrap.mean_interval(b, resamples=resamples, seed=seed),
          bootstrap.mean_interval(a - b, resamples=resamples, seed=seed))


def verdict(diff, higher_is_better: bool, ahead: str = "identity losses better",
            behind: str = "L_proxy only better") -> str:
  """The reading of a paired difference's interval (first row minus the other): which side is
  better when the interval excludes 0 (claims.py's C2 passes its own labels)."""
  if diff.low > 0 or diff.high < 0:
    return ahead if (diff.value > 0) == higher_is_better else behind
  return "not resolved (interval spans 0)"


def c3_table(doc: dict, seed: int = 0, resamples: int = 1000) -> str:
  """The C3 table (markdown) from benchmarks/swap.py's --json."""
  rows = doc.get("rows", {})
  if CONTROL not in rows:
    raise UserError(f"the Table IV JSON has no {CONTROL!r} row: run benchmarks/swap.py with "
                    "--identity_kind trained (or arcface)")
  compared = [name for name in WITH_LOSSES if name in rows]
  if not compared:
    raise UserError("the Table IV JSON has no row trained with identity losses")
  meta = doc.get("meta", {})
  control = rows[CONTROL]["per_clip"]
  clips = len(control["ssim"])
  lines = [f"### C3: identity losses on vs off on unseen identities (swap stage, Table IV rows, "
           f"{meta.get('steps', '?')} steps each, {clips} held-out target clips x "
           f"{meta.get('frames_per_clip', '?')} frames, exact ground truth)", "",
           f"Identity net: {meta.get('identity_kind', '?')} ({meta.get('identity_workdir') or '-'}),"
           f" loss weight {meta.get('id_weight', '?')}; chance of ID retrieve "
           f"{100 * meta.get('chance', {}).get('id_top1', float('nan')):.1f} %, the exact swap "
           f"retrieved: dlib {100 * meta.get('ground_truth', {}).get('id_top1', float('nan')):.1f}"
           f" %, net {100 * meta.get('ground_truth', {}).get('id_top1_net', float('nan')):.1f} %.",
           "", "| metric | row | mean [95% CI over clips] | row - L_proxy only, paired [95% CI] | "
           "verdict |", "|---|---|---|---|---|"]
  for key, title, higher, scale in METRICS:
    arrow = "↑" if higher else "↓"
    if key not in control:
      lines.append(f"| {title} {arrow} | all | not measured in this run | | |")
      continue
    first = True
    for name in compared:
      row_i, control_i, diff = paired(rows[name]["per_clip"][key], control[key], seed, resamples)
      if first:
        lines.append(f"| {title} {arrow} | {CONTROL} | {_cell(control_i, scale)} | | |")
        first = False
      lines.append(f"| | {name} | {_cell(row_i, scale)} | {_cell(diff, scale)} | "
                   f"{verdict(diff, higher)} |")
  return "\n".join(lines) + "\n"
