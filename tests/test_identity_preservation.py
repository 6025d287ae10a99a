"""metrics/identity_preservation.py on synthetic renders with dlib's real face recogniser: a mildly
degraded copy keeps identity, another identity's frame does not; bad inputs are clear errors."""
import cv2
import numpy as np
import pytest

from data_prep import synthetic
from swaptalk_jax.metrics import identity_preservation as idp

NUM_IDENTITIES = 6
FRAMES = (0, 12, 24)  # frames of each 1 s clip: different poses, mouth and blink states


def _renders(resolution: int):
  """uint8 [I * 2 * 3, S, S, 3] frames of 6 identities x 2 clips x 3 frames, labels, clip ids."""
  images, labels, groups = [], [], []
  for identity in range(NUM_IDENTITIES):
    for clip in range(2):
      c = synthetic.make_clip(identity, clip, 0, 1.0, resolution, partners=range(NUM_IDENTITIES))
      images.append(c.frames[list(FRAMES)])
      labels += [identity] * len(FRAMES)
      groups += [identity * 2 + clip] * len(FRAMES)
  return np.concatenate(images), np.array(labels), np.array(groups)


def _degrade(images: np.ndarray, seed: int = 0) -> np.ndarray:
  """Identity-preserving damage: Gaussian blur (sigma 0.5 px) and noise (std 4/255). dlib is
  blur-sensitive on small crops: at 32 px blur sigma 1 px or JPEG quality 60 already moves the
  descriptor ~0.5-0.9x the distance between identities (measured)."""
  rng = np.random.default_rng(seed)
  blurred = np.stack([cv2.GaussianBlur(image, (0, 0), 0.5) for image in images]).astype(np.float32)
  return np.clip(blurred + rng.normal(0, 4, images.shape), 0, 255).astype(np.uint8)


