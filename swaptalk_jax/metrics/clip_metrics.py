"""Every Table 1 column of one method over a set of evaluation clips -> {column key: table.Cell}.

Inputs are aligned face crops (what generation produces before paste-back, and the dataset's crops):
per clip the generated frames, the target video's frames (the reference for SSIM, FID and, in the
self-driven setting, LMD), the identity that should appear (ID retrieve's label), optionally the
driving audio (LSE) and, on the synthetic set, the exact ground-truth frames (exact-GT columns).
Columns that cannot be computed honestly are skipped cells with the reason: FID without Inception
weights (FD-dlib, a labelled substitute, is reported instead), LSE without SyncNet weights, LMD in
the cross-driven setting (the target's lips do not belong to the driving audio), ID retrieve
without a gallery, CPBD on crops under 64 px, exact-GT columns without exact frames.
"""
import dataclasses
from typing import Callable, Sequence

import cv2
import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.metrics import consistency as consistency_lib
from swaptalk_jax.metrics import cpbd as cpbd_lib
from swaptalk_jax.metrics import face_fd, fid, identity_preservation, image_quality, lmd, mouth
from swaptalk_jax.metrics import mouth_frames, table

NO_INCEPTION = ("no Inception weights given (convert pt_inception-2015-12-05-6726825d.pth with "
                "`swaptalk convert inception`); see FD-dlib")
NO_SYNCNET = ("no SyncNet weights given (convert syncnet_v2.model with `swaptalk convert syncnet`); "
              "never scored with a random network")
FULL_CROP = (0.0, 0.0, 1.0, 1.0)
# The one opening measure of every mouth figure (metrics/mouth_frames.py): dlib's inner lips follow
# the renderer's exact openness better than the outer ones (docs/lipsync_table_v.md: +0.925 vs
# +0.866 at 32 px, +0.892 vs +0.779 at 64 px).
MOUTH_LIPS = mouth_frames.LIPS


@dataclasses.dataclass
class EvalClip:
  clip_id: str
  generated: np.ndarray                 # uint8 [T, S, S, 3]
  target: np.ndarray                    # uint8 [T, S, S, 3], same shape
  identity: str                         # the identity that should appear (the source's)
  audio: np.ndarray | None = None       # int16 [N] 16 kHz driving audio (LSE)
  exact: np.ndarray | None = None       # uint8 [T, S, S, 3] exact ground truth (synthetic)
  gallery_exclude: str | None = None    # gallery group (clip id) ID retrieve must not search:
                                        # the source photo's own clip


@dataclasses.dataclass
class Options:
  setting: str                                   # "self" or "cross"
  # Face box as fractions of the crop: SYNTHETIC_FACE_BOX for the synthetic renders; None = dlib
  # detects the face for landmarks (LMD) and the whole crop is the identity box (real aligned crops).
  face_box: Sequence[float] | None = identity_preservation.SYNTHETIC_FACE_BOX
  inception_embed: Callable | None = None        # images [N, H, W, 3] in [0, 1] -> [N, 2048]
  syncnet_embedders: tuple | None = None         # lse.make_embedders(variables)
  # (dlib descriptors [G, 128], labels [G]) or (..., groups [G]): with groups, each clip's
  # `gallery_exclude` group is left out of its search.
  gallery: tuple | None = None
  seed: int = 0
  resamples: int = 1000
  set_resamples: int = 100                        # for set-level figures (FID, FD-dlib)
  # dlib descriptors by content: rows of one table share clips (the target, a baseline equal to
  # it), and one descriptor costs ~85 ms a frame on a CPU. None: no caching.
  embed_cache: dict | None = None


def check_clips(clips: Sequence[EvalClip]) -> None:
  if len(clips) < 2:
    raise UserError(f"Table 1 needs at least 2 clips (intervals over clips), got {len(clips)}")
  seen = set()
  for c in clips:
    if c.clip_id in seen:
      raise UserError(f"clip id {c.clip_id!r} appears twice")
    seen.add(c.clip_id)
    for name in ("generated", "target", "exact"):
      x = getattr(c, name)
      if x is None:
        continue
      if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise UserError(f"clip {c.clip_id}: {name} must be uint8 [T, S, S, 3], got "
                         f"{getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
      if x.shape != c.generated.shape:
        raise UserError(f"clip {c.clip_id}: {name} {x.shape} and generated {c.generated.shape} "
                         "differ (same frame count and crop size needed; resize first)")
    if len(c.generated) < 2:
      raise UserError(f"clip {c.clip_id}: needs at least 2 frames, got {len(c.generated)}")


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.mean(image_quality.ssim(a / 255.0, b / 255.0)))


def _per_clip(clips, fn) -> dict[str, float]:
  return {c.clip_id: float(fn(c)) for c in clips}


def _set_level(clips, features: dict[str, np.ndarray], reference: dict[str, np.ndarray],
               distance: Callable, options: Options, note: str) -> table.Cell:
  ids = [c.clip_id for c in clips]

  def statistic(index):
    return distance(np.concatenate([features[ids[i]] for i in index]),
                    np.concatenate([reference[ids[i]] for i in index]))
  return table.from_statistic(statistic, ids, options.seed, options.set_resamples, note)


