"""A picture to compare VQGAN runs by eye: the same unseen test frames (top row) and each run's
reconstruction of them (one row per run, in the order given), upscaled for viewing.

  python benchmarks/vqgan_strip.py --data DATA_DIR/synthetic --out strip.png RUN [RUN ...] \
      [--frames 8] [--scale 2] [--step N]

Frames: one evenly spaced frame from each of the test split's clips (then a second, ...), decoded
at the first run's face size; every run must share it. Prints the row order and each row's PSNR.
"""
import argparse
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.vqgan_identity import psnr_db, reconstruct_fn  # noqa: E402
from swaptalk_jax.core import checkpoint  # noqa: E402
from swaptalk_jax.data import dataset, encode_tokens  # noqa: E402
from swaptalk_jax.errors import UserError  # noqa: E402


def unseen_frames(dataset_dir: str, count: int, size: int) -> np.ndarray:
  """`count` uint8 frames [count, size, size, 3] of the test split, spread over its clips."""
  frames = dataset.labelled_frames(dataset_dir, "test", 1, size)[0]
  per_clip = -(-count // len(frames))
  if per_clip > 1:
    frames = dataset.labelled_frames(dataset_dir, "test", per_clip, size)[0]
  # labelled_frames lists clip by clip: take frame k of every clip before frame k+1 of any
  order = np.argsort(np.arange(len(frames)) % per_clip, kind="stable")
  return frames[order][:count]


def strip(rows: list[np.ndarray], scale: int) -> np.ndarray:
  """uint8 rows [n, H, W, 3] -> one image, rows stacked, each frame upscaled by `scale`."""
  image = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
  return image.repeat(scale, axis=0).repeat(scale, axis=1)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("runs", nargs="+", help="`swaptalk train` VQGAN workdirs")
  parser.add_argument("--data", required=True, help="prepared dataset: DATA_DIR/synthetic[/1.0.0]")
  parser.add_argument("--out", required=True, help="PNG to write")
  parser.add_argument("--frames", type=int, default=8)
  parser.add_argument("--scale", type=int, default=2)
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  args = parser.parse_args()
  try:
    dataset_dir = str(encode_tokens.resolve_dataset_dir(args.data))
    loaded = [checkpoint.load_params(run, step=args.step) for run in args.runs]
    sizes = {int(config.data.image_size) for _, _, config in loaded}
    if len(sizes) != 1:
      raise UserError(f"runs differ in face size {sorted(sizes)}: compare runs of one size")
    frames = unseen_frames(dataset_dir, args.frames, sizes.pop())
    rows = [frames]
    print(f"row 0: originals ({len(frames)} test frames)")
    for i, (run, (params, step, config)) in enumerate(zip(args.runs, loaded), start=1):
      recon = reconstruct_fn(config, params)(frames)
      rows.append(((recon + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8))
      print(f"row {i}: {run} step {step}: PSNR {psnr_db(frames, rows[-1]):.2f} dB")
  except UserError as e:
    sys.exit(f"vqgan_strip: {e}")
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(strip(rows, args.scale)).save(out)
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
