"""Each Table 1 metric's parity figure against its reference, and its cost per frame, on synthetic
clips rendered here (exact landmarks and mouth openness known).

  python benchmarks/table1_metrics.py [--identities 3] [--seconds 1.2] [--json out.json]
  python benchmarks/table1_metrics.py --table DATA_DIR/synthetic/1.0.0 --out DIR [--frames 40]

--table writes Table 1 (self-driven) on a prepared synthetic set's test split for ground-truth rows:
the ideal swap (the exact swap render: another identity with the target's pose and mouth), the same
blurred (Gaussian sigma 1 px), and no swap (the target copied); ID retrieve's gallery is frames of
each identity's clips in the train and test splits.

Rows: CPBD vs the `cpbd` package (same gray images), SSIM vs skimage, LMD (dlib) vs the same
distance on the renderer's exact landmarks, mouth-opening correlation (dlib) vs the exact one,
Consistency vs sklearn's cosine, FD-dlib vs a direct Frechet formula, bootstrap interval vs
scipy.stats.bootstrap; FID and LSE are reported as skipped without user weights (never run on a
random network). Times are medians of wall clock per frame on whatever this machine is doing.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.ndimage  # noqa: E402
import scipy.stats  # noqa: E402

from data_prep.synthetic.clips import make_clip  # noqa: E402
from swaptalk_jax.metrics import bootstrap, consistency, cpbd, face_fd  # noqa: E402
from swaptalk_jax.metrics import identity_preservation, image_quality, lmd, mouth  # noqa: E402

BOX = identity_preservation.SYNTHETIC_FACE_BOX


def per_frame(fn, n):
  t = time.perf_counter()
  out = fn()
  return out, 1000.0 * (time.perf_counter() - t) / n


def cpbd_row(clips):
  if not hasattr(scipy.ndimage, "imread"):  # the package imports it for its CLI only
    scipy.ndimage.imread = None
  from cpbd.compute import compute  # pylint: disable=import-outside-toplevel
  import cv2  # pylint: disable=import-outside-toplevel
  frames = np.concatenate([c.frames[::5] for c in clips])
  big = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in frames[:6]])
  ours, t_ours = per_frame(lambda: cpbd.cpbd_frames(big), len(big))
  ref, t_ref = per_frame(lambda: np.array([compute(cpbd.to_gray(f)) for f in big]), len(big))
  small = cpbd.cpbd_frames(frames)
  small_ref = np.array([compute(cpbd.to_gray(f)) for f in frames])
  diff = max(np.max(np.abs(ours - ref)), np.max(np.abs(small - small_ref)))
  return dict(metric="CPBD", reference="cpbd 1.0.7 package",
              parity=f"max |diff| {diff:.1e} over {len(frames) + len(big)} frames (64 + 256 px)",
              ms_per_frame=f"{t_ours:.1f} at 256 px (package {t_ref:.0f})")


def ssim_row(clips):
  from skimage.metrics import structural_similarity  # pylint: disable=import-outside-toplevel
  x = np.concatenate([c.frames[:10] for c in clips]).astype(np.float64) / 255.0
  y = np.concatenate([c.extras["resync_gt_frames"][:10] for c in clips]).astype(np.float64) / 255.0
  ours, t = per_frame(lambda: np.asarray(image_quality.ssim(x, y)), len(x))
  ref = np.array([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, data_range=1.0,
                                        use_sample_covariance=False, channel_axis=-1)
                  for a, b in zip(x, y)])
  return dict(metric="SSIM", reference="skimage structural_similarity (gaussian, sigma 1.5)",
              parity=f"max |diff| {np.max(np.abs(ours - ref)):.1e} over {len(x)} frames",
              ms_per_frame=f"{t:.1f} (64 px, first call compiles)")


def lmd_rows(clips):
  """LMD per kind of pair: another frame of the clip and the re-synced mouth (same identity: what
  LMD is for), and the swap ground truth (another identity with the same mouth: dlib's bias)."""
  scale = lmd.LMD_SIZE / clips[0].frames.shape[1]
  kinds = ("other frame", "re-synced", "swapped id")
  ours, exact = {k: [] for k in kinds}, {k: [] for k in kinds}
  corr_gap, follow, times = [], [], []
  for clip in clips:
    n = len(clip.frames)
    (truth_lm, boxes), t = per_frame(lambda: lmd.crop_landmarks(clip.frames, BOX), n)
    times.append(t)
    perm = np.random.default_rng(0).permutation(n)
    pairs = ((clip.frames[perm], clip.landmarks[perm], clip.extras["mouth_openness"][perm]),
             (clip.extras["resync_gt_frames"], clip.extras["resync_gt_landmarks"],
              clip.extras["resync_mouth_openness"]),
             (clip.extras["swap_gt_frames"], clip.extras["swap_gt_landmarks"],
              clip.extras["mouth_openness"]))
    for kind, (frames, landmarks, openness) in zip(kinds, pairs):
      gen_lm, _ = lmd.crop_landmarks(frames, boxes=boxes)
      ours[kind].append(lmd.mouth_distances(gen_lm, truth_lm))
      exact[kind].append(lmd.mouth_distances(landmarks * scale, clip.landmarks * scale))
      if kind != "swapped id":
        corr_gap.append(abs(mouth.opening_correlation(gen_lm, truth_lm, "outer")
                            - mouth.pearson(openness, clip.extras["mouth_openness"])))
    follow.append(mouth.pearson(mouth.mouth_opening(truth_lm, "outer"),
                                clip.extras["mouth_openness"]))
  parts = []
  for kind in kinds:
    o, e = np.concatenate(ours[kind]), np.concatenate(exact[kind])
    parts.append(f"{kind}: r {np.corrcoef(o, e)[0, 1]:.2f}, {o.mean():.2f} vs exact {e.mean():.2f}")
  return [dict(metric="LMD", reference="renderer's exact landmarks, same pairs (px@256)",
               parity="; ".join(parts), ms_per_frame=f"{np.median(times):.1f} per side (landmarks)"),
          dict(metric="Mouth corr", reference="renderer's exact openness",
               parity=f"|dlib - exact| pair corr max {max(corr_gap):.2f} (other frame, re-synced); "
                      f"dlib opening vs exact openness r {min(follow):.2f}-{max(follow):.2f}",
               ms_per_frame="(landmarks above)")]


def identity_rows(clips):
  from sklearn.metrics.pairwise import cosine_similarity  # pylint: disable=import-outside-toplevel
  frames = clips[0].frames[::3]
  emb, t = per_frame(lambda: identity_preservation.embed_crops(frames, BOX), len(frames))
  ref = 100.0 * cosine_similarity(emb, emb.mean(0, keepdims=True)).mean()
  other = identity_preservation.embed_crops(clips[1].frames[::3], BOX)
  mixed = np.concatenate([emb[::2], other[1::2]])
  a, b = np.random.default_rng(0).normal(size=(300, 128)), np.random.default_rng(1).normal(size=(260, 128))
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  fd_ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
  return [dict(metric="Consistency", reference="sklearn cosine_similarity x100",
               parity=f"|diff| {abs(consistency.consistency(emb) - ref):.1e}; own clip "
                      f"{consistency.consistency(emb):.2f} vs two-identity mix "
                      f"{consistency.consistency(mixed):.2f}",
               ms_per_frame=f"{t:.0f} (dlib descriptor)"),
          dict(metric="FD-dlib (FID substitute)", reference="direct Frechet formula (np.cov, sqrtm)",
               parity=f"rel diff {abs(face_fd.fd_from_embeddings(a, b) - fd_ref) / fd_ref:.1e}; "
                      f"same id {face_fd.fd_from_embeddings(emb, emb):.3f} vs other id "
                      f"{face_fd.fd_from_embeddings(emb, other):.3f}",
               ms_per_frame="(dlib descriptor above)")]


def bootstrap_row():
  values = np.random.default_rng(0).gamma(2.0, 1.5, size=40)
  ours, t = per_frame(lambda: bootstrap.mean_interval(values, resamples=5000), 1)
  ref = scipy.stats.bootstrap((values,), np.mean, n_resamples=5000, method="percentile",
                              random_state=1).confidence_interval
  return dict(metric="Bootstrap CI", reference="scipy.stats.bootstrap percentile",
              parity=f"ours [{ours.low:.3f}, {ours.high:.3f}] scipy [{ref.low:.3f}, {ref.high:.3f}]",
              ms_per_frame=f"{t:.1f} per table cell (5000 resamples)")


def table_demo(data_dir: str, out: str, frames: int, seed: int = 0):
  from swaptalk_jax.data import dataset  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.metrics import clip_metrics, table  # pylint: disable=import-outside-toplevel
  test = dataset.SplitReader(data_dir, "test")
  clips = [test.read_clip(c.clip_id) for c in test.clips]
  readers = [dataset.SplitReader(data_dir, s) for s in ("train", "test")]
  wanted = {str(c.extras["swap_gt_identity"]) for c in clips}
  gallery, labels = [], []
  for reader in readers:
    for entry in reader.clips:
      if entry.identity in wanted and entry.identity not in labels:
        g = reader.read_clip(entry.clip_id).frames[::15]
        gallery.append(identity_preservation.embed_crops(g, BOX))
        labels += [entry.identity] * len(g)
  options = clip_metrics.Options(setting="self", gallery=(np.concatenate(gallery), np.array(labels)),
                                 seed=seed)

  def rows_for(make):
    return [clip_metrics.EvalClip(c.clip_id, make(c)[:frames], c.frames[:frames],
                                  str(c.extras["swap_gt_identity"]),
                                  exact=c.extras["swap_gt_frames"][:frames]) for c in clips]
  blur = lambda x: np.clip(scipy.ndimage.gaussian_filter(x.astype(np.float64), (0, 1, 1, 0)),
                           0, 255).round().astype(np.uint8)
  methods = {"ideal swap (exact render)": lambda c: c.extras["swap_gt_frames"],
             "ideal swap, blurred sigma 1": lambda c: blur(c.extras["swap_gt_frames"][:frames]),
             "no swap (copy target)": lambda c: c.frames}
  rows = {}
  for name, make in methods.items():
    t = time.perf_counter()
    rows[name] = clip_metrics.compute(rows_for(make), options)
    print(f"{name}: {time.perf_counter() - t:.0f} s")
  paths = table.write(out, "self", rows, meta=dict(data=data_dir, frames_per_clip=frames),
                      title=f"synthetic test split, {len(clips)} clips x {frames} frames")
  print(paths["md"].read_text())


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--identities", type=int, default=3)
  parser.add_argument("--seconds", type=float, default=1.2)
  parser.add_argument("--json", default="")
  parser.add_argument("--table", default="", help="a prepared synthetic dataset version dir")
  parser.add_argument("--out", default="table1_out")
  parser.add_argument("--frames", type=int, default=40)
  args = parser.parse_args()
  if args.table:
    table_demo(args.table, args.out, args.frames)
    return
  clips = [make_clip(i, 0, seed=0, seconds=args.seconds, resolution=64, partners=range(8))
           for i in range(1, args.identities + 1)]
  rows = [cpbd_row(clips), ssim_row(clips), *lmd_rows(clips), *identity_rows(clips),
          bootstrap_row(),
          dict(metric="FID", reference="pytorch-fid Inception", parity="SKIPPED: no Inception "
               "weights here (FD-dlib reported instead)", ms_per_frame="-"),
          dict(metric="LSE-C/D", reference="syncnet_python", parity="SKIPPED: no SyncNet weights "
               "here (never scored with a random network)", ms_per_frame="-")]
  width = max(len(r["metric"]) for r in rows)
  for r in rows:
    print(f"{r['metric']:<{width}}  {r['parity']}\n{'':<{width}}  ref: {r['reference']}; "
          f"cost ms/frame: {r['ms_per_frame']}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
