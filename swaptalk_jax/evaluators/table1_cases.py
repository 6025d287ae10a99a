"""Table 1's evaluation cases: one per clip of the synthetic set's test split (held-out identities).

  self:  source photo = frame 0 of another clip of the clip's identity (of the clip itself when the
         identity has one clip); target = the clip; audio = its own. Ground truth = the clip.
  cross: source photo = frame 0 of a clip of another held-out identity A; target = the clip (B);
         audio = a clip of a third held-out identity C (another clip of A when the split has only
         two identities). Ground truth = A on B's head motion with C's mouth.

Every case is written by data_prep/synthetic/demo.write_case (the renderer and seeds that made the
dataset, at a resolution dlib reads), so both settings have an exact ground truth. Choices are
drawn per clip from (seed, identity, clip): a case does not depend on which others are evaluated.
"""
import dataclasses
import pathlib
import re

import numpy as np

from data_prep.synthetic import demo
from swaptalk_jax.data import dataset as dataset_lib
from swaptalk_jax.errors import UserError

SETTINGS = ("self", "cross")
_CLIP_ID = re.compile(r"^syn(\d+)_c(\d+)$")
_CHOICE = 8   # rng purpose key (clips.py uses 1-3, demo.py 7)


@dataclasses.dataclass(frozen=True)
class HeldOutClip:
  clip_id: str
  identity: int
  clip: int


def held_out_clips(data: str) -> tuple[pathlib.Path, list[HeldOutClip]]:
  """The synthetic dataset under `data` and its test split's clips, one clip of every identity
  before the second of any (so --max_clips N spans as many identities as it can)."""
  dataset = demo.dataset_dir(data)
  demo.synthetic_params(dataset)
  table = dataset_lib.load_meta(dataset).clip_tables.get(demo.SPLIT, ())
  if not table:
    raise UserError(f"{dataset} has no {demo.SPLIT!r} clips: prepare it with `swaptalk prepare "
                    "synthetic --test_identities N` (N >= 2)")
  clips = []
  for entry in table:
    match = _CLIP_ID.match(entry.clip_id)
    if match is None:
      raise UserError(f"{dataset}: test clip {entry.clip_id!r} is not a synthetic clip id "
                      "(synNNNNN_cNNN); `swaptalk eval` needs the synthetic set's exact truth")
    clips.append(HeldOutClip(entry.clip_id, int(match.group(1)), int(match.group(2))))
  return dataset, sorted(clips, key=lambda c: (c.clip, c.identity))


def choice(clips: list[HeldOutClip], target: HeldOutClip, setting: str, seed: int) -> dict:
  """demo.pick()'s keys (a, b, c, photo_clip, target_clip, audio_clip) for one target clip."""
  if setting not in SETTINGS:
    raise UserError(f"--setting must be one of {SETTINGS}, got {setting!r}")
  by_identity = {}
  for c in clips:
    by_identity.setdefault(c.identity, []).append(c.clip)
  rng = np.random.default_rng([seed, target.identity, target.clip, _CHOICE])
  b, t = target.identity, target.clip
  if setting == "self":
    others = [k for k in by_identity[b] if k != t]
    photo = int(rng.choice(others)) if others else t
    return dict(a=b, b=b, c=b, photo_clip=photo, target_clip=t, audio_clip=t)
  identities = sorted(by_identity)
  if len(identities) < 2:
    raise UserError("the cross-driven setting needs >= 2 held-out identities; the test split "
                    f"has {len(identities)}")
  a = int(rng.choice([i for i in identities if i != b]))
  photo = int(rng.choice(by_identity[a]))
  thirds = [i for i in identities if i not in (a, b)]
  if thirds:
    c = int(rng.choice(thirds))
    audio = int(rng.choice(by_identity[c]))
  else:   # two identities: another clip of A (never the photo's clip when A has two)
    c = a
    rest = [k for k in by_identity[a] if k != photo] or by_identity[a]
    audio = int(rng.choice(rest))
  return dict(a=a, b=b, c=c, photo_clip=photo, target_clip=t, audio_clip=audio)


def write_case(dataset: pathlib.Path, clips: list[HeldOutClip], target: HeldOutClip, setting: str,
               out: pathlib.Path, seed: int = 0, resolution: int = 128,
               max_frames: int = 0) -> demo.Case:
  """The case of `target` in `setting`, written under out/<clip id> by demo.write_case."""
  return demo.write_case(str(dataset), str(out / target.clip_id), resolution=resolution,
                         choice=choice(clips, target, setting, seed),
                         max_frames=max_frames or None)
