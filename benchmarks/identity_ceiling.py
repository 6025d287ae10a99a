"""How well dlib's recogniser tells the ORIGINAL synthetic frames apart at each model resolution:
the ceiling any VQGAN's reconstructions can reach, measured without a model.

  python benchmarks/identity_ceiling.py --data DATA_DIR/synthetic [--sizes 32,64] \
      [--frames_per_clip 6] [--extra_unseen 10]

For each size the frames are decoded as the training pipeline decodes them (dataset records resized
bicubic to that size), on the dataset's unseen test split and on `--extra_unseen` more identities
rendered beyond the dataset's (same seed and resolution, JPEG-coded and resized the same way).
Retrieval never uses a gallery frame of the query's own clip. Rows: originals against originals
(the ceiling), the set's mean image (keeps nothing of the person) and chance. If the originals
are already near chance at a size, no VQGAN at that size can show identity to dlib.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import vqgan_identity  # noqa: E402
from swaptalk_jax.data import dataset, encode_tokens  # noqa: E402
from swaptalk_jax.face import recognition as identity_lib  # noqa: E402
from swaptalk_jax.metrics import identity_preservation as idp  # noqa: E402

COLUMNS = ("set", "px", "images", "ids", "orig top1", "mean-image top1", "chance",
           "same-id dist", "diff-id dist", "same/diff")


def parse_sizes(text: str) -> list[int]:
  """'32,64' -> [32, 64]; a clear error for anything else."""
  try:
    sizes = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise SystemExit(f"--sizes: expected comma-separated integers, got {text!r}") from None
  if not sizes or any(s < 8 for s in sizes):
    raise SystemExit(f"--sizes: expected sizes >= 8 px, got {text!r}")
  return sizes


def ceiling_row(set_name: str, size: int, images, labels, groups) -> list:
  """One table row: originals retrieved among originals, the mean image's retrieval, chance."""
  other_group = groups[:, None] != groups[None, :]
  same = idp.check_retrievable(labels, labels, other_group)
  e_orig = idp.embed_crops(images)
  mean_image = np.broadcast_to(images.mean(0).round().astype(np.uint8), images.shape)
  e_mean = idp.embed_crops(mean_image[:1])
  top1, chance = idp.nearest_neighbour_top1(e_orig, e_orig, labels, labels, other_group)
  mean_top1, _ = idp.nearest_neighbour_top1(np.repeat(e_mean, len(images), 0), e_orig, labels,
                                            labels, other_group)
  between = identity_lib.distance(e_orig[:, None], e_orig[None, :])
  same_d = float(np.mean(between[same & other_group]))
  diff_d = float(np.mean(between[~same]))
  return [set_name, size, len(images), len(np.unique(labels)), f"{top1:.2f}", f"{mean_top1:.2f}",
          f"{chance:.2f}", f"{same_d:.3f}", f"{diff_d:.3f}", f"{same_d / diff_d:.2f}"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data", required=True, help="prepared dataset: DATA_DIR/synthetic[/1.0.0]")
  parser.add_argument("--sizes", default="32,64", help="comma-separated resolutions (px)")
  parser.add_argument("--frames_per_clip", type=int, default=6)
  parser.add_argument("--extra_unseen", type=int, default=10,
                      help="also render this many identities beyond the dataset's (0: none)")
  args = parser.parse_args()
  sizes = parse_sizes(args.sizes)
  dataset_dir = str(encode_tokens.resolve_dataset_dir(args.data))
  start = time.time()
  rows = []
  for size in sizes:
    frames = dataset.labelled_frames(dataset_dir, "test", args.frames_per_clip, size)
    rows.append(ceiling_row("unseen (test split)", size, *frames))
    if args.extra_unseen:
      frames = vqgan_identity.unseen_rendered_frames(dataset_dir, args.extra_unseen,
                                                     args.frames_per_clip, size)
      rows.append(ceiling_row(f"unseen (+{args.extra_unseen} rendered)", size, *frames))
  print(f"originals of {dataset_dir}, {args.frames_per_clip} frames per clip, dlib face box "
        f"{idp.SYNTHETIC_FACE_BOX}; {time.time() - start:.0f} s (CPU shared with other jobs)")
  common.print_table(rows, COLUMNS)


if __name__ == "__main__":
  main()
