"""Claim C1 (16x beats 8x VQGAN compression for swap and sync) from two chains' cross-driven evals.

The two chains come from one recipe and differ in stage 0's compression (and, for a pair at equal
wall-clock, in stage 0's steps: each label names them): e.g. the quickstart's
(`tools/quickstart.sh`) on `configs/vqgan.py:micro_32x32` (f2 at 64 px: 32x32 tokens) and the
same script with SWAPTALK_VQGAN=micro_f4 (f4: 16x16 tokens), the paper's 8x -> 16x step at CPU
size. Each is scored by `swaptalk eval --setting cross` on the same held-out clips. For each
exact-ground-truth metric (SSIM and L1 to the true swap-and-resync frames: swap and sync together;
mouth-opening correlation with the truth: sync; dlib ID retrieve: swap) the table gives both chains'
means and the PAIRED difference more - less compressed over the same clips with its bootstrap
interval and a verdict naming the side the interval favours. Whatever the direction, it is printed.
"""
import json
import pathlib

from benchmarks import compare_chains
from swaptalk_jax.core import checkpoint
from swaptalk_jax.errors import UserError

NAMES = ("less compressed", "more compressed")


def compression_label(run: str) -> str:
  """'micro_8x8: f4, 32 px -> 8x8 tokens, 1000 steps' from the chain's stage-0 (vqgan/) stored
  config and its latest checkpoint (the steps say whether a pair had equal steps or equal time)."""
  vqgan_step = checkpoint.step_dir(str(pathlib.Path(run) / "vqgan"))
  config_file = vqgan_step / "config" / "metadata"
  try:
    config = json.loads(config_file.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{config_file}: no readable VQGAN config: {e}") from None
  factor = 2 ** (len(config["model"]["ch_mult"]) - 1)
  size = config["data"]["image_size"]
  grid = size // factor
  return (f"{config.get('variant', '?')}: f{factor}, {size} px -> {grid}x{grid} tokens, "
          f"{vqgan_step.name} steps")


def c1_table(less: dict, more: dict, labels: tuple[str, str], seed: int = 0,
             resamples: int = 1000) -> str:
  """The C1 table (markdown) from the two chains' table1_cross.json: `less` the less compressed
  chain (the paper's 8x), `more` the more compressed one (16x); `labels` say which runs they are."""
  table = compare_chains.paired_table(less, more, NAMES, "C1: more vs less VQGAN compression",
                                      seed, resamples)
  heading, rows = table.split("\n\n", 1)
  return (f"{heading}\n\nless compressed (8x analogue): {labels[0]}; more compressed (16x "
          f"analogue): {labels[1]}\n\n{rows}")
