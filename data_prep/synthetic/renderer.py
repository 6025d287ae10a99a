"""Rasterises synthetic talking heads: vectorised numpy, anti-aliased by a one-pixel soft edge on an
approximate signed distance (face units x pixels per unit), each layer computed only inside its
projected bounding box.

Layers back to front: background gradient, hair behind the head, clothes, neck, ears, face (shaded
skin), hair fringe, brows, eyes (sclera, iris, pupil, highlight, lash line), nose (bridge shadow, tip,
nostrils), mouth (lips, dark inner mouth, upper teeth). All shapes come from `geometry`, which also
gives the landmarks.
"""
import math

import numpy as np

from data_prep.synthetic import geometry
from data_prep.synthetic.geometry import DEPTH, FORESHORTENED, View
from data_prep.synthetic.appearance import HAIR_STYLES, Identity
from data_prep.synthetic.motion import Motion

SCLERA = np.array([0.95, 0.93, 0.9], np.float32)
PUPIL = np.array([0.03, 0.03, 0.04], np.float32)
INNER_MOUTH = np.array([0.22, 0.06, 0.07], np.float32)
TEETH = np.array([0.94, 0.92, 0.86], np.float32)
_PIXELS = np.arange(4096, dtype=np.float32)  # pixel centre coordinates


def _ellipse_distance(u, v, a, b):
  """Approximate signed distance to the ellipse (u/a)^2 + (v/b)^2 = 1 (first-order, exact on it)."""
  k = np.sqrt((u / a) ** 2 + (v / b) ** 2)
  grad = np.sqrt((u / (a * a)) ** 2 + (v / (b * b)) ** 2)
  return (k - 1.0) * k / np.maximum(grad, 1e-6)


class _Canvas:
  """One frame being painted; layers paint into the part of the frame their shape can cover."""

  def __init__(self, image: np.ndarray, view: View):
    self.image = image
    self.view = view
    self.size = image.shape[0]
    self.edge = float(view.scale)  # pixels per face unit: distance -> alpha ramp of one pixel
    self._maps = {}

  def _layer_maps(self, layer: str):
    """(forward, inverse) affine maps of a layer as nested tuples of floats (cached per frame)."""
    if layer not in self._maps:
      z, foreshorten = DEPTH[layer], layer in FORESHORTENED
      forward = geometry.project_affine(self.view, z, foreshorten)
      inverse = geometry.unproject_affine(self.view, z, foreshorten)
      self._maps[layer] = (forward.tolist(), inverse.astype(np.float32))
    return self._maps[layer]

  def region(self, layer: str, u0: float, u1: float, v0: float, v1: float):
    """Pixel slices covering the face-unit box [u0,u1]x[v0,v1] of `layer`, and its (u, v) grids."""
    (fx, fy), inverse = self._layer_maps(layer)
    xs = [fx[0] * u + fx[1] * v + fx[2] for u in (u0, u1) for v in (v0, v1)]
    ys = [fy[0] * u + fy[1] * v + fy[2] for u in (u0, u1) for v in (v0, v1)]
    x0, x1 = max(math.floor(min(xs)) - 1, 0), min(math.ceil(max(xs)) + 2, self.size)
    y0, y1 = max(math.floor(min(ys)) - 1, 0), min(math.ceil(max(ys)) + 2, self.size)
    if x0 >= x1 or y0 >= y1:
      return None
    px = _PIXELS[x0:x1][None, :]
    py = _PIXELS[y0:y1][:, None]
    u = inverse[0, 0] * px + inverse[0, 1] * py + inverse[0, 2]
    v = inverse[1, 0] * px + inverse[1, 1] * py + inverse[1, 2]
    return (slice(y0, y1), slice(x0, x1)), u, v

  def alpha(self, distance):
    """Coverage in [0, 1]: 1 inside, 0 outside, a one-pixel linear ramp across the edge."""
    a = 0.5 - distance * self.edge
    return np.minimum(np.maximum(a, 0.0, out=a), 1.0, out=a)

  def paint(self, box, alpha, colour, opacity: float = 1.0) -> None:
    """Blends `colour` ([3] or [h, w, 3]) over the box with coverage alpha [h, w]."""
    target = self.image[box]
    if opacity != 1.0:
      alpha = alpha * opacity
    target += alpha[..., None] * (colour - target)


