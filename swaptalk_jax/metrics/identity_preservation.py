"""Does a reconstruction keep the identity of its original? Measured with dlib's face recogniser
(face/recognition.py), a network independent of anything we train.

Inputs are face crops [N, H, W, 3]: uint8, or float in [-1, 1] (the VQGAN's range; floats are
clipped to it as an image display would, values beyond +-1.5 are an error). The recogniser sees the
face through a fixed box, a fraction of the crop: crops are aligned, so the face sits at a known
place. SYNTHETIC_FACE_BOX is where dlib's own HOG detector finds the face on the synthetic renders
(mean of 92 detections on 100 frames of 20 identities at 256 px); the full crop instead lets the
5-point aligner drift onto hair and background and separates identities less well (measured at
64 px, 10 identities, seeds 0-2, retrieval across clips: top-1 0.93-0.96 with the full crop, 0.94-1.00
with this box; ~0.7-0.9 either way at 32 px). Crops under 150 px are upsampled (bicubic) first.

On the cartoon faces dlib's absolute scale does not apply (different synthetic identities are
~0.5 apart, under its 0.6 "same person" threshold), so the figures are relative: distances next to
the between-identity scale, and nearest-neighbour retrieval next to its upper bound and chance.
dlib needs facial detail: Gaussian blur of sigma 1 px moves a 32 or 64 px crop's descriptor ~0.9x
the between-identity distance (measured; top-1 0.60 -> 0.35 at 32 px, 0.94 -> 0.46 at 64 px), so
reconstructions that keep colours and hair but lose eyes, brows and mouth score near chance.
"""
import functools
import hashlib
from typing import Sequence

import cv2
import numpy as np

from swaptalk_jax.face import recognition as identity_lib

SYNTHETIC_FACE_BOX = (0.26, 0.35, 0.72, 0.81)  # (x0, y0, x1, y1) as fractions of the crop side
MIN_SIDE = identity_lib.CHIP_SIZE
FLOAT_RANGE_LIMIT = 1.5


COLOUR_GRID = 4   # cells per side of the colour-only baseline


def colour_only(photo: np.ndarray, grid: int = COLOUR_GRID) -> np.ndarray:
  """uint8 [S, S, 3] -> the same size keeping only its colour layout: area-averaged to grid x
  grid cells, then scaled back bilinearly (skin, hair and background colours; no eyes, nose or
  mouth). The identity baseline a blurred swap must beat to carry more than colour."""
  size = photo.shape[:2][::-1]
  cells = cv2.resize(photo, (grid, grid), interpolation=cv2.INTER_AREA)
  return cv2.resize(cells, size, interpolation=cv2.INTER_LINEAR)


# Skin-tone groups of the synthetic faces: the face-centre luminance (0-255) of an aligned crop.
# The held-out renders fall at 91-129 and 146-211, so 140 splits them without a borderline case;
# dlib's mouth landmarks and the micro VQGAN both read the darker group less well
# (docs/lipsync_table_v.md, "by skin tone"), so figures are worth reading per group.
TONE_SPLIT = 140.0


def face_luminance(frames: np.ndarray) -> np.ndarray:
  """uint8 aligned face crops [N, S, S, 3] -> [N] mean luminance (0-255) of the face centre
  (cheeks and nose: rows 45-60 %, columns 35-65 % of the crop)."""
  s = frames.shape[1]
  return frames[:, int(s * 0.45):int(s * 0.6), int(s * 0.35):int(s * 0.65)].astype(
      np.float64).mean((1, 2, 3))


def tone_group(luminance: float, split: float = TONE_SPLIT) -> str:
  return "darker" if luminance < split else "lighter"


@functools.lru_cache(maxsize=1)
def default_embedder() -> identity_lib.DlibIdentityEmbedder:
  """One dlib embedder per process (loading the predictors takes about a second)."""
  return identity_lib.DlibIdentityEmbedder()


def to_uint8(images, name: str = "images") -> np.ndarray:
  """[N, H, W, 3] uint8, or float in [-1, 1] -> uint8 [N, H, W, 3]."""
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
    raise ValueError(f"{name}: expected RGB images [N, H, W, 3] with N > 0, got {images.shape}")
  if images.dtype == np.uint8:
    return images
  if not np.issubdtype(images.dtype, np.floating):
    raise ValueError(f"{name}: expected uint8 or float in [-1, 1], got dtype {images.dtype}")
  if not np.all(np.isfinite(images)):
    raise ValueError(f"{name}: contains NaN or Inf")
  lo, hi = float(images.min()), float(images.max())
  if lo < -FLOAT_RANGE_LIMIT or hi > FLOAT_RANGE_LIMIT:
    raise ValueError(f"{name}: float images must be in [-1, 1], got values in [{lo:.3g}, {hi:.3g}] "
                     "(pass uint8 for [0, 255] images)")
  return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def embed_crops(images, face_box: Sequence[float] = SYNTHETIC_FACE_BOX,
                embedder: identity_lib.DlibIdentityEmbedder | None = None) -> np.ndarray:
  """float32 [N, 128] dlib descriptors of aligned face crops, the face taken in `face_box`."""
  images = to_uint8(images)
  x0, y0, x1, y1 = (float(v) for v in face_box)
  if not 0.0 <= x0 < x1 <= 1.0 or not 0.0 <= y0 < y1 <= 1.0:
    raise ValueError(f"face_box must be fractions (x0, y0, x1, y1) with 0 <= x0 < x1 <= 1 and "
                     f"0 <= y0 < y1 <= 1, got {tuple(face_box)}")
  embedder = embedder or default_embedder()
  out = []
  for image in images:
    h, w = image.shape[:2]
    scale = max(1.0, MIN_SIDE / min(h, w))
    if scale > 1.0:
      h, w = int(round(h * scale)), int(round(w * scale))
      image = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
    box = np.array([x0 * w, y0 * h, x1 * w, y1 * h], np.float32)
    out.append(embedder.embed(image, box))
  return np.stack(out)


