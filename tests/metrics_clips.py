"""Small synthetic clips with exact ground truth for the metric tests (rendered once per process).

Each clip: 64-px aligned crops, the renderer's exact 68-point landmarks and mouth openness, and its
exact swap / re-sync ground-truth renders (data_prep.synthetic.clips.make_clip).
"""
import functools

SECONDS = 1.2  # 30 frames at 25 fps
RESOLUTION = 64


@functools.lru_cache(maxsize=None)
def synthetic_clip(identity: int, clip_index: int = 0):
  from data_prep.synthetic.clips import make_clip
  return make_clip(identity, clip_index, seed=0, seconds=SECONDS, resolution=RESOLUTION,
                   partners=range(6))
