"""The target's and the source's faces for `generate`, with the SAME face code as data prep
(swaptalk_jax/face: dlib detection, landmark tracking, the smoothed similarity alignment and the
feathered paste-back), so the model sees crops framed exactly like its training crops.

The target is tracked in a first decoding pass that keeps only landmarks (~0.5 kB a frame), so
memory stays flat in video length; the second pass (pipeline.py) cuts crops chunk by chunk with the
transforms computed here. Alignment smoothing runs within each run of face frames between scene
cuts, as in data prep. Frames without a face are passed through untouched.
"""
import dataclasses
from typing import Callable, Optional

import numpy as np

from data_prep.real import scenes
from swaptalk_jax.errors import UserError
from swaptalk_jax.face import align, detect, landmarks as lm, paste
from swaptalk_jax.face.track import FaceTracker, TrackerConfig
from swaptalk_jax.video import decode

# 'aligned': data prep's template (real footage). 'synthetic': the synthetic set stores whole
# rendered frames as its crops, so a model trained on it wants crops framed like those frames.
FRAMINGS = ("aligned", "synthetic")


def synthetic_framing(size: int) -> align.AlignConfig:
  """The AlignConfig whose template puts the 5 points where the synthetic renderer draws them on
  average: the weighted similarity fit of the renders' mean 5 points (8 identities x 2 s) to this
  template is the identity to 1 % (eye distance 0.189, eye row 0.474 of the frame)."""
  return align.AlignConfig(size=size, eye_row=0.474, eye_distance=0.189)


def align_config(framing: str, size: int, smooth_sigma: float = 1.5) -> align.AlignConfig:
  if framing == "aligned":
    return align.AlignConfig(size=size, smooth_sigma=smooth_sigma)
  if framing == "synthetic":
    return dataclasses.replace(synthetic_framing(size), smooth_sigma=smooth_sigma)
  raise UserError(f"unknown face framing {framing!r}; choose one of {FRAMINGS}")


@dataclasses.dataclass
class SourceFace:
  crop: np.ndarray          # uint8 [S,S,3] aligned crop
  box: np.ndarray           # (x0, y0, x1, y1) in photo pixels
  num_faces: int


def source_face(photo: np.ndarray, config: align.AlignConfig, face_index: Optional[int] = None,
                min_face: int = 32, path: str = "photo", predictor=None,
                threshold: float = 0.0) -> SourceFace:
  """The aligned crop of the one face (or face `face_index`, largest first) of the source photo."""
  # One image: search it at up to 1600 px (the metrics' setting), not the video's 640.
  boxes = detect.detect_faces(photo, detect.DetectorConfig(min_face=min_face, max_work_side=1600,
                                                           threshold=threshold))
  n = int(boxes.shape[0])
  if n == 0:
    raise UserError(f"source photo {path}: no face of >= {min_face} px found")
  if face_index is None and n > 1:
    raise UserError(f"source photo {path}: {n} faces found; pick one with --face_index "
                    f"0..{n - 1} (largest first)")
  index = 0 if face_index is None else int(face_index)
  if not 0 <= index < n:
    raise UserError(f"--face_index {index} is out of range: source photo {path} has {n} faces")
  predictor = predictor or lm.LandmarkPredictor()
  points = predictor(photo, boxes[index])
  to_crop = align.frame_to_crop_transforms(points[None], config)[0]
  return SourceFace(align.warp_to_crop(photo, to_crop, config.size), boxes[index, :4], n)


@dataclasses.dataclass
class TargetTrack:
  """Pass-1 result over the target's T frames (25 fps timeline of decode.iter_frames).

  landmarks: float32 [T,68,2] frame pixels (NaN without a face); to_crop: float64 [T,2,3]
  frame->crop similarities (NaN without a face); cuts: scene-cut frame indices.
  """
  landmarks: np.ndarray
  to_crop: np.ndarray
  cuts: list

  @property
  def num_frames(self) -> int:
    return int(self.landmarks.shape[0])

  @property
  def has_face(self) -> np.ndarray:
    return np.isfinite(self.to_crop).all(axis=(1, 2))


def track_target(info: decode.VideoInfo, config: align.AlignConfig,
                 tracker: TrackerConfig = TrackerConfig(), scene_threshold: float = 0.45,
                 predictor=None, on_frame: Optional[Callable[[], None]] = None) -> TargetTrack:
  """Pass 1: decode, scene cuts, track one face (the largest at the first detection, then the one
  that overlaps it), and the smoothed frame->crop transforms of every face frame."""
  face_tracker = FaceTracker(tracker, predictor or lm.LandmarkPredictor())
  cutter = scenes.CutDetector(scene_threshold)
  cuts = []
  try:
    for t, frame in enumerate(decode.iter_frames(info.path, info=info)):
      if cutter.is_cut(frame):
        cuts.append(t)
      face_tracker.step(frame, force_detect=bool(cuts) and cuts[-1] == t)
      if on_frame:
        on_frame()
  except decode.MediaError as e:
    raise UserError(str(e)) from None
  points = face_tracker.result().landmarks
  found = np.isfinite(points).all(axis=(1, 2))
  to_crop = np.full((points.shape[0], 2, 3), np.nan)
  for s, e in scenes.segments(points.shape[0], cuts, found, 1):   # smoothing never crosses a cut
    to_crop[s:e] = align.frame_to_crop_transforms(points[s:e], config)
  return TargetTrack(points, to_crop, cuts)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
  """[...,68,2] -> [...] inner-lip gap (points 62/66) over the interocular distance."""
  gap = np.linalg.norm(landmarks[..., 62, :] - landmarks[..., 66, :], axis=-1)
  return gap / np.maximum(lm.interocular(landmarks), 1e-6)


def pick_reference(track: TargetTrack, first: int = 125) -> int:
  """The reference frame of the lip-sync stage: among the first `first` face frames, the one whose
  mouth is most closed (its lower half then shows the lips, not a mid-word shape). -1: no face."""
  idx = np.flatnonzero(track.has_face)[:first]
  if idx.size == 0:
    return -1
  return int(idx[np.argmin(mouth_opening(track.landmarks[idx]))])


def color_match(generated: np.ndarray, original: np.ndarray, mask: np.ndarray,
                strength: float = 1.0) -> np.ndarray:
  """Per-channel mean/std of `generated` crops [B,S,S,3] moved toward `original`'s inside the
  weight `mask` [S,S] (the paste's feather), so the pasted face matches the frame's lighting.
  uint8 in, uint8 out; strength 0 = unchanged, 1 = full transfer."""
  if strength <= 0:
    return generated
  g, o = generated.astype(np.float32), original.astype(np.float32)
  w = (mask / mask.sum())[None, :, :, None]
  def stats(x):
    mean = (x * w).sum((1, 2), keepdims=True)
    std = np.sqrt(((x - mean) ** 2 * w).sum((1, 2), keepdims=True)) + 1.0
    return mean, std
  (gm, gs), (om, os_) = stats(g), stats(o)
  matched = (g - gm) / gs * os_ + om
  out = g + strength * (matched - g)
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def crop(frame: np.ndarray, to_crop: np.ndarray, size: int) -> np.ndarray:
  return align.warp_to_crop(frame, to_crop, size)


def paste_face(frame: np.ndarray, face: np.ndarray, to_crop: np.ndarray,
               feather: float = 0.1) -> np.ndarray:
  """The generated crop pasted into (a copy of) its frame through the inverse of `to_crop`."""
  return paste.paste_back(frame, face, paste.crop_to_frame_map(to_crop), feather)
