"""Identity columns of Table 1 with dlib's face recogniser (not the ArcFace used in training):
Consistency (PAPER_NOTES §5 default: mean cosine similarity x100 of a clip's per-frame identity
embeddings to their mean) and ID retrieve (top-1 retrieval of the intended identity).

Descriptors come from identity_preservation.embed_crops (aligned crops, fixed face box, upsampled to
dlib's 150-px chip), so both columns share one embedding path with the VQGAN identity figures.
"""
from typing import Sequence

import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.metrics import identity_preservation


def consistency(embeddings) -> float:
  """x100 mean cosine similarity of each row of [T, D] embeddings to the rows' mean (T >= 2)."""
  e = np.asarray(embeddings, np.float64)
  if e.ndim != 2 or e.shape[0] < 2:
    raise UserError(f"consistency needs [T, D] embeddings of at least 2 frames, got {e.shape}")
  if not np.all(np.isfinite(e)):
    raise UserError("consistency: embeddings contain NaN or Inf")
  mean = e.mean(0)
  norms = np.linalg.norm(e, axis=1) * np.linalg.norm(mean)
  if np.any(norms == 0):
    raise UserError("consistency: a zero embedding has no direction")
  return float(100.0 * np.mean(e @ mean / norms))


def clip_consistency(frames, face_box: Sequence[float] = identity_preservation.SYNTHETIC_FACE_BOX,
                     embedder=None) -> tuple[float, np.ndarray]:
  """(Consistency, [T, 128] dlib descriptors) of one clip's aligned face crops [T, S, S, 3]."""
  embeddings = identity_preservation.embed_crops(frames, face_box, embedder)
  return consistency(embeddings), embeddings


def id_retrieve(queries, query_labels, gallery, gallery_labels) -> np.ndarray:
  """bool [Q]: is each query's nearest gallery descriptor (Euclidean, dlib's metric) of the query's
  label? The gallery holds the candidate identities (e.g. one descriptor per source photo, or
  several per identity); a query label missing from the gallery is an error."""
  queries, gallery = np.asarray(queries, np.float64), np.asarray(gallery, np.float64)
  query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
  if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
    raise UserError(f"id_retrieve: expected [Q, D] queries and [G, D] gallery, got "
                     f"{queries.shape} and {gallery.shape}")
  if query_labels.shape != (len(queries),) or gallery_labels.shape != (len(gallery),):
    raise UserError(f"id_retrieve: one label per descriptor: {query_labels.shape} labels for "
                     f"{len(queries)} queries, {gallery_labels.shape} for {len(gallery)} gallery items")
  missing = sorted({str(l) for l in query_labels} - {str(l) for l in gallery_labels})
  if missing:
    raise UserError(f"id_retrieve: identities {missing} have no descriptor in the gallery")
  distances = np.linalg.norm(queries[:, None] - gallery[None, :], axis=-1)
  return gallery_labels[np.argmin(distances, axis=1)] == query_labels
