"""Which mouth-opening measure follows the synthetic renderer's TRUE openness at the chain's image
size? Candidate measures are run on the held-out clips' re-sync ground-truth frames (decoded at
--size px exactly as the training pipeline decodes them) and on the same frames through the frozen
VQGAN (the domain of every decoded lip-sync output), and correlated (Pearson over all held-out
frames, and per clip) with the renderer's exact openness of those frames (`resync_mouth_openness`).

  python benchmarks/mouth_opening_validation.py --data_dir=data --vqgan=outputs/chain/vqgan

Measures:
  darkness      mean of (0.35 - luminance)+ over the eval's mouth box (the old Table V proxy)
  darkness-ref  the same minus the clip's frame-0 darkness (the old proxy's reference subtraction)
  dlib-outer    dlib 68-point landmarks (fixed synthetic face box) on the frame upscaled (bicubic)
  dlib-inner    to 256 px: outer / inner lip gap over the interocular distance; inner lips is the
                eval's measure (metrics/mouth_frames.py), outer what the demo and `swaptalk eval`
                score with (data_prep/synthetic/demo.py, metrics/clip_metrics.py)
  probe         benchmarks/mouth_probe.py: ridge regression of the lower face's pixels on the exact
                openness, fit on the TRAIN split's identities only (never the held-out ones)
  probe-vq      the same, fit on the train frames AND their VQGAN round trips
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "data", "data_dir holding synthetic/")
flags.DEFINE_string("vqgan", "outputs/chain/vqgan", "stage-0 run (VQGAN round trip); '' skips it")
flags.DEFINE_integer("size", 32, "image size the frames are decoded at (the chain's)")
flags.DEFINE_string("measures", "darkness,darkness-ref,dlib-outer,dlib-inner,probe",
                    "measures to run")
flags.DEFINE_float("tone_split", 140.0, "also split the per-clip r by skin tone: clips whose "
                   "face-centre luminance (frame 0, 0-255) is below this are 'darker' (the "
                   "split of identity_preservation.TONE_SPLIT); 0: no split")

MOUTH_ROWS, MOUTH_COLS = (0.6, 0.88), (0.28, 0.72)   # configs/lipsync.py eval box


def held_out(data_dir: str, size: int, split: str = "test"):
  """(resync gt frames uint8 [N, S, S, 3], exact openness [N], clip ids [N], frame-0 frames)."""
  from swaptalk_jax.data import dataset, records  # pylint: disable=import-outside-toplevel
  reader = dataset.SplitReader(synthetic_dir(data_dir), split)
  frames, openness, clips, first = [], [], [], []
  for entry in reader.clips:
    recs = reader.read(range(entry.first_record, entry.first_record + entry.num_chunks))
    clip = records.records_to_clip(recs, reader.meta.extras, reader.where(entry.first_record))
    for i, rec in enumerate(sorted(recs, key=lambda r: int(r["chunk_index"]))):
      n = len(rec["x_resync_gt_frames"])
      frames.append(records.decode_frames(rec, range(n), f"{entry.clip_id}[{i}]",
                                          "x_resync_gt_frames", size))
      if i == 0:
        first.append(records.decode_frames(rec, [0], entry.clip_id, "frames_jpeg", size))
    openness.append(np.asarray(clip.extras["resync_mouth_openness"], np.float64))
    clips += [entry.clip_id] * entry.num_frames
  return np.concatenate(frames), np.concatenate(openness), np.array(clips), np.concatenate(first)


def synthetic_dir(data_dir: str) -> str:
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return str(pipelines.dataset_path(dict(name="synthetic", data_dir=data_dir)))


def vq_round_trip(frames: np.ndarray, workdir: str) -> np.ndarray:
  """uint8 frames through the frozen VQGAN (encode, quantize, decode) -> uint8 frames."""
  import jax  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.trainers.lip_expert import load_vqgan  # pylint: disable=import-outside-toplevel
  vq = load_vqgan(workdir)
  fn = jax.jit(lambda x: vq.model.apply({"params": vq.params}, x)[0])
  out = []
  for i in range(0, len(frames), 64):
    x = frames[i:i + 64].astype(np.float32) / 127.5 - 1.0
    out.append(np.asarray(fn(x)))
  out = np.concatenate(out)
  return np.clip((out + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def darkness(frames: np.ndarray) -> np.ndarray:
  s = frames.shape[1]
  r0, r1 = (int(round(v * s)) for v in MOUTH_ROWS)
  c0, c1 = (int(round(v * s)) for v in MOUTH_COLS)
  lum = frames[:, r0:r1, c0:c1].astype(np.float64).mean(-1) / 255.0
  return np.maximum(0.35 - lum, 0.0).mean((1, 2))


def per_clip_r(values: np.ndarray, exact: np.ndarray, clips: np.ndarray) -> np.ndarray:
  """[clips] Pearson r of each clip (clips in first-seen order)."""
  return np.array([np.corrcoef(values[clips == c], exact[clips == c])[0, 1]
                   for c in dict.fromkeys(clips)])


def dlib_opening(frames: np.ndarray, lips: str) -> np.ndarray:
  from swaptalk_jax.metrics import mouth_frames  # pylint: disable=import-outside-toplevel
  return mouth_frames.crop_openings(frames, lips=lips)


def pearsons(values: np.ndarray, exact: np.ndarray, clips: np.ndarray) -> tuple[float, float, float]:
  """(pooled r, mean per-clip r, min per-clip r)."""
  per = per_clip_r(values, exact, clips)
  return float(np.corrcoef(values, exact)[0, 1]), float(np.mean(per)), float(np.min(per))


def main(argv):
  del argv
  from benchmarks import mouth_probe  # pylint: disable=import-outside-toplevel
  start = time.time()
  frames, exact, clips, first = held_out(FLAGS.data_dir, FLAGS.size)
  sets = {"gt": frames}
  if FLAGS.vqgan:
    sets["gt via VQGAN"] = vq_round_trip(frames, FLAGS.vqgan)
  names = [m for m in FLAGS.measures.split(",") if m]
  probes = {}
  if "probe" in names:
    probes["probe"] = mouth_probe.fit_probe(synthetic_dir(FLAGS.data_dir), FLAGS.size)
  if "probe-vq" in names:
    probes["probe-vq"] = mouth_probe.fit_probe(synthetic_dir(FLAGS.data_dir), FLAGS.size,
                                               transform=lambda f: vq_round_trip(f, FLAGS.vqgan))
  for name, probe in probes.items():
    print(f"{name}: fit on {probe.num_train} train-split frames, train r {probe.train_r:+.3f}")
  clip_index = {c: i for i, c in enumerate(dict.fromkeys(clips))}
  first_dark = darkness(first)[[clip_index[c] for c in clips]]
  print(f"{len(frames)} held-out frames in {len(clip_index)} clips at {FLAGS.size} px; exact "
        f"openness mean {exact.mean():.3f}, {np.mean(exact < 0.05):.0%} frames < 0.05")
  print(f"{'measure':<14}" + "".join(f"{name + ' r pooled / clip mean / clip min':>46}"
                                     for name in sets))
  from swaptalk_jax.metrics import identity_preservation  # pylint: disable=import-outside-toplevel
  darker = identity_preservation.face_luminance(first) < FLAGS.tone_split
  by_tone = []
  for name in names:
    cells = []
    for images in sets.values():
      if name == "darkness":
        v = darkness(images)
      elif name == "darkness-ref":
        v = darkness(images) - first_dark
      elif name.startswith("dlib-"):
        v = dlib_opening(images, name.split("-")[1])
      elif name in probes:
        v = probes[name](images)
      else:
        raise app.UsageError(f"unknown measure {name!r}")
      cells.append("{:+.3f} / {:+.3f} / {:+.3f}".format(*pearsons(v, exact, clips)))
      per = per_clip_r(v, exact, clips)
      by_tone.append("{:+.3f} / {:+.3f}  {:+.3f} / {:+.3f}".format(
          *(f(per[group]) if group.any() else np.nan
            for group in (darker, ~darker) for f in (np.mean, np.min))))
    print(f"{name:<14}" + "".join(f"{c:>46}" for c in cells), flush=True)
  if FLAGS.tone_split > 0:
    print(f"\nper-clip r by skin tone: {int(darker.sum())} darker clips (face-centre luminance "
          f"< {FLAGS.tone_split:g}) mean / min, {int((~darker).sum())} lighter mean / min")
    for i, name in enumerate(names):
      row = by_tone[i * len(sets):(i + 1) * len(sets)]
      print(f"{name:<14}" + "".join(f"{c:>46}" for c in row))
  print(f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
  app.run(main)
