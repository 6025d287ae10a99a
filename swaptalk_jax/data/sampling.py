"""Per-stage sample plans: which records, frames and mel windows one training example needs.

A plan is small (integers only) and drawn by a grain `random_map` with the element's own
deterministic rng, so every process can plan the whole global batch cheaply and identically, then
read and decode only its share (`assemble.py`). Plan format:
  {'source': int, 'images': {key: [(record, frame_in_chunk, field), ...]},
   'mels': {key: [(record, clip-global mel step, field), ...]}, 'values': {key: scalar},
   'flip': bool}
"""
import dataclasses
from typing import Any

import grain
import numpy as np

from swaptalk_jax.audio.mel import mel_start_for_frame, num_steps_for_frames
from swaptalk_jax.data import dataset
from swaptalk_jax.errors import UserError

STAGES = ("vqgan", "swap", "lip_expert", "lipsync", "identity")
FRAMES = "frames_jpeg"


@dataclasses.dataclass(frozen=True)
class SplitIndex:
  """Per-record arrays and identity lookups of one split, from its clip table."""
  clip_of: np.ndarray          # [R] clip position in the table
  first_frame: np.ndarray      # [R] clip frame of the chunk's first frame
  length: np.ndarray           # [R] frames in the chunk
  clips: tuple[dataset.ClipEntry, ...]
  identities: tuple[str, ...]
  identity_records: dict[str, np.ndarray]
  mel_margin: int
  has_swap_gt: bool

  @classmethod
  def build(cls, meta: dataset.DatasetMeta, split: str) -> "SplitIndex":
    clips = meta.clip_tables[split]
    clip_of, first, length, by_identity = [], [], [], {}
    for c, entry in enumerate(clips):
      start = 0
      for k, n in enumerate(entry.chunk_frames):
        if entry.first_record + k != len(clip_of):
          raise UserError(f"{meta.path}: clip table of {split!r} is not in record order at "
                           f"clip {entry.clip_id}")
        by_identity.setdefault(entry.identity, []).append(len(clip_of))
        clip_of.append(c)
        first.append(start)
        length.append(n)
        start += n
    has_gt = meta.extras.get("swap_gt_frames") is not None and "swap_gt_identity" in meta.extras
    return cls(np.array(clip_of), np.array(first), np.array(length), clips,
               tuple(sorted(by_identity)), {k: np.array(v) for k, v in by_identity.items()},
               int(meta.options["mel_margin"]), has_gt)

  def mel_range(self, record: int) -> tuple[int, int]:
    """Clip-global mel steps [lo, hi) stored in `record` that hold real audio (not padding)."""
    f0 = int(self.first_frame[record])
    f1 = f0 + int(self.length[record])
    clip_steps = mel_start_for_frame(self.clips[self.clip_of[record]].num_frames)
    return (max(0, mel_start_for_frame(f0) - self.mel_margin),
            min(clip_steps, mel_start_for_frame(f1) + self.mel_margin))


def eligible_records(index: SplitIndex, stage: str, window: int) -> np.ndarray:
  """Records a stage samples from: all for image stages, chunks holding a full window otherwise."""
  if stage in ("vqgan", "swap", "identity"):
    return np.arange(len(index.clip_of))
  return np.nonzero(index.length >= window)[0]