def background(identity: Identity, resolution: int) -> np.ndarray:
  """float32 [S, S, 3] vertical gradient between the identity's two colours, slightly vignetted."""
  t = np.linspace(0.0, 1.0, resolution, dtype=np.float32)
  grad = identity.background_top[None, :] + t[:, None] * (identity.background_bottom -
                                                         identity.background_top)[None, :]
  r = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
  vignette = 1.0 - 0.15 * (r[None, :] ** 2)
  return (grad[:, None, :] * vignette[:, :, None]).astype(np.float32)


def _hair_back(c: _Canvas, ident: Identity) -> None:
  style = HAIR_STYLES[ident.hair_style]
  if style == "bald":
    return
  vol, top = ident.hair_volume, ident.face_top
  a, b, centre = ident.face_width + 0.6 * vol, top - 0.1 + vol, -0.1
  bottom = 1.9 if style == "long" else centre + b
  r = c.region("hair_back", -a - 0.3, a + 0.3, -top - vol - 0.5, bottom)
  if r is None:
    return
  box, u, v = r
  d = _ellipse_distance(u, v - centre, a, b)
  if style == "long":  # a curtain of hair down to the shoulders
    half_w = a + 0.05
    d_curtain = np.maximum(np.abs(u) - half_w, np.maximum(centre - v, v - 1.9))
    d = np.minimum(d, d_curtain)
  elif style == "bun":
    d = np.minimum(d, np.sqrt(u ** 2 + (v + top + vol + 0.1) ** 2) - 0.22)
  c.paint(box, c.alpha(d), ident.hair * 0.8)


def _body(c: _Canvas, ident: Identity) -> None:
  """The neck (in shadow under the jaw), then clothes on the shoulders."""
  half = 0.55 * ident.face_width
  r = c.region("neck", -half - 0.3, half + 0.3, 0.2, 2.0)
  if r is not None:
    box, u, v = r
    d = np.maximum(np.abs(u) - half - 0.15 * np.maximum(v - 1.1, 0.0) ** 2, 0.2 - v)
    shade = np.clip(0.72 + 0.12 * (v - 0.9), 0.72, 0.85)[..., None]
    c.paint(box, c.alpha(d), ident.skin * shade)
  r = c.region("neck", -2.2, 2.2, 1.25, 3.5)
  if r is not None:
    box, u, v = r
    c.paint(box, c.alpha(_ellipse_distance(u, v - 2.35, 1.7, 1.1)), ident.clothes)


def _face(c: _Canvas, ident: Identity, openness: float) -> None:
  chin_v = float(geometry.chin(ident, openness))
  for side in (-1.0, 1.0):  # ears, behind the face outline
    centre_u, centre_v = side * ident.face_width * 0.97, ident.eye_height + 0.14
    r = c.region("outline", centre_u - 0.12, centre_u + 0.12, centre_v - 0.2, centre_v + 0.2)
    if r is not None:
      box, u, v = r
      c.paint(box, c.alpha(_ellipse_distance(u - centre_u, v - centre_v, 0.09, 0.17)), ident.skin * 0.88)
  w = ident.face_width
  r = c.region("outline", -w, w, -ident.face_top, chin_v)
  if r is None:
    return
  box, u, v = r
  half_w = geometry.outline_half_width(ident, v, chin_v)
  d = _ellipse_distance(u, v, half_w, np.where(v > 0, chin_v, ident.face_top))
  light_u = u - 0.35 * c.view.sin_yaw + 0.15
  shade = 1.06 - 0.24 * ((light_u / w) ** 2 + ((v + 0.15) / ident.face_top) ** 2)
  c.paint(box, c.alpha(d), ident.skin * np.clip(shade, 0.7, 1.06)[..., None])