def embed_crops_cached(images, face_box: Sequence[float], cache: dict | None,
                       embedder: identity_lib.DlibIdentityEmbedder | None = None) -> np.ndarray:
  """`embed_crops` through a cache keyed by the images' content (None: no cache). Tables score
  the same frames under several rows (the target, a baseline equal to it) and one descriptor costs
  ~85 ms a frame on a CPU; a still (every frame equal: a copy baseline) is embedded once."""
  images = to_uint8(images)
  if cache is None:
    return embed_crops(images, face_box, embedder)
  key = (hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest(), images.shape,
         tuple(float(v) for v in face_box))
  if key not in cache:
    if (images == images[:1]).all():
      cache[key] = np.repeat(embed_crops(images[:1], face_box, embedder), len(images), axis=0)
    else:
      cache[key] = embed_crops(images, face_box, embedder)
  return cache[key]


def check_retrievable(query_labels: np.ndarray, gallery_labels: np.ndarray,
                      allowed: np.ndarray) -> np.ndarray:
  """Raises unless every query has an allowed gallery item of its label; returns same-label [Q, G]."""
  same = query_labels[:, None] == gallery_labels[None, :]
  found = np.any(allowed & same, axis=1)
  if not np.all(found):
    missing = sorted({str(l) for l in query_labels[~found]})
    raise ValueError(f"identities {missing} have no gallery image outside the query's own group: "
                     "retrieval needs at least two groups (frames or clips) per identity")
  return same


def nearest_neighbour_top1(queries: np.ndarray, gallery: np.ndarray, query_labels: np.ndarray,
                           gallery_labels: np.ndarray, allowed: np.ndarray) -> tuple[float, float]:
  """(top-1 accuracy, chance) of retrieving each query's label as its nearest allowed gallery
  descriptor. allowed: bool [Q, G]. Chance is the expected accuracy of a uniformly random allowed
  gallery item (the share of allowed items with the query's label, averaged over queries)."""
  same = check_retrievable(query_labels, gallery_labels, allowed)
  distances = identity_lib.distance(queries[:, None], gallery[None, :])
  nearest = np.argmin(np.where(allowed, distances, np.inf), axis=1)
  top1 = float(np.mean(gallery_labels[nearest] == query_labels))
  chance = float(np.mean(np.sum(allowed & same, axis=1) / np.sum(allowed, axis=1)))
  return top1, chance


def identity_preservation(originals, reconstructions, labels, groups=None,
                          face_box: Sequence[float] = SYNTHETIC_FACE_BOX,
                          embedder: identity_lib.DlibIdentityEmbedder | None = None) -> dict:
  """Identity figures of reconstructions against their originals (same order, same shape).

  labels [N]: identity of each original. groups [N] (optional, e.g. clip ids): retrieval never
  uses a gallery image from the query's own group, so a neighbouring frame of the same clip does
  not count as recognising the person; default: each image its own group (only itself excluded).
  Returns floats: recon_distance (original <-> its own reconstruction), same_identity_distance and
  different_identity_distance (between originals of other groups: natural variation and the
  scale), recon_distance_ratio (recon / different-identity distance), recon_top1 (reconstructions
  retrieved against the originals), original_top1 (originals against originals: the upper bound),
  chance_top1, and the counts num_images, num_identities.
  """
  originals = to_uint8(originals, "originals")
  reconstructions = to_uint8(reconstructions, "reconstructions")
  if originals.shape != reconstructions.shape:
    raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} "
                     "differ in shape")
  n = originals.shape[0]
  labels = np.asarray(labels)
  groups = np.arange(n) if groups is None else np.asarray(groups)
  if labels.shape != (n,) or groups.shape != (n,):
    raise ValueError(f"labels {labels.shape} and groups {groups.shape} must be [{n}], one per image")
  num_identities = len(np.unique(labels))
  if num_identities < 2:
    raise ValueError(f"identity retrieval needs at least 2 identities, got {num_identities}")

  other_group = groups[:, None] != groups[None, :]
  same_label = check_retrievable(labels, labels, other_group)

  e_orig = embed_crops(originals, face_box, embedder)
  e_recon = embed_crops(reconstructions, face_box, embedder)
  between = identity_lib.distance(e_orig[:, None], e_orig[None, :])
  recon_top1, chance = nearest_neighbour_top1(e_recon, e_orig, labels, labels, other_group)
  original_top1, _ = nearest_neighbour_top1(e_orig, e_orig, labels, labels, other_group)
  recon_distance = float(np.mean(identity_lib.distance(e_orig, e_recon)))
  different = float(np.mean(between[~same_label]))
  return dict(
      recon_distance=recon_distance,
      same_identity_distance=float(np.mean(between[same_label & other_group])),
      different_identity_distance=different,
      recon_distance_ratio=recon_distance / different,
      recon_top1=recon_top1,
      original_top1=original_top1,
      chance_top1=chance,
      num_images=n,
      num_identities=num_identities,
  )
