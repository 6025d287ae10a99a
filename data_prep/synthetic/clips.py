"""Synthetic talking-head clips with exact ground truth, as `Clip`s for the one record writer.

Every random choice is keyed by (seed, identity, clip, purpose), so any clip can be made alone, in any
order or process, and is the same every time.
"""
from typing import Iterator, Sequence

import numpy as np

from data_prep.synthetic import speech
from data_prep.synthetic.appearance import identity_name, sample_identity
from data_prep.synthetic.motion import sample_motion
from data_prep.synthetic.renderer import render
from swaptalk_jax.data.clip import FPS, Clip

DEFAULT_PARTNERS = range(16)
_SPEECH, _MOTION, _PARTNERS = 1, 2, 3


def clip_name(identity_id: int, clip_index: int) -> str:
  """'syn00003_c001' for clip 1 of identity 3."""
  return f"{identity_name(identity_id)}_c{clip_index:03d}"


def num_frames_for(seconds: float) -> int:
  frames = int(round(seconds * FPS))
  if frames < 1:
    raise ValueError(f"a clip of {seconds} s has no frames at {FPS} fps")
  return frames


def clip_speech(identity_id: int, clip_index: int, seed: int, num_frames: int):
  """The audio float32 [num_frames * 640] of a clip and its mouth openness float32 [num_frames]."""
  ident = sample_identity(identity_id, seed)
  rng = np.random.default_rng([seed, identity_id, clip_index, _SPEECH])
  audio, openness = speech.synth_speech(num_frames * speech.SAMPLES_PER_FRAME, ident.pitch_hz,
                                        ident.formant_scale, rng)
  return audio, speech.frame_openness(openness)


def clip_motion(identity_id: int, clip_index: int, seed: int, num_frames: int):
  """The head motion and blinks (motion.Motion) of a clip."""
  return sample_motion(num_frames, np.random.default_rng([seed, identity_id, clip_index, _MOTION]))


def make_clip(identity_id: int, clip_index: int, seed: int, seconds: float, resolution: int,
              partners: Sequence[int] | None = None) -> Clip:
  """Clip `clip_index` of synthetic identity `identity_id`, with its exact ground-truth extras.

  partners: identities the swap source and the re-sync audio are drawn from (never this identity);
  None means the first 16 identities. Pass the identities of this clip's split to keep splits apart.
  extras: 'mouth_openness' [T]; 'head_motion' [T, 7] (motion.Motion.as_array); 'swap_gt_identity'
  (str) and 'swap_gt_frames' / 'swap_gt_landmarks': that identity rendered with this clip's pose,
  blinks and mouth; 'resync_audio_clip' (str), 'resync_audio' [N] (that clip's audio),
  'resync_mouth_openness' [T] and 'resync_gt_frames' / 'resync_gt_landmarks': this identity and
  pose with the mouth driven by the re-sync audio.
  """
  candidates = sorted({int(p) for p in (DEFAULT_PARTNERS if partners is None else partners)}
                      - {identity_id})
  if not candidates:
    raise ValueError(f"identity {identity_id} needs at least one other identity among partners "
                     f"{list(partners or [])} for its swap and re-sync ground truth")
  num_frames = num_frames_for(seconds)
  ident = sample_identity(identity_id, seed)
  audio, openness = clip_speech(identity_id, clip_index, seed, num_frames)
  motion = clip_motion(identity_id, clip_index, seed, num_frames)
  frames, landmarks = render(ident, motion, openness, resolution)

  pick = np.random.default_rng([seed, identity_id, clip_index, _PARTNERS])
  swap_id, resync_id = (candidates[int(i)] for i in pick.integers(len(candidates), size=2))
  swap_frames, swap_landmarks = render(sample_identity(swap_id, seed), motion, openness, resolution)
  resync_audio, resync_openness = clip_speech(resync_id, clip_index, seed, num_frames)
  resync_frames, resync_landmarks = render(ident, motion, resync_openness, resolution)

  clip = Clip(
      clip_id=clip_name(identity_id, clip_index), identity=ident.name, frames=frames, audio=audio,
      landmarks=landmarks,
      crop_to_frame=np.tile(np.eye(2, 3, dtype=np.float32), (num_frames, 1, 1)),
      extras={
          "mouth_openness": openness,
          "head_motion": motion.as_array(),
          "swap_gt_identity": np.array(identity_name(swap_id)),
          "swap_gt_frames": swap_frames,
          "swap_gt_landmarks": swap_landmarks,
          "resync_audio_clip": np.array(clip_name(resync_id, clip_index)),
          "resync_audio": resync_audio,
          "resync_mouth_openness": resync_openness,
          "resync_gt_frames": resync_frames,
          "resync_gt_landmarks": resync_landmarks,
      })
  clip.validate()
  return clip


def synthetic_clips(num_identities: int, clips_per_identity: int, seconds: float, resolution: int,
                    seed: int, identity_groups: Sequence[Sequence[int]] | None = None
                    ) -> Iterator[Clip]:
  """Every clip of the synthetic set, identity by identity, deterministic for `seed`.

  identity_groups: disjoint groups (e.g. the train and the test identities) within which swap and
  re-sync partners are drawn; None: one group of all identities.
  """
  if num_identities < 2:
    raise ValueError(f"the synthetic set needs at least 2 identities (swap partners), got {num_identities}")
  if clips_per_identity < 1:
    raise ValueError(f"clips_per_identity must be >= 1, got {clips_per_identity}")
  groups = [list(range(num_identities))] if identity_groups is None else [list(g) for g in identity_groups]
  group_of = {}
  for group in groups:
    for i in group:
      if not 0 <= i < num_identities:
        raise ValueError(f"identity {i} of identity_groups is outside 0..{num_identities - 1}")
      if i in group_of:
        raise ValueError(f"identity {i} is in more than one of identity_groups")
      group_of[i] = group
  missing = set(range(num_identities)) - set(group_of)
  if missing:
    raise ValueError(f"identities {sorted(missing)} are in none of identity_groups")
  for i in range(num_identities):
    for c in range(clips_per_identity):
      yield make_clip(i, c, seed, seconds, resolution, partners=group_of[i])
