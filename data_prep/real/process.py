"""One source item -> its aligned clips, or the stage and reason it failed.

Two decoding passes keep memory bounded by one segment's crops (never an item's frames):
  1. decode -> scene cuts -> face tracking (landmarks per frame; small);
  2. decode again -> aligned crops of each good segment, handed on as soon as it is complete.
Stages (named in the failures manifest): probe, audio, track, segment, align, quality, sync.
"""
import contextlib
import dataclasses
import importlib

import numpy as np

from data_prep.real import quality, scenes
from data_prep.real.config import PrepConfig
from data_prep.real.spec import ClipSpec
from swaptalk_jax.data.clip import Clip
from swaptalk_jax.face import align, paste
from swaptalk_jax.face.landmarks import LandmarkPredictor
from swaptalk_jax.face.track import FaceTracker
from swaptalk_jax.video import decode

SAMPLES_PER_FRAME = decode.SAMPLES_PER_FRAME


class StageError(Exception):
  """An item failed at `stage` for `reason` (goes to the failures manifest)."""

  def __init__(self, stage: str, reason: str):
    super().__init__(f"{stage}: {reason}")
    self.stage, self.reason = stage, reason


@contextlib.contextmanager
def stage(name: str):
  """Turns any exception inside into a StageError naming the stage."""
  try:
    yield
  except StageError:
    raise
  except Exception as e:  # the manifest records every kind of failure; nothing else stops the run
    raise StageError(name, f"{type(e).__name__}: {e}") from e


def _load_sync_fn(fn):
  if fn is None or callable(fn):
    return fn
  module, _, attr = fn.partition(":")
  return getattr(importlib.import_module(module), attr)


def _roi_in_decoded(spec: ClipSpec, info: decode.VideoInfo):
  if spec.roi is None:
    return None
  w, h = info.decoded_size
  x0, y0, x1, y1 = (v * info.scale for v in spec.roi)
  x0, y0 = int(max(0, np.floor(x0))), int(max(0, np.floor(y0)))
  x1, y1 = int(min(w, np.ceil(x1))), int(min(h, np.ceil(y1)))
  if x1 - x0 < 8 or y1 - y0 < 8:
    raise ValueError(f"face region {spec.roi} lies outside the {info.width}x{info.height} video")
  return x0, y0, x1, y1


@dataclasses.dataclass
class _Pass1:
  landmarks: np.ndarray   # [T,68,2] decoded-frame pixels
  valid: np.ndarray       # [T] bool
  num_faces: np.ndarray   # [T] int (-1 on tracked frames)
  cuts: list


def _track(spec: ClipSpec, info, config: PrepConfig, predictor) -> _Pass1:
  roi = _roi_in_decoded(spec, info)
  tracker = FaceTracker(config.tracker(), predictor)
  cutter = scenes.CutDetector(config.scene_threshold)
  cuts = []
  for t, frame in enumerate(decode.iter_frames(spec.path, spec.start, spec.end, info=info)):
    if cutter.is_cut(frame):
      cuts.append(t)
    if roi is not None:
      frame = frame[roi[1]:roi[3], roi[0]:roi[2]]
    tracker.step(np.ascontiguousarray(frame), force_detect=bool(cuts) and cuts[-1] == t)
  track = tracker.result()
  landmarks = track.landmarks
  if roi is not None:
    landmarks = landmarks + np.array(roi[:2], np.float32)
  return _Pass1(landmarks, track.valid, track.num_faces, cuts)


def _why_no_segment(p: _Pass1, config: PrepConfig) -> str:
  det = p.num_faces[p.num_faces >= 0]
  n = max(det.size, 1)
  none, many = float((det == 0).sum()) / n, float((det > 1).sum()) / n
  if none >= 0.5:
    return f"no face of >= {config.min_face} px in {none:.0%} of detection frames"
  if many >= 0.5:
    return f"more than one face in {many:.0%} of detection frames"
  return (f"no run of >= {config.min_frames} frames with exactly one face "
          f"({p.valid.mean():.0%} of frames usable, {len(p.cuts)} scene cuts)")