def compute(clips: Sequence[EvalClip], options: Options) -> dict[str, table.Cell]:
  """{column key: Cell} for one method over `clips` (see the module docstring)."""
  if options.setting not in table.SETTINGS:
    raise UserError(f"setting must be one of {table.SETTINGS}, got {options.setting!r}")
  check_clips(clips)
  cells, cell = {}, lambda per: table.from_clips(per, options.seed, options.resamples)
  size = clips[0].generated.shape[1]

  cells["ssim"] = cell(_per_clip(clips, lambda c: _ssim(c.generated, c.target)))
  if size >= cpbd_lib.BLOCK:
    cells["cpbd"] = cell(_per_clip(clips, lambda c: cpbd_lib.cpbd_frames(c.generated).mean()))
  else:
    cells["cpbd"] = table.skipped(f"{size}-px crops have no whole {cpbd_lib.BLOCK}-px CPBD block")

  id_box = options.face_box or FULL_CROP
  embeddings = {c.clip_id: _embed(c.generated, id_box, options) for c in clips}
  target_embeddings = {c.clip_id: _embed(c.target, id_box, options) for c in clips}
  cells["consistency"] = cell({k: consistency_lib.consistency(e) for k, e in embeddings.items()})
  cells["fd_dlib"] = _set_level(clips, embeddings, target_embeddings, face_fd.fd_from_embeddings,
                                options, face_fd.LABEL)
  if options.gallery is None:
    cells["id_retrieve"] = table.skipped("no identity gallery given")
  else:
    cells["id_retrieve"] = cell({c.clip_id: id_retrieve(c, embeddings[c.clip_id], options)
                                 for c in clips})

  if options.inception_embed is None:
    cells["fid"] = table.skipped(NO_INCEPTION)
  else:
    feats = {c.clip_id: options.inception_embed(c.generated / 255.0) for c in clips}
    refs = {c.clip_id: options.inception_embed(c.target / 255.0) for c in clips}

    def fid_distance(a, b):
      return fid.frechet_distance(*fid.statistics_of(a), *fid.statistics_of(b))
    cells["fid"] = _set_level(clips, feats, refs, fid_distance, options, "Inception (user weights)")

  if options.setting == "self":
    cells["lmd"] = cell(_per_clip(clips, lambda c: lmd.lmd(c.generated, c.target,
                                                           options.face_box)["lmd"]))
  else:
    cells["lmd"] = table.skipped("undefined cross-driven: the target's lips do not match the audio")

  if options.syncnet_embedders is None:
    cells["lse_c"] = cells["lse_d"] = table.skipped(NO_SYNCNET)
  else:
    scores = {c.clip_id: sync_scores(c, options) for c in clips}
    cells["lse_c"] = cell({k: s.confidence for k, s in scores.items()})
    cells["lse_d"] = cell({k: s.min_distance for k, s in scores.items()})

  if all(c.exact is not None for c in clips):
    cells["gt_ssim"] = cell(_per_clip(clips, lambda c: _ssim(c.generated, c.exact)))
    cells["gt_l1"] = cell(_per_clip(clips, lambda c: np.mean(np.abs(
        c.generated.astype(np.float64) - c.exact)) / 255.0))
    cells["mouth_corr"] = cell(_per_clip(clips, lambda c: mouth_correlation(c, options)))
  else:
    for key in ("gt_ssim", "gt_l1", "mouth_corr"):
      cells[key] = table.skipped("no exact ground-truth frames (synthetic set only)")
  return cells


def _embed(frames: np.ndarray, box, options: Options) -> np.ndarray:
  """dlib descriptors of a clip's crops, through options.embed_cache when there is one."""
  return identity_preservation.embed_crops_cached(frames, box, options.embed_cache)


def id_retrieve(clip: EvalClip, embeddings: np.ndarray, options: Options) -> float:
  """% of the clip's frames whose nearest gallery descriptor is the clip's identity (the gallery
  without the clip's `gallery_exclude` group when the gallery has groups)."""
  descriptors, labels, *groups = options.gallery
  keep = np.ones(len(labels), bool)
  if groups and clip.gallery_exclude is not None:
    keep = np.asarray(groups[0]) != clip.gallery_exclude
  return 100.0 * float(np.mean(consistency_lib.id_retrieve(
      embeddings, [clip.identity] * len(embeddings), np.asarray(descriptors)[keep],
      np.asarray(labels)[keep])))


def mouth_correlation(clip: EvalClip, options: Options) -> float:
  """Pearson over the clip of generated vs exact mouth opening, dlib landmarks on both (same box).
  A generated mouth that never moves (a still: the copy baseline) follows nothing: 0."""
  exact_lm, boxes = lmd.crop_landmarks(clip.exact, options.face_box, name="exact ground truth")
  gen_lm, _ = lmd.crop_landmarks(clip.generated, boxes=boxes, name="generated")
  opening = mouth.mouth_opening(mouth.check_landmarks(gen_lm, "generated landmarks"), MOUTH_LIPS)
  if np.ptp(opening) == 0:
    return 0.0
  return mouth.opening_correlation(gen_lm, exact_lm, MOUTH_LIPS)


def sync_scores(clip: EvalClip, options: Options):
  """LSE of one clip: syncnet_python's 224-px crop around the face box, BGR, 16 kHz int16 audio."""
  from swaptalk_jax.metrics import lse, syncnet_crop  # pylint: disable=import-outside-toplevel
  if clip.audio is None:
    raise UserError(f"clip {clip.clip_id}: LSE needs the driving audio")
  side = clip.generated.shape[1]
  fraction = options.face_box or FULL_CROP
  boxes = np.tile(np.array(fraction, np.float64) * side, (len(clip.generated), 1))
  frames_bgr = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in clip.generated])
  crops = syncnet_crop.syncnet_crops(frames_bgr, boxes)
  return lse.evaluate_clip(options.syncnet_embedders, crops, np.asarray(clip.audio))