def _hair_front(c: _Canvas, ident: Identity) -> None:
  if HAIR_STYLES[ident.hair_style] == "bald":
    return
  vol, top = ident.hair_volume, ident.face_top
  a, b, centre = ident.face_width + 0.5 * vol, top - 0.1 + vol, -0.1
  r = c.region("hair_front", -a, a, centre - b, ident.hairline + 0.4)
  if r is None:
    return
  box, u, v = r
  hairline = ident.hairline + 0.4 * u ** 2 + 0.05 * u
  d = np.maximum(_ellipse_distance(u, v - centre, a, b), v - hairline)
  strands = 0.93 + 0.07 * np.sin(u * 28.0 + 4.0 * v * v)
  c.paint(box, c.alpha(d), ident.hair * strands[..., None])


def _brows(c: _Canvas, ident: Identity) -> None:
  for side in (-1, 1):
    cu = side * ident.eye_spacing
    cv = ident.eye_height - ident.brow_raise
    length = ident.brow_length
    r = c.region("brows", cu - length - 0.03, cu + length + 0.03, cv - 0.15, cv + 0.1)
    if r is None:
      continue
    box, u, v = r
    x = (u - cu) / length
    centre, half = geometry.brow_curve(ident, np.clip(x, -1.0, 1.0), side)
    d = np.maximum(np.abs(v - centre) - half, (np.abs(x) - 1.0) * length)
    c.paint(box, c.alpha(d), ident.brows)


def _eyes(c: _Canvas, ident: Identity, blink: float) -> None:
  gaze = 0.25 * ident.eye_width * float(np.clip(-c.view.sin_yaw * 2.0, -1.0, 1.0))
  for side in (-1, 1):
    cu, cv, w = side * ident.eye_spacing, ident.eye_height, ident.eye_width
    r = c.region("eyes", cu - w - 0.03, cu + w + 0.03, cv - ident.eye_open - 0.03,
                 cv + ident.eye_open + 0.03)
    if r is None:
      continue
    box, u, v = r
    x = (u - cu) / w
    upper, lower = geometry.eye_curves(ident, np.clip(x, -1.0, 1.0), blink)
    d_eye = np.maximum(np.maximum(upper - v, v - lower), (np.abs(x) - 1.0) * w * 0.5)
    inside = c.alpha(d_eye)
    c.paint(box, inside, SCLERA)
    d_iris = np.sqrt((u - cu - gaze) ** 2 + (v - cv) ** 2) - ident.iris_radius
    c.paint(box, np.minimum(inside, c.alpha(d_iris)), ident.iris)
    c.paint(box, np.minimum(inside, c.alpha(d_iris + 0.55 * ident.iris_radius)), PUPIL)
    d_glint = np.sqrt((u - cu - gaze + 0.3 * ident.iris_radius) ** 2 +
                      (v - cv + 0.3 * ident.iris_radius) ** 2) - 0.22 * ident.iris_radius
    c.paint(box, np.minimum(inside, c.alpha(d_glint)), SCLERA, opacity=0.9)
    d_lash = np.maximum(np.abs(v - upper) - 0.008, (np.abs(x) - 1.05) * w)
    c.paint(box, c.alpha(d_lash), ident.brows * 0.5, opacity=0.9)


def _nose(c: _Canvas, ident: Identity) -> None:
  top, length, width = ident.eye_height, ident.nose_length, ident.nose_width
  tip_v = top + length
  side = 1.0 if c.view.sin_yaw <= 0 else -1.0  # the shadow falls on the side turned away
  r = c.region("nose_bridge", -width, width, top, tip_v)
  if r is not None:
    box, u, v = r
    d = _ellipse_distance(u - side * 0.35 * width, v - (top + 0.6 * length), 0.022, 0.42 * length)
    c.paint(box, c.alpha(d), ident.skin * 0.8, opacity=0.45)
  r = c.region("nose_tip", -width, width, tip_v - 0.07, tip_v + 0.07)
  if r is not None:
    box, u, v = r
    c.paint(box, c.alpha(_ellipse_distance(u, v - tip_v, 0.85 * width, 0.05)), ident.skin * 1.04,
            opacity=0.8)
  r = c.region("nose_base", -1.3 * width, 1.3 * width, tip_v, tip_v + 0.08)
  if r is not None:
    box, u, v = r
    c.paint(box, c.alpha(_ellipse_distance(u, v - tip_v - 0.05, width, 0.018)), ident.skin * 0.78,
            opacity=0.6)
    for s in (-1, 1):
      d = _ellipse_distance(u - s * 0.5 * width, v - tip_v - 0.032, 0.028, 0.014)
      c.paint(box, c.alpha(d), ident.skin * 0.42)