def _split_long(segs, max_frames):
  if not max_frames:
    return segs
  out = []
  for s, e in segs:
    n = -(-(e - s) // max_frames)
    edges = [s + round(i * (e - s) / n) for i in range(n + 1)]
    out += list(zip(edges[:-1], edges[1:]))
  return out


def iter_item_clips(spec: ClipSpec, config: PrepConfig = PrepConfig(), predictor=None):
  """Yields the clips of one item as the second decode completes each segment (segment k -> clip
  id `{key}_s{k:02d}`), so memory holds one segment's crops at a time. Raises StageError."""
  with stage("probe"):
    info = decode.probe(spec.path, config.max_side)
  with stage("audio"):
    if not info.has_audio:
      raise ValueError("no audio stream")
  with stage("track"):
    p = _track(spec, info, config, predictor or LandmarkPredictor())
  num_frames = p.valid.shape[0]
  with stage("segment"):
    if num_frames == 0:
      raise ValueError("no frames")
    segs = scenes.segments(num_frames, p.cuts, p.valid, config.min_frames)
    segs = _split_long(segs, config.max_seconds and int(config.max_seconds * 25))
    if not segs:
      raise ValueError(_why_no_segment(p, config))
  with stage("audio"):
    audio = decode.read_audio(spec.path, spec.start, num_frames * SAMPLES_PER_FRAME, info=info)
    if not np.any(np.abs(audio) > 1e-4):
      raise ValueError("audio track is silent")
  with stage("align"):
    to_crop = np.full((num_frames, 2, 3), np.nan)
    for s, e in segs:  # smoothing never crosses a segment (a cut or a gap without the face)
      to_crop[s:e] = align.frame_to_crop_transforms(p.landmarks[s:e], config.align())
  sync_fn = _load_sync_fn(config.sync_fn)
  frames_iter = iter(decode.iter_frames(spec.path, spec.start, spec.end, info=info))
  t, kept = 0, 0
  for k, (s, e) in enumerate(segs):
    with stage("align"):
      crops = []
      for frame in frames_iter:
        if s <= t < e:
          crops.append(align.warp_to_crop(frame, to_crop[t], config.crop_size))
        t += 1
        if t >= e:
          break
      if len(crops) != e - s:
        raise ValueError(f"second decode ended at frame {t}, first gave {num_frames}")
      frames = np.stack(crops)
      del crops
    clip = _make_clip(spec, config, f"{spec.key}_s{k:02d}", s, e, frames, audio, p.landmarks,
                      to_crop, info.scale, sync_fn)
    if clip is not None:
      kept += 1
      yield clip
  if not kept:
    raise StageError("sync", f"all {len(segs)} segments failed the sync check")


def _make_clip(spec, config, clip_id, s, e, frames, audio, frame_landmarks, to_crop, scale,
               sync_fn) -> Clip | None:
  """Segment [s, e) -> Clip with its audio (sync-corrected when a sync_fn is set) and metadata;
  None when the sync check rejects it."""
  offset, confidence = 0, None
  if sync_fn is not None:
    with stage("sync"):
      offset, confidence = sync_fn(frames, audio[s * SAMPLES_PER_FRAME:e * SAMPLES_PER_FRAME])
      offset, confidence = int(offset), float(confidence)
    if abs(offset) > config.max_sync_offset or confidence < config.min_sync_confidence:
      return None
  a0 = (s + offset) * SAMPLES_PER_FRAME
  seg_audio = audio[max(a0, 0):(e + offset) * SAMPLES_PER_FRAME]
  seg_audio = np.pad(seg_audio, (max(-a0, 0), (e - s) * SAMPLES_PER_FRAME - max(-a0, 0)
                                 - seg_audio.shape[0]))
  with stage("quality"):
    stats = quality.clip_quality(frames, frame_landmarks[s:e], scale)
  clip = Clip(clip_id=clip_id, identity=spec.identity, frames=frames,
              audio=seg_audio.astype(np.float32),
              landmarks=align.apply_affine(to_crop[s:e], frame_landmarks[s:e]).astype(np.float32),
              crop_to_frame=paste.crop_to_frame_map(to_crop[s:e], scale))
  clip.meta = dict(quality=stats, sync_offset=offset if sync_fn else None,
                   sync_confidence=confidence, source=spec.path, first_frame=s,
                   start_seconds=spec.start + s / 25.0)
  return clip


def process_item(spec: ClipSpec, config: PrepConfig = PrepConfig(), predictor=None) -> list[Clip]:
  """All clips of one item in memory (see `iter_item_clips`)."""
  return list(iter_item_clips(spec, config, predictor))