def _swap_identities(images: np.ndarray) -> np.ndarray:
  """Each image replaced by the same clip/frame slot of the next identity (a wrong-identity recon);
  `_renders` orders images by identity."""
  return np.roll(images, -len(images) // NUM_IDENTITIES, axis=0)


@pytest.fixture(scope="module")
def renders_32():
  return _renders(32)


# Honest floors per resolution (measured, seed 0, 6 identities x 2 clips x 3 frames, chance 0.09):
# 32 px: originals top-1 0.69; kept recon top-1 0.69, distance ratio 0.45; swapped 0.0, 1.01.
# 64 px: originals top-1 0.94; kept recon top-1 0.75, distance ratio 0.55; swapped 0.0, 0.99.
FLOORS = {32: dict(original_top1=0.5, kept_top1=0.5, kept_ratio=0.6),
          64: dict(original_top1=0.8, kept_top1=0.6, kept_ratio=0.7)}


@pytest.mark.parametrize("resolution", [32, pytest.param(64, marks=pytest.mark.slow)])
def test_preserving_vs_swapping_reconstructions(resolution, renders_32):
  images, labels, groups = renders_32 if resolution == 32 else _renders(resolution)
  as_float = images.astype(np.float32) / 127.5 - 1.0  # the [-1, 1] path the trainer uses
  kept = idp.identity_preservation(as_float, _degrade(images).astype(np.float32) / 127.5 - 1.0,
                                   labels, groups)
  swapped = idp.identity_preservation(images, _swap_identities(images), labels, groups)
  print(f"{resolution} px\nkept {kept}\nswapped {swapped}")
  floors = FLOORS[resolution]
  other_groups = len(images) - len(FRAMES)  # the gallery of a query: images of other clips
  assert kept["chance_top1"] == pytest.approx(len(FRAMES) / other_groups)
  assert kept["original_top1"] >= floors["original_top1"]
  assert kept["recon_top1"] >= floors["kept_top1"]
  assert kept["recon_distance_ratio"] < floors["kept_ratio"]
  assert swapped["recon_top1"] <= swapped["chance_top1"]
  assert swapped["recon_distance_ratio"] > 0.85
  assert kept["num_images"] == len(images) and kept["num_identities"] == NUM_IDENTITIES


def test_identical_reconstructions_match_upper_bound(renders_32):
  images, labels, groups = renders_32
  figures = idp.identity_preservation(images[:12], images[:12], labels[:12], groups[:12])
  assert figures["recon_distance"] == 0.0
  assert figures["recon_top1"] == figures["original_top1"]


def test_bad_inputs_are_clear_errors(renders_32):
  images, labels, groups = renders_32
  x = images[:6]
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    idp.identity_preservation(x, x.astype(np.float32), labels[:6])  # 0..255 floats
  with pytest.raises(ValueError, match="NaN"):
    idp.identity_preservation(x, np.full(x.shape, np.nan, np.float32), labels[:6])
  with pytest.raises(ValueError, match="differ in shape"):
    idp.identity_preservation(x, x[:, :16], labels[:6])
  with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
    idp.identity_preservation(x[..., 0], x[..., 0], labels[:6])
  with pytest.raises(ValueError, match="one per image"):
    idp.identity_preservation(x, x, labels[:5])
  with pytest.raises(ValueError, match="at least 2 identities"):
    idp.identity_preservation(x[:3], x[:3], labels[:3])
  with pytest.raises(ValueError, match="no gallery image outside"):  # identity 1 has one clip here
    idp.identity_preservation(images[:9], images[:9], labels[:9], groups[:9])
  with pytest.raises(ValueError, match="face_box"):
    idp.embed_crops(x, face_box=(0.5, 0.2, 0.4, 0.9))


class _CountingEmbedder:
  """A stand-in for dlib's recogniser: the descriptor is the mean colour, calls are counted."""

  def __init__(self):
    self.calls = 0

  def embed(self, image, box):
    self.calls += 1
    return np.resize(image.reshape(-1, 3).mean(0), 128).astype(np.float32)


def test_cached_descriptors_embed_each_content_once():
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
  embedder, cache = _CountingEmbedder(), {}
  first = idp.embed_crops_cached(frames, idp.SYNTHETIC_FACE_BOX, cache, embedder)
  assert embedder.calls == 3
  again = idp.embed_crops_cached(frames.copy(), idp.SYNTHETIC_FACE_BOX, cache, embedder)
  assert embedder.calls == 3 and np.array_equal(first, again)
  # other content is embedded anew; a still (every frame equal) once, repeated
  still = np.repeat(frames[:1], 4, axis=0)
  out = idp.embed_crops_cached(still, idp.SYNTHETIC_FACE_BOX, cache, embedder)
  assert embedder.calls == 4 and out.shape == (4, 128) and np.array_equal(out[0], first[0])
  # no cache: every frame, every time
  idp.embed_crops_cached(frames, idp.SYNTHETIC_FACE_BOX, None, embedder)
  assert embedder.calls == 7


def test_colour_only_keeps_the_colour_layout_and_drops_the_features():
  photo = np.zeros((64, 64, 3), np.uint8)
  photo[:, :32] = (200, 150, 120)                   # skin on the left half, background right
  photo[:, 32:] = (30, 160, 40)
  photo[20:23, 10:13] = 0                           # an "eye": 9 dark pixels in a 16x16 cell
  out = idp.colour_only(photo)
  assert out.shape == photo.shape and out.dtype == np.uint8
  assert np.abs(out[21, 11].astype(int) - (200, 150, 120)).max() <= 10  # no dark eye left
  assert np.abs(out[40:, :8].astype(int) - (200, 150, 120)).max() <= 1   # skin colour kept
  assert np.abs(out[60, 60].astype(int) - (30, 160, 40)).max() <= 1   # background colour kept


def test_face_luminance_reads_the_face_centre_and_splits_at_the_tone_threshold():
  crops = np.zeros((2, 64, 64, 3), np.uint8)        # black border: hair and background
  crops[0, 28:39, 22:42] = 100                      # the face centre of a darker face
  crops[1, 28:39, 22:42] = 200
  lum = idp.face_luminance(crops)
  np.testing.assert_allclose(lum, [100.0, 200.0])
  assert [idp.tone_group(v) for v in lum] == ["darker", "lighter"]
  assert idp.tone_group(idp.TONE_SPLIT) == "lighter"
  assert idp.tone_group(idp.TONE_SPLIT - 1) == "darker"
