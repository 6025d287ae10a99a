"""The in-memory form of one prepared clip: what every data source (synthetic, HDTF, VoxCeleb2,
a folder of videos) produces and the one record writer consumes."""
import dataclasses
from typing import Any, Mapping

import numpy as np

FPS = 25
SAMPLE_RATE = 16000


@dataclasses.dataclass
class Clip:
  """One clip after alignment, at 25 fps video and 16 kHz mono audio.

  frames: uint8 [T, S, S, 3] aligned face crops (RGB).
  audio: float32 [N] mono 16 kHz waveform covering the frames (N ~= T * 640).
  landmarks: float32 [T, 68, 2] in crop pixel coordinates (x, y), dlib's 68-point order.
  crop_to_frame: float32 [T, 2, 3] affine map from crop pixels to original frame pixels (paste-back).
  clip_id, identity: strings; identity decides the train/test split.
  extras: optional named arrays (e.g. the synthetic set's exact ground-truth renders).
  meta: JSON-serialisable facts about the clip for the clip table (source file, quality stats,
    sync offset/confidence, ...).
  """
  clip_id: str
  identity: str
  frames: np.ndarray
  audio: np.ndarray
  landmarks: np.ndarray
  crop_to_frame: np.ndarray
  extras: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
  meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def num_frames(self) -> int:
    return int(self.frames.shape[0])

  def validate(self) -> None:
    """Raises ValueError naming the clip and the inconsistent field."""
    t = self.num_frames
    if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
      raise ValueError(f"clip {self.clip_id}: frames must be uint8 [T,S,S,3], got "
                       f"{self.frames.dtype} {self.frames.shape}")
    if self.landmarks.shape != (t, 68, 2):
      raise ValueError(f"clip {self.clip_id}: landmarks shape {self.landmarks.shape} != {(t, 68, 2)}")
    if self.crop_to_frame.shape != (t, 2, 3):
      raise ValueError(f"clip {self.clip_id}: crop_to_frame shape {self.crop_to_frame.shape} != {(t, 2, 3)}")
    if self.audio.ndim != 1:
      raise ValueError(f"clip {self.clip_id}: audio must be mono [N], got {self.audio.shape}")
