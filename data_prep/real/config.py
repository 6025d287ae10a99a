"""Settings of real-footage preparation (one frozen dataclass: picklable for worker processes)."""
import dataclasses
from typing import Callable

from swaptalk_jax.face.align import AlignConfig
from swaptalk_jax.face.detect import DetectorConfig
from swaptalk_jax.face.track import TrackerConfig

# (aligned crops uint8 [T,S,S,3], audio float32 [T*640] 16 kHz) -> (offset_frames, confidence).
# offset_frames > 0: the sound of frame t is at audio frame t + offset (audio late).
SyncFn = Callable[..., tuple[int, float]]


@dataclasses.dataclass(frozen=True)
class PrepConfig:
  crop_size: int = 256               # aligned crop side (512 for the high-resolution variant)
  max_side: int = 1280               # decode frames no larger than this (long side, pixels)
  min_face: int = 64                 # smallest face kept, original frame pixels (box side)
  detect_every: int = 5              # detector every N frames, landmark tracking between
  smooth_sigma: float = 1.5          # temporal smoothing of the alignment points (frames)
  scene_threshold: float = 0.45      # histogram distance that starts a new shot
  min_seconds: float = 1.0           # shorter face segments are dropped
  max_seconds: float | None = None   # longer segments are split (None: keep whole)
  jpeg_quality: int = 95
  test_percent: float = 10.0         # identities held out for 'test' where no official split exists
  sync_fn: SyncFn | str | None = None  # callable or "module:attr"; None: no sync check (no weights here)
  max_sync_offset: int = 15          # frames; larger detected offsets drop the clip
  min_sync_confidence: float = 0.0   # clips below are dropped when sync_fn is set

  @property
  def min_frames(self) -> int:
    return max(1, int(round(self.min_seconds * 25)))

  def tracker(self) -> TrackerConfig:
    return TrackerConfig(detect_every=self.detect_every,
                         detector=DetectorConfig(min_face=self.min_face))

  def align(self) -> AlignConfig:
    return AlignConfig(size=self.crop_size, smooth_sigma=self.smooth_sigma)
