"""Identity preservation of a trained VQGAN's reconstructions (metrics/identity_preservation.py,
dlib's face recogniser), on a prepared synthetic dataset: training identities, the unseen test split,
and optionally more unseen identities rendered with the dataset's seed and resolution (then
decoded at the model's size like the dataset's records, so a 32 px model reads a 64 px set).

  python benchmarks/vqgan_identity.py --workdir RUN --data DATA_DIR/synthetic \
      [--config VARIANT] [--frames_per_clip 6] [--extra_unseen 10] [--step N] [--skip_train_ids]

Rows per identity set: the VQGAN, the mean image of the set (a reconstruction that keeps nothing of
the person) and another identity's frame (a wrong identity), all scored against the same originals.
Retrieval never uses a gallery frame of the query's own clip; `orig top1` is originals against
originals (the upper bound), `chance` a random gallery pick. Distances are dlib descriptor
distances; `ratio` = recon distance / mean distance between different identities.
"""
import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from configs import vqgan as vqgan_config  # noqa: E402
from swaptalk_jax.core import checkpoint  # noqa: E402
from swaptalk_jax.data import dataset, encode_tokens, records  # noqa: E402
from swaptalk_jax.metrics import identity_preservation as idp  # noqa: E402
from swaptalk_jax.models.vqgan import vqgan_from_config  # noqa: E402

COLUMNS = ("set", "reconstruction", "images", "ids", "recon top1", "orig top1", "chance",
           "recon dist", "same-id dist", "diff-id dist", "ratio", "PSNR dB")


def rendered_frames(first_identity: int, count: int, params: dict, frames_per_clip: int,
                    size: int, jpeg_quality: int = 95):
  """Frames of synthetic identities [first, first + count) never in the dataset: 2 clips each,
  rendered with the dataset's seed, resolution and clip length, then JPEG-coded (prepare's default
  quality) and decoded at `size` px the way the training pipeline reads the dataset's records."""
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  ids = list(range(first_identity, first_identity + count))
  images, labels, groups = [], [], []
  for identity in ids:
    for index in range(2):
      clip = synthetic.make_clip(identity, index, params["seed"], params["seconds"],
                                 params["resolution"], partners=ids)
      for frame in clip.frames[dataset.evenly_spaced(len(clip.frames), frames_per_clip)]:
        images.append(records.decode_jpeg(records.encode_jpeg(frame, jpeg_quality),
                                          f"identity {identity} clip {index}", size))
        labels.append(clip.identity)
        groups.append(clip.clip_id)
  return np.stack(images), np.array(labels), np.array(groups)


def unseen_rendered_frames(dataset_dir: str, count: int, frames_per_clip: int, size: int):
  """rendered_frames for `count` identities after the dataset's last one (its metadata's params)."""
  params_json = json.loads((pathlib.Path(dataset_dir) / "metadata.json").read_text()).get(
      "params", {})
  missing = [k for k in ("identities", "seed", "seconds", "resolution") if k not in params_json]
  if missing:
    raise ValueError(f"{dataset_dir}: extra unseen identities need a synthetic dataset (metadata "
                     f"params lack {missing})")
  return rendered_frames(params_json["identities"], count, params_json, frames_per_clip, size)


def reconstruct_fn(config, params):
  """uint8 frames -> float32 reconstructions in [-1, 1] (clipped), with the checkpoint's VQGAN."""
  model = vqgan_from_config(config.model)
  encode_tokens.check_params_match(model, params, int(config.data.image_size))
  apply = jax.jit(lambda p, x: model.apply({"params": p}, x)[0])
  params = jax.device_put(params)

  def run(frames: np.ndarray, batch: int = 16) -> np.ndarray:
    x = frames.astype(np.float32) / 127.5 - 1.0
    out = [np.asarray(apply(params, x[s:s + batch])) for s in range(0, len(x), batch)]
    return np.clip(np.concatenate(out), -1.0, 1.0)
  return run