def _mouth(c: _Canvas, ident: Identity, openness: float) -> None:
  half_w = float(geometry.mouth_half_width(ident, openness))
  gap = float(geometry.mouth_gap(ident, openness))
  cv = ident.mouth_height
  r = c.region("mouth", -half_w - 0.03, half_w + 0.03, cv - ident.upper_lip - 0.5 * gap - 0.03,
               cv + ident.lower_lip + 1.5 * gap + 0.03)
  if r is None:
    return
  box, u, v = r
  x = u / half_w
  upper_outer, upper_inner, lower_inner, lower_outer = geometry.mouth_curves(
      ident, np.clip(x, -1.0, 1.0), openness)
  d_lips = np.maximum(np.maximum(upper_outer - v, v - lower_outer), (np.abs(x) - 1.0) * half_w)
  lip_colour = np.where((v < cv)[..., None], ident.lips * 0.88, ident.lips)
  c.paint(box, c.alpha(d_lips), lip_colour)
  d_inner = np.maximum(np.maximum(upper_inner - v, v - lower_inner), (np.abs(x) - 0.88) * half_w)
  inner = c.alpha(d_inner)
  if gap * c.edge < 0.5:  # lips closer than a pixel apart: the inner mouth fades out, exactly shut at 0
    inner *= 2.0 * gap * c.edge
  c.paint(box, inner, INNER_MOUTH)
  d_teeth = np.maximum(v - (upper_inner + np.minimum(0.025, 0.6 * gap)), (np.abs(x) - 0.55) * half_w)
  c.paint(box, np.minimum(inner, c.alpha(d_teeth)), TEETH)


def render_frame(ident: Identity, view: View, openness: float, blink: float,
                 backdrop: np.ndarray) -> np.ndarray:
  """float32 [S, S, 3] in [0, 1]: one frame painted over a copy of `backdrop`."""
  c = _Canvas(backdrop.copy(), view)
  _hair_back(c, ident)
  _body(c, ident)
  _face(c, ident, openness)
  _hair_front(c, ident)
  _brows(c, ident)
  _eyes(c, ident, blink)
  _nose(c, ident)
  _mouth(c, ident, openness)
  return c.image


def render(identity: Identity, motion: Motion, mouth_openness: np.ndarray,
           resolution: int) -> tuple[np.ndarray, np.ndarray]:
  """Frames uint8 [T, S, S, 3] of `identity` moving as `motion` with the given mouth openness [T],
  and the 68 dlib-order landmarks float32 [T, 68, 2] (pixel x, y) of the rendered face."""
  openness = np.asarray(mouth_openness, np.float32)
  if openness.shape != (motion.num_frames,):
    raise ValueError(f"mouth_openness shape {openness.shape} != ({motion.num_frames},) frames of motion")
  if not 16 <= resolution <= _PIXELS.shape[0]:
    raise ValueError(f"resolution {resolution} is outside the renderer's 16..{_PIXELS.shape[0]} px")
  backdrop = background(identity, resolution)
  all_views = geometry.views(motion, resolution)
  frames = np.empty((motion.num_frames, resolution, resolution, 3), np.uint8)
  for t in range(motion.num_frames):
    image = render_frame(identity, all_views.frame(t), float(openness[t]), float(motion.blink[t]),
                         backdrop)
    np.clip(image * 255.0 + 0.5, 0, 255, out=image)
    frames[t] = image
  return frames, geometry.landmarks(identity, motion, openness, resolution)