class PlanSampler(grain.transforms.RandomMap):
  """Element = position in the (shuffled) eligible-record list -> plan for one example."""

  def __init__(self, stage: str, source: int, dataset_dir: str, split: str, stage_config: dict,
               train: bool):
    if stage not in STAGES:
      raise ValueError(f"unknown stage {stage!r} (one of {STAGES})")
    self.stage, self.source, self.train = stage, source, train
    self.dataset_dir, self.split = dataset_dir, split
    self.cfg = dict(stage_config)
    self.window = int(self.cfg.get("window", 5))
    self.index = SplitIndex.build(dataset.cached_meta(dataset_dir), split)
    self.eligible = eligible_records(self.index, stage, self.window)
    if len(self.eligible) == 0:
      raise UserError(f"{dataset_dir} {split}: no records usable for stage {stage!r}")
    # all_windows (lipsync eval only): one element per non-overlapping window of every eligible
    # chunk, so one eval pass scores every frame of the split (bar a chunk's last length % window
    # frames) instead of one random window per chunk.
    self.tiles = None
    if stage == "lipsync" and not train and self.cfg.get("all_windows"):
      self.tiles = [(int(r), s) for r in self.eligible
                    for s in range(0, int(self.index.length[r]) - self.window + 1, self.window)]
    extras = dataset.cached_meta(dataset_dir).extras
    if stage == "lipsync" and self.cfg.get("resync_gt") and not (
        getattr(extras.get("resync_gt_frames"), "kind", None) == "frames"
        and getattr(extras.get("resync_audio"), "kind", None) == "audio"):
      raise UserError(f"{dataset_dir}: lipsync.resync_gt needs the extras resync_gt_frames and "
                       f"resync_audio (the synthetic set has them); this dataset has "
                       f"{sorted(extras)}")
    if stage == "swap" and len(self.index.identities) < 2 and \
        self.cfg.get("same_identity_fraction", 0.5) < 1:
      raise UserError(f"{dataset_dir} {split}: swap pairs across identities need >= 2 identities, "
                       f"found {len(self.index.identities)}")
    if stage == "identity" and len(self.index.identities) < 2:
      raise UserError(f"{dataset_dir} {split}: the identity net needs >= 2 labelled identities, "
                       f"found {len(self.index.identities)}")

  def __len__(self) -> int:
    return len(self.tiles) if self.tiles is not None else len(self.eligible)

  def random_map(self, element: int, rng: np.random.Generator) -> dict[str, Any]:
    plan = dict(source=self.source, images={}, mels={}, values={}, flip=False)
    if self.tiles is not None:
      record, start = self.tiles[int(element) % len(self.tiles)]
      self._plan_lipsync(record, rng, plan, start)
      return plan
    record = int(self.eligible[int(element) % len(self.eligible)])
    getattr(self, f"_plan_{self.stage}")(record, rng, plan)
    return plan

  # --- stages

  def _plan_vqgan(self, record, rng, plan):
    k, n = int(self.cfg.get("frames_per_read", 1)), int(self.index.length[record])
    if k == 1:
      plan["images"]["image"] = (record, int(rng.integers(n)), FRAMES)
    else:  # k frames of one chunk: one read serves k images (distinct frames where it has them)
      frames = rng.choice(n, size=k, replace=n < k)
      plan["images"]["image"] = [(record, int(f), FRAMES) for f in frames]
    plan["flip"] = bool(self.train and rng.random() < self.cfg.get("flip_prob", 0.0))

  def _plan_identity(self, record, rng, plan):
    """One frame and its identity's class: position in the split's sorted identities, plus
    `label_offset` (the classes of the sources before this one in a mixture)."""
    identity = self.index.clips[self.index.clip_of[record]].identity
    plan["images"]["image"] = (record, int(rng.integers(self.index.length[record])), FRAMES)
    plan["values"]["label"] = np.int32(self.cfg.get("label_offset", 0)
                                       + self.index.identities.index(identity))
    plan["flip"] = bool(self.train and rng.random() < self.cfg.get("flip_prob", 0.0))

  def _random_frame(self, records: np.ndarray, rng) -> tuple[int, int, str]:
    r = int(records[rng.integers(len(records))])
    return r, int(rng.integers(self.index.length[r])), FRAMES

  def _same_identity_source(self, target: tuple, identity: str, rng) -> tuple[int, int, str]:
    """A frame of the same identity from another clip when it has one (else another frame of the
    target's clip), so a same-identity pair is never the target copied."""
    idx, records = self.index, self.index.identity_records[identity]
    target_clip = idx.clip_of[target[0]]
    for _ in range(32):  # rejection sampling: cheap for big tables
      r = int(records[rng.integers(len(records))])
      if idx.clip_of[r] != target_clip:
        return r, int(rng.integers(idx.length[r])), FRAMES
    clip = idx.clips[target_clip]
    frame = int(idx.first_frame[target[0]]) + target[1]
    other = int(rng.integers(max(clip.num_frames - 1, 1)))
    other += other >= frame and clip.num_frames > 1  # skip the target frame itself
    return (*clip.chunk_of_frame(other), FRAMES)

  def _plan_swap(self, record, rng, plan):
    idx = self.index
    target = (record, int(rng.integers(idx.length[record])), FRAMES)
    identity = idx.clips[idx.clip_of[record]].identity
    same = rng.random() < self.cfg.get("same_identity_fraction", 0.5)
    gt_identity = idx.clips[idx.clip_of[record]].extras.get("swap_gt_identity")
    if same:
      source, gt, has_gt = self._same_identity_source(target, identity, rng), target, True
    elif idx.has_swap_gt and gt_identity in idx.identity_records:
      # The dataset rendered this target with identity `gt_identity`'s face: exact ground truth.
      source = self._random_frame(idx.identity_records[gt_identity], rng)
      gt, has_gt = (target[0], target[1], "x_swap_gt_frames"), True
    else:
      k = int(rng.integers(len(idx.identities) - 1))  # uniform over the other identities
      other = idx.identities[k + (k >= idx.identities.index(identity))]
      source, gt, has_gt = self._random_frame(idx.identity_records[other], rng), target, False
    plan["images"].update(source=source, target=target, target_gt=gt)
    plan["values"].update(has_gt=has_gt, same_identity=bool(same))

  def _window_start(self, record, rng) -> int:
    return int(rng.integers(self.index.length[record] - self.window + 1))

  def _plan_lip_expert(self, record, rng, plan):
    idx, steps = self.index, num_steps_for_frames(self.window)
    start = self._window_start(record, rng)
    plan["images"]["frames"] = [(record, start + k, FRAMES) for k in range(self.window)]
    clip_frame = int(idx.first_frame[record]) + start
    in_sync = rng.random() < self.cfg.get("positive_fraction", 0.5)
    mel = (record, mel_start_for_frame(clip_frame), "mel")
    if not in_sync:
      lo, hi = idx.mel_range(record)
      min_offset = int(self.cfg.get("min_offset_frames", 5))
      shifts = [s for s in range(-4 * self.window - min_offset, 4 * self.window + min_offset + 1)
                if abs(s) >= min_offset and clip_frame + s >= 0
                and lo <= mel_start_for_frame(clip_frame + s)
                and mel_start_for_frame(clip_frame + s) + steps <= hi]
      if shifts:  # a shifted window of the same clip: the hard negative (same voice)
        shift = shifts[int(rng.integers(len(shifts)))]
        mel = (record, mel_start_for_frame(clip_frame + shift), "mel")
      else:  # clip too short to shift far enough: a window of another clip
        r = self._record_of_other_clip(record, rng)
        s = int(rng.integers(idx.length[r] - self.window + 1))
        mel = (r, mel_start_for_frame(int(idx.first_frame[r]) + s), "mel")
    plan["mels"]["mel"] = mel
    plan["values"]["label"] = np.float32(in_sync)

  def _record_of_other_clip(self, record, rng) -> int:
    """A random eligible record of a different clip (rejection sampling: cheap for big tables)."""
    for _ in range(256):
      r = int(self.eligible[rng.integers(len(self.eligible))])
      if self.index.clip_of[r] != self.index.clip_of[record]:
        return r
    raise ValueError(f"{self.dataset_dir} {self.split}: no off-sync window for record {record} "
                     "(its clip is too short to shift and no other clip was found)")

  def _plan_lipsync(self, record, rng, plan, start=None):
    idx = self.index
    start = self._window_start(record, rng) if start is None else start
    plan["images"]["target"] = [(record, start + k, FRAMES) for k in range(self.window)]
    clip = idx.clips[idx.clip_of[record]]
    clip_frame = int(idx.first_frame[record]) + start
    centre = clip_frame + self.window // 2
    distance = np.abs(np.arange(clip.num_frames) - centre)
    far = np.nonzero(distance >= self.cfg.get("reference_min_distance", 5))[0]
    candidates = far if len(far) else np.nonzero(distance == distance.max())[0]
    ref_record, ref_frame = clip.chunk_of_frame(int(candidates[rng.integers(len(candidates))]))
    plan["images"]["reference"] = (ref_record, ref_frame, FRAMES)
    half = self.window // 2
    # Per-frame windows centred on each target frame (= the window starting `half` frames before).
    plan["mels"]["mel"] = [(record, mel_start_for_frame(clip_frame + k - half), "mel")
                           for k in range(self.window)]
    plan["mels"]["mel_window"] = (record, mel_start_for_frame(clip_frame), "mel")
    if self.cfg.get("resync_gt"):
      # Exact ground truth of lip-sync to other audio: the same frames re-rendered with the mouth
      # driven by the clip's re-sync audio, and that audio's mel windows.
      plan["images"]["resync_target"] = [(record, start + k, "x_resync_gt_frames")
                                         for k in range(self.window)]
      plan["mels"]["resync_mel"] = [(r, step, "x_resync_audio_mel") for r, step, _ in
                                    plan["mels"]["mel"]]
      plan["mels"]["resync_mel_window"] = (record, mel_start_for_frame(clip_frame),
                                           "x_resync_audio_mel")