def psnr_db(originals: np.ndarray, reconstructions: np.ndarray) -> float:
  """Mean per-image PSNR (dB) of uint8 images."""
  mse = np.mean((originals.astype(np.float64) - reconstructions.astype(np.float64)) ** 2,
                axis=(1, 2, 3))
  return float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))))


def other_identity_frames(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Each image replaced by the image at the same position among the next identity's images."""
  names = sorted(set(labels.tolist()))
  out = np.empty_like(images)
  for k, name in enumerate(names):
    mine = np.flatnonzero(labels == name)
    theirs = np.flatnonzero(labels == names[(k + 1) % len(names)])
    out[mine] = images[theirs[np.arange(len(mine)) % len(theirs)]]
  return out


def rows_for(set_name: str, images, labels, groups, reconstruct) -> list[list]:
  recon = idp.to_uint8(reconstruct(images))
  mean_image = np.broadcast_to(images.mean(0).round().astype(np.uint8), images.shape)
  rows = []
  for name, candidate in (("vqgan", recon), ("mean image", mean_image),
                          ("other identity", other_identity_frames(images, labels))):
    f = idp.identity_preservation(images, candidate, labels, groups)
    rows.append([set_name, name, f["num_images"], f["num_identities"], f"{f['recon_top1']:.2f}",
                 f"{f['original_top1']:.2f}", f"{f['chance_top1']:.2f}",
                 f"{f['recon_distance']:.3f}", f"{f['same_identity_distance']:.3f}",
                 f"{f['different_identity_distance']:.3f}", f"{f['recon_distance_ratio']:.2f}",
                 f"{psnr_db(images, candidate):.1f}"])
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="`swaptalk train` workdir (latest checkpoint)")
  parser.add_argument("--data", required=True, help="prepared dataset: DATA_DIR/synthetic[/1.0.0]")
  parser.add_argument("--config", default=None,
                      help="configs/vqgan.py variant (default: the run's stored config, overrides included)")
  parser.add_argument("--frames_per_clip", type=int, default=6)
  parser.add_argument("--extra_unseen", type=int, default=10,
                      help="also render this many identities beyond the dataset's (0: none)")
  parser.add_argument("--no_ema", action="store_true", help="raw params instead of the EMA")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  parser.add_argument("--skip_train_ids", action="store_true",
                      help="only the unseen sets (the training identities' rows take most of the time)")
  args = parser.parse_args()

  dataset_dir = str(encode_tokens.resolve_dataset_dir(args.data))
  params, step, run_config = checkpoint.load_params(args.workdir, ema=not args.no_ema, step=args.step)
  config = vqgan_config.get_config(args.config) if args.config else run_config
  reconstruct = reconstruct_fn(config, params)
  size = int(config.data.image_size)
  start = time.time()
  rows = []
  splits = (("train", "train ids"), ("test", "unseen (test split)"))
  for split, set_name in splits[1:] if args.skip_train_ids else splits:
    frames = dataset.labelled_frames(dataset_dir, split, args.frames_per_clip, size)
    rows += rows_for(set_name, *frames, reconstruct)
  if args.extra_unseen:
    rows += rows_for(f"unseen (+{args.extra_unseen} rendered)",
                     *unseen_rendered_frames(dataset_dir, args.extra_unseen, args.frames_per_clip,
                                             size), reconstruct)
  print(f"VQGAN {config.get('variant')} step {step} ({'raw' if args.no_ema else 'EMA'} params) from "
        f"{args.workdir}, data {dataset_dir}, {size} px, {args.frames_per_clip} frames per clip; "
        f"dlib face box {idp.SYNTHETIC_FACE_BOX}; {time.time() - start:.0f} s (CPU shared with "
        "other jobs)")
  common.print_table(rows, COLUMNS)


if __name__ == "__main__":
  main()
