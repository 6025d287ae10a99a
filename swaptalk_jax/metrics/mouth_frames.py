"""Mouth opening of aligned face crops, straight from the pixels: dlib's 68-point landmarks on each
crop upscaled (bicubic, `lmd.as_crops`) to 256 px inside a fixed face box, then the inner-lip gap
over the interocular distance (`mouth.mouth_opening`, 0 when the lips touch).

The one opening measure of the lip-sync eval (trainers/lipsync.py `mouth_openings`: Table V's mouth
correlation and silent opening, benchmarks/lipsync.py, benchmarks/lipsync_silence.py).

Why this one (benchmarks/mouth_opening_validation.py, the synthetic set's 600 held-out re-sync
ground-truth frames at the chain's 32 px, Pearson with the renderer's exact openness, pooled over
frames): dlib inner lips +0.925 (per clip mean +0.943, min +0.857), dlib outer lips +0.866, the
mouth-box darkness proxy it replaces +0.104; on the same frames through the chain's micro VQGAN
(the domain of every decoded output) +0.587 inner, +0.567 outer, -0.069 darkness: the VQGAN's own
loss of the mouth bounds what any decoded candidate can score.
"""
from typing import Sequence

import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.metrics import identity_preservation, lmd, mouth

LIPS = "inner"


def crop_openings(frames, face_box: Sequence[float] = identity_preservation.SYNTHETIC_FACE_BOX,
                  lips: str = LIPS, predictor=None) -> np.ndarray:
  """Aligned face crops [N, S, S, 3] (uint8, or float in [-1, 1]) -> float64 [N] mouth opening
  (lip gap / interocular distance), dlib landmarks in the fixed `face_box` (fractions of the crop)."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
    raise UserError(f"mouth opening: expected face crops [N, S, S, 3] with N > 0, got "
                     f"{frames.shape}")
  points, _ = lmd.crop_landmarks(frames, face_box, name="mouth-opening crops", predictor=predictor)
  return mouth.mouth_opening(points, lips)
