"""Claim C1 (16x beats 8x VQGAN compression for swap and sync) from two chains' cross-driven evals.

The two chains come from one recipe and budget and differ only in stage 0's compression: the
quickstart's (`tools/quickstart.sh`) on `configs/vqgan.py:micro` (f2 at 32 px: 16x16 tokens) and the
same script with SWAPTALK_VQGAN=micro_8x8 (f4: 8x8 tokens), the paper's 8x -> 16x step at CPU size.
Each is scored by `swaptalk eval --setting cross` on the same held-out clips. For each
exact-ground-truth metric (SSIM and L1 to the true swap-and-resync frames: swap and sync together;
mouth-opening correlation with the truth: sync; dlib ID retrieve: swap) the table gives both chains'
means and the PAIRED difference more - less compressed over the same clips with its bootstrap
interval and a verdict naming the side the interval favours. Whatever the direction, it is printed.
"""
import json
import pathlib

import numpy as np

from benchmarks import claims_c3
from swaptalk_jax.core import checkpoint
from swaptalk_jax.errors import UserError
from swaptalk_jax.evaluators import table1
from swaptalk_jax.metrics import bootstrap

# (column key, title, higher is better): the exact-ground-truth columns of swaptalk eval
EXACT_GT_METRICS = (("gt_ssim", "SSIM to exact GT", True), ("gt_l1", "L1 to exact GT", False),
                    ("mouth_corr", "mouth corr. with GT", True),
                    ("id_retrieve", "ID retrieve %", True))
CHAIN = table1.ROWS["chain"]


def _interval(iv) -> str:
  return claims_c3._cell(iv, 1.0)   # pylint: disable=protected-access


def compression_label(run: str) -> str:
  """'micro_8x8: f4, 32 px -> 8x8 tokens' from the chain's stage-0 (vqgan/) stored config."""
  config_file = checkpoint.step_dir(str(pathlib.Path(run) / "vqgan")) / "config" / "metadata"
  try:
    config = json.loads(config_file.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{config_file}: no readable VQGAN config: {e}") from None
  factor = 2 ** (len(config["model"]["ch_mult"]) - 1)
  size = config["data"]["image_size"]
  return (f"{config.get('variant', '?')}: f{factor}, {size} px -> {size // factor}x{size // factor} "
          "tokens")


def _clips(doc: dict) -> list:
  return [(c["target_clip"], c["frames"]) for c in doc["meta"]["cases"]]


def c1_table(less: dict, more: dict, labels: tuple[str, str], seed: int = 0,
             resamples: int = 1000) -> str:
  """The C1 table (markdown) from the two chains' table1_cross.json: `less` the less compressed
  chain (the paper's 8x), `more` the more compressed one (16x)."""
  for doc, label in ((less, labels[0]), (more, labels[1])):
    if doc.get("setting") != "cross" or CHAIN not in doc.get("rows", {}):
      raise UserError(f"C1 needs a cross-driven swaptalk eval with the chain row; {label} is not")
  if _clips(less) != _clips(more):
    raise UserError("the two chains were scored on different clips or frame counts; run both "
                    "evals with the same --max_clips/--max_frames/--seed")
  cases = less["meta"]["cases"]
  lines = [f"### C1: more vs less VQGAN compression (cross-driven, {len(cases)} held-out clips x "
           f"{cases[0]['frames']} frames, exact ground truth)", "",
           f"less compressed (8x analogue): {labels[0]}; more compressed (16x analogue): "
           f"{labels[1]}", "",
           "| metric | less compressed [95% CI] | more compressed [95% CI] | more - less, paired "
           "[95% CI] | verdict |", "|---|---|---|---|---|"]
  for key, title, higher in EXACT_GT_METRICS:
    arrow = "↑" if higher else "↓"
    a, b = less["rows"][CHAIN][key], more["rows"][CHAIN][key]
    if a["skipped"] or b["skipped"]:
      lines.append(f"| {title} {arrow} | skipped: {a['skipped'] or b['skipped']} | | | |")
      continue
    clips = sorted(a["per_clip"])
    if sorted(b["per_clip"]) != clips:
      raise UserError(f"{key}: the two chains' per-clip values cover different clips")
    x = np.array([a["per_clip"][c] for c in clips], dtype=np.float64)
    y = np.array([b["per_clip"][c] for c in clips], dtype=np.float64)
    ivs = [bootstrap.mean_interval(v, resamples=resamples, seed=seed) for v in (x, y, y - x)]
    diff = ivs[2]
    word = claims_c3.verdict(diff, higher, "more compressed better", "less compressed better")
    lines.append(f"| {title} {arrow} | {_interval(ivs[0])} | {_interval(ivs[1])} | "
                 f"{_interval(diff)} | {word} |")
  return "\n".join(lines) + "\n"
