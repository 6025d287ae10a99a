"""Identity loss: 1 - cosine similarity of ArcFace embeddings of two face crops (frozen IResNet).

The project's face crops (256x256, [-1, 1]) are framed more loosely than ArcFace's 112x112 template,
so the loss first cuts a fixed square region out of each crop and resizes it to 112x112. The region
is a config constant, as fractions (top, left, size) of the crop side. The default is exact for the
face module's crops: their 5-point template is ArcFace's, rescaled (face.align.template), so the
region that maps it back onto ArcFace's template is a pure crop + resize (rows/cols ~1:221, 18:238
of a 256 crop). Other alignments (e.g. FFHQ's: pSp uses rows 35:223, columns 32:220 of 256) get
theirs from `region_for_landmarks`.
"""
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.models import arcface

def region_for_landmarks(landmarks_5: np.ndarray, crop_size: int) -> tuple[float, float, float]:
  """Axis-aligned square (top, left, size as crop fractions) that maps the mean 5-point landmarks
  of the crops onto ArcFace's template by scale + translation only (least squares)."""
  points = np.asarray(landmarks_5, np.float64).reshape(-1, 5, 2).mean(0)
  template = arcface.ARCFACE_TEMPLATE_112 / arcface.INPUT_SIZE  # in crop-side units
  points_c, template_c = points - points.mean(0), template - template.mean(0)
  scale = np.sum(points_c * template_c) / np.sum(template_c ** 2)  # pixels per region side
  left, top = points.mean(0) - scale * template.mean(0)
  return float(top / crop_size), float(left / crop_size), float(scale / crop_size)


def region_for_crops(config=None) -> tuple[float, float, float]:
  """The ArcFace region of the face module's aligned crops (`face.align.AlignConfig`)."""
  from swaptalk_jax.face import align  # pylint: disable=import-outside-toplevel  (cv2, scipy)
  config = config or align.AlignConfig()
  return region_for_landmarks(align.template(config), config.size)


DEFAULT_REGION = region_for_crops()


def crop_for_arcface(images: jax.Array, region: Sequence[float] = DEFAULT_REGION) -> jax.Array:
  """[N, H, W, 3] face crops -> [N, 112, 112, 3]: cut `region` and resize (antialiased bilinear)."""
  _, height, width, _ = images.shape
  top, left, size = region
  y0, x0 = int(round(top * height)), int(round(left * width))
  side_h, side_w = int(round(size * height)), int(round(size * width))
  if y0 < 0 or x0 < 0 or y0 + side_h > height or x0 + side_w > width:
    raise ValueError(f"ArcFace region {tuple(region)} leaves the {height}x{width} crop")
  patch = images[:, y0:y0 + side_h, x0:x0 + side_w, :].astype(jnp.float32)
  size_112 = (images.shape[0], arcface.INPUT_SIZE, arcface.INPUT_SIZE, images.shape[-1])
  return jax.image.resize(patch, size_112, method="linear", antialias=True)


def identity_loss(arcface_params: dict, x: jax.Array, y: jax.Array,
                  region: Sequence[float] = DEFAULT_REGION, dtype: Any = jnp.float32) -> jax.Array:
  """Per-example 1 - cos(ArcFace(x), ArcFace(y)) [N] for [-1, 1] NHWC face crops (f32)."""
  params = jax.lax.stop_gradient(arcface_params)
  faces = jnp.concatenate([crop_for_arcface(x, region), crop_for_arcface(y, region)], axis=0)
  embeddings = arcface.arcface_embed(params, faces, dtype=dtype)
  ex, ey = jnp.split(embeddings, 2, axis=0)
  return 1.0 - jnp.sum(ex * ey, axis=-1)


def load_arcface_params(path: str, variant: str | None = None) -> dict:
  """Converted ArcFace params (file from `swaptalk convert arcface`), as device arrays."""
  params, _ = params_file.load_pretrained("arcface", path, variant)
  return jax.tree_util.tree_map(jnp.asarray, params)

