"""A candidate mouth-opening measure for small synthetic faces, validated but NOT the eval's: a
linear probe (ridge regression of the lower face's pixels on the synthetic renderer's exact
openness) fit on the TRAIN split's identities only; benchmarks/mouth_opening_validation.py compares
it with the eval's measure (swaptalk_jax/metrics/mouth_frames.py, dlib inner lips).

Measured there (600 held-out re-sync ground-truth frames at 32 px, Pearson with the exact openness,
pooled): fit on raw frames, +0.903 on raw frames but +0.133 on their VQGAN round trips (it reads
JPEG-sharp pixels the decoder does not produce); fit on raw frames AND their VQGAN round trips
(`transform`), +0.924 raw and +0.697 round-tripped, against dlib inner lips' +0.925 and +0.587. It
is not the eval's measure because it must be refit (5.5 min here, loaded: 43,200 frames through
the VQGAN) for every VQGAN and dataset, and its scale comes from a regression rather than geometry.

Fit set: every frame of every train-split clip, the clip's own frames (`mouth_openness`) and its
re-sync ground truth (`resync_mouth_openness`), each also horizontally flipped (the training
pipeline flips). Features: RGB of the region REGION of the frame in [0, 1], standardised per
feature over the fit set. Ridge weight RIDGE (fixed, not tuned on the held-out clips).
"""
import dataclasses
import os

import numpy as np

from swaptalk_jax.errors import UserError

REGION_ROWS, REGION_COLS = (0.55, 0.95), (0.2, 0.8)   # fractions of the frame: the lower face
RIDGE = 0.01   # times the fit set size: 1 % of the standardised features' own variance


@dataclasses.dataclass(frozen=True)
class MouthProbe:
  """opening = ((region - mean) / scale) . weights + bias; call it on uint8 [N, S, S, 3]."""
  size: int
  mean: np.ndarray
  scale: np.ndarray
  weights: np.ndarray
  bias: float
  num_train: int
  train_r: float         # Pearson of the fit on its own fit set

  def __call__(self, frames) -> np.ndarray:
    return (features(frames, self.size) - self.mean) / self.scale @ self.weights + self.bias


def features(frames, size: int) -> np.ndarray:
  """uint8 (or float in [0, 1]) frames [N, size, size, 3] -> float64 [N, F] region pixels."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
    raise UserError(f"mouth probe: expected frames [N, {size}, {size}, 3], got {frames.shape}")
  x = frames.astype(np.float64) / (255.0 if frames.dtype == np.uint8 else 1.0)
  r0, r1 = (int(round(v * size)) for v in REGION_ROWS)
  c0, c1 = (int(round(v * size)) for v in REGION_COLS)
  return x[:, r0:r1, c0:c1].reshape(len(x), -1)


def training_frames(dataset_dir: str, size: int, split: str = "train"):
  """(uint8 frames [N, size, size, 3], exact openness [N]) of a synthetic split: each clip's own
  frames and its re-sync ground truth, decoded at `size` as the training pipeline decodes them."""
  from swaptalk_jax.data import dataset, records  # pylint: disable=import-outside-toplevel
  if not os.path.isdir(dataset_dir):
    raise UserError(f"mouth probe: no dataset directory {dataset_dir}")
  reader = dataset.SplitReader(dataset_dir, split)
  for key in ("mouth_openness", "resync_mouth_openness", "resync_gt_frames"):
    if key not in reader.meta.extras:
      raise UserError(f"mouth probe: {dataset_dir} has no extra {key!r} (the synthetic set has it)")
  frames, openness = [], []
  for entry in reader.clips:
    recs = sorted(reader.read(range(entry.first_record, entry.first_record + entry.num_chunks),
                              parallel=False), key=lambda r: int(r["chunk_index"]))
    clip = records.records_to_clip(recs, reader.meta.extras, reader.where(entry.first_record))
    for field, extra in (("frames_jpeg", "mouth_openness"),
                         ("x_resync_gt_frames", "resync_mouth_openness")):
      frames += [records.decode_frames(r, range(len(r[field])), reader.where(entry.first_record),
                                       field, size) for r in recs]
      openness.append(np.asarray(clip.extras[extra], np.float64))
  return np.concatenate(frames), np.concatenate(openness)


def fit_probe(dataset_dir: str, size: int, ridge: float = RIDGE, transform=None) -> MouthProbe:
  """The probe fit on the train split of a prepared synthetic dataset (see the module docstring).
  transform: uint8 frames -> uint8 frames (e.g. the frozen VQGAN's round trip); the probe is then
  fit on the raw frames AND their transforms, so it reads both domains."""
  frames, openness = training_frames(dataset_dir, size)
  if len(frames) != len(openness):
    raise UserError(f"mouth probe: {len(frames)} frames but {len(openness)} openness values")
  frames = np.concatenate([frames, frames[:, :, ::-1]])
  openness = np.concatenate([openness, openness])
  if transform is not None:
    frames = np.concatenate([frames, transform(frames)])
    openness = np.concatenate([openness, openness])
  x = features(frames, size)
  mean, scale = x.mean(0), x.std(0) + 1e-3
  z = (x - mean) / scale
  bias = float(openness.mean())
  weights = np.linalg.solve(z.T @ z + ridge * len(z) * np.eye(z.shape[1]),
                            z.T @ (openness - bias))
  pred = z @ weights + bias
  return MouthProbe(size, mean, scale, weights, bias, len(z),
                    float(np.corrcoef(pred, openness)[0, 1]))
