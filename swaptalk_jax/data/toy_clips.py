"""Tiny deterministic clips (moving gradients + tones) for exercising the record and pipeline code.

Not a face dataset: the synthetic talking heads live in `data_prep/synthetic`. These are cheap to
make at any size, carry every field a real clip has, and optionally a frames-like, a per-frame, an
audio and a clip-level extra, so the writer's and readers' handling of each kind is exercised.
"""
import numpy as np

from swaptalk_jax.data.clip import SAMPLE_RATE, Clip
from swaptalk_jax.data.records import SAMPLES_PER_FRAME


def toy_clip(clip_id: str, identity: str, num_frames: int, size: int, seed: int,
             with_extras: bool = False) -> Clip:
  """A clip whose frame t is a colour gradient shifted by t (so frames are distinguishable)."""
  rng = np.random.default_rng(seed)
  colour = rng.uniform(40, 215, size=3)
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
  t = np.arange(num_frames, dtype=np.float32)[:, None, None, None]
  base = colour + 60 * np.stack([xx, yy, 1 - xx], -1)[None]
  frames = np.clip(base + 30 * np.sin(2 * np.pi * (xx[None, ..., None] + t / 25)), 0, 255)
  n = num_frames * SAMPLES_PER_FRAME
  time = np.arange(n, dtype=np.float32) / SAMPLE_RATE
  audio = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 400) * time) * (0.5 + 0.5 * np.sin(6 * time))
  landmarks = rng.uniform(0, size, (num_frames, 68, 2)).astype(np.float32)
  crop_to_frame = np.tile(np.array([[1, 0, 5], [0, 1, 7]], np.float32), (num_frames, 1, 1))
  extras = {}
  if with_extras:
    extras = dict(swap_gt_frames=(255 - frames).astype(np.uint8),
                  mouth_openness=rng.uniform(0, 1, num_frames).astype(np.float32),
                  resync_audio=audio[::-1].astype(np.float32).copy(),
                  swap_gt_identity=np.array(f"{identity}_other", object))
  return Clip(clip_id=clip_id, identity=identity, frames=frames.astype(np.uint8),
              audio=audio.astype(np.float32), landmarks=landmarks, crop_to_frame=crop_to_frame,
              extras=extras)
