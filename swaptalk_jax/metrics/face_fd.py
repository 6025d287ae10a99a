"""FD-dlib: the FID substitute used when no Inception weights are given. It is labelled as such
everywhere it appears and is NOT comparable with published FID numbers.

Why this one: FID's InceptionV3 weights (pt_inception-2015-12-05) cannot be fetched here, and no
package in reach ships ImageNet weights inside its wheel (checked: torchvision/timm/keras download
at run time; mediapipe 1.2.3's wheel carries no model files). dlib's face-recognition ResNet does
ship its real weights offline (face_recognition_models), so the substitute is the Frechet distance
(metrics/fid.py, the same formula and statistics code as FID) between the 128-d dlib descriptors of
generated and reference face crops. It measures face-identity/appearance distribution shift, not
general image realism; with D = 128 it needs >= 129 frames per side for a full-rank covariance.
"""
from typing import Sequence

import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.metrics import fid, identity_preservation

LABEL = "FD-dlib (FID substitute: dlib face descriptors, not Inception; not comparable to FID)"
DIM = 128


def fd_from_embeddings(generated: np.ndarray, reference: np.ndarray) -> float:
  """Frechet distance of two [N, 128] descriptor sets (each N >= 2)."""
  generated, reference = np.asarray(generated), np.asarray(reference)
  for name, e in (("generated", generated), ("reference", reference)):
    if e.ndim != 2 or e.shape[1] != DIM or e.shape[0] < 2:
      raise UserError(f"FD-dlib: {name} descriptors must be [N >= 2, {DIM}], got {e.shape}")
  mu1, s1 = fid.statistics_of(generated)
  mu2, s2 = fid.statistics_of(reference)
  # Equal sets give ~ -1e-8 from sqrtm's rounding; a distance is never negative.
  return max(0.0, fid.frechet_distance(mu1, s1, mu2, s2))


def fd_dlib(generated_frames, reference_frames,
            face_box: Sequence[float] = identity_preservation.SYNTHETIC_FACE_BOX,
            embedder=None) -> float:
  """FD-dlib between two sets of aligned face crops [N, S, S, 3]."""
  return fd_from_embeddings(identity_preservation.embed_crops(generated_frames, face_box, embedder),
                            identity_preservation.embed_crops(reference_frames, face_box, embedder))
