"""The face model shared by the renderer and the landmarks: feature curves in face units and the
camera that maps them to pixels, so landmarks lie on the rendered features by construction.

Camera (orthographic, per frame): a point (u, v) of a feature layer at depth z goes to
  u' = u cos(yaw) + z sin(yaw),  v' = v cos(pitch) + z sin(pitch)      (foreshortened layers)
  u' = u + z sin(yaw),           v' = v + z sin(pitch)                  (silhouette layers: outline,
                                                                         hair, neck keep their width)
  (x, y) = centre + s * R(roll) (u', v'),   s = 0.34 * S * scale pixels per face unit.
Pixel coordinates put the centre of pixel (row i, column j) at (x, y) = (j, i).
"""
import dataclasses

import numpy as np

from data_prep.synthetic.appearance import Identity
from data_prep.synthetic.motion import Motion

FACE_SCALE = 0.34 # pixels per face unit, as a fraction of the frame size
CENTRE_Y = 0.52   # face centre height, as a fraction of the frame size

# Depth of each layer (face units towards the camera) and whether it foreshortens with yaw/pitch.
DEPTH = {"hair_back": -0.25, "neck": -0.1, "outline": 0.0, "hair_front": 0.15, "eyes": 0.5,
         "brows": 0.55, "mouth": 0.6, "nose_bridge": 0.75, "nose_base": 0.85, "nose_tip": 0.95}
FORESHORTENED = {"eyes", "brows", "mouth", "nose_bridge", "nose_base", "nose_tip"}


@dataclasses.dataclass(frozen=True)
class View:
  """Camera parameters for one frame (scalars) or many (arrays broadcasting against points)."""
  cx: np.ndarray
  cy: np.ndarray
  scale: np.ndarray  # pixels per face unit
  cos_roll: np.ndarray
  sin_roll: np.ndarray
  cos_yaw: np.ndarray
  sin_yaw: np.ndarray
  cos_pitch: np.ndarray
  sin_pitch: np.ndarray

  def frame(self, t: int) -> "View":
    """The scalar view of frame t."""
    return View(*(float(getattr(self, f.name)[t]) for f in dataclasses.fields(self)))


def views(motion: Motion, resolution: int) -> View:
  """Per-frame cameras ([T] arrays, float64) for `motion` at `resolution` pixels."""
  m = {f.name: np.asarray(getattr(motion, f.name), np.float64) for f in dataclasses.fields(motion)}
  size = float(resolution)
  return View(
      cx=(size - 1) / 2 + m["shift_x"] * size, cy=CENTRE_Y * size + m["shift_y"] * size,
      scale=FACE_SCALE * size * m["scale"], cos_roll=np.cos(m["roll"]), sin_roll=np.sin(m["roll"]),
      cos_yaw=np.cos(m["yaw"]), sin_yaw=np.sin(m["yaw"]), cos_pitch=np.cos(m["pitch"]),
      sin_pitch=np.sin(m["pitch"]))


def project(view: View, u, v, z, foreshorten):
  """Face-unit points of layers at depth z to pixel (x, y); all arguments broadcast."""
  cu = np.where(foreshorten, view.cos_yaw, 1.0)
  cv = np.where(foreshorten, view.cos_pitch, 1.0)
  up = u * cu + z * view.sin_yaw
  vp = v * cv + z * view.sin_pitch
  x = view.cx + view.scale * (view.cos_roll * up - view.sin_roll * vp)
  y = view.cy + view.scale * (view.sin_roll * up + view.cos_roll * vp)
  return x, y


def project_affine(view: View, z: float, foreshorten: bool) -> np.ndarray:
  """[2, 3] matrix P with (x, y) = P @ (u, v, 1): `project` for one layer of one frame."""
  cu = view.cos_yaw if foreshorten else 1.0
  cv = view.cos_pitch if foreshorten else 1.0
  s, cr, sr = view.scale, view.cos_roll, view.sin_roll
  du, dv = z * view.sin_yaw, z * view.sin_pitch
  return np.array([[s * cr * cu, -s * sr * cv, view.cx + s * (cr * du - sr * dv)],
                   [s * sr * cu, s * cr * cv, view.cy + s * (sr * du + cr * dv)]])


def unproject_affine(view: View, z: float, foreshorten: bool) -> np.ndarray:
  """[2, 3] matrix A with (u, v) = A @ (x, y, 1): the inverse of `project` for one layer."""
  cu = view.cos_yaw if foreshorten else 1.0
  cv = view.cos_pitch if foreshorten else 1.0
  a, b = view.cos_roll / (view.scale * cu), view.sin_roll / (view.scale * cu)
  c, d = -view.sin_roll / (view.scale * cv), view.cos_roll / (view.scale * cv)
  return np.array([[a, b, -a * view.cx - b * view.cy - z * view.sin_yaw / cu],
                   [c, d, -c * view.cx - d * view.cy - z * view.sin_pitch / cv]])


# --- Feature curves (face units). `openness` and `blink` may be arrays broadcasting with x.


def mouth_gap(identity: Identity, openness):
  """Half-gap between the inner lips."""
  return identity.max_gap * np.asarray(openness)


def chin(identity: Identity, openness):
  """Lower half-height of the face: the jaw drops as the mouth opens."""
  return identity.face_bottom + 1.2 * mouth_gap(identity, openness)


def outline_half_width(identity: Identity, v, chin_v):
  """Half-width of the face outline at height v; the jaw narrows quadratically to the chin."""
  return identity.face_width * (1.0 - identity.jaw_taper * np.clip(v / chin_v, 0.0, 1.0) ** 2)


def mouth_half_width(identity: Identity, openness):
  return identity.mouth_width * (1.0 - 0.12 * np.asarray(openness))


def mouth_curves(identity: Identity, x, openness):
  """(upper outer, upper inner, lower inner, lower outer) lip heights at x in [-1, 1] of the width."""
  g = mouth_gap(identity, openness)
  inner = np.clip(1.0 - (x / 0.88) ** 2, 0.0, 1.0)
  lip = np.sqrt(np.clip(1.0 - x ** 2, 0.0, 1.0))
  bow = 1.0 - 0.3 * np.exp(-(x / 0.12) ** 2)
  c = identity.mouth_height
  upper_inner = c - 0.5 * g * inner
  lower_inner = c + 1.5 * g * inner
  return (upper_inner - identity.upper_lip * lip * bow, upper_inner, lower_inner,
          lower_inner + identity.lower_lip * lip)


def eye_half_height(identity: Identity, blink):
  return identity.eye_open * (1.0 - 0.97 * np.asarray(blink))


def eye_curves(identity: Identity, x, blink):
  """(upper lid, lower lid) heights at x in [-1, 1] of the eye's width (almond shape)."""
  h = eye_half_height(identity, blink)
  shape = np.clip(1.0 - x ** 2, 0.0, 1.0)
  return identity.eye_height - h * shape, identity.eye_height + 0.75 * h * shape


def brow_curve(identity: Identity, x, side: int):
  """(centre line height, half-thickness) of a brow at x in [-1, 1]; side -1 image-left, +1 right."""
  outward = x * side  # -1 at the inner end, +1 at the outer end
  centre = (identity.eye_height - identity.brow_raise - identity.brow_arch * (1.0 - x ** 2)
            - identity.brow_tilt * outward)
  half = identity.brow_thickness * (0.6 - 0.25 * outward) * np.sqrt(np.clip(1.0 - x ** 4, 0.0, 1.0))
  return centre, half


# --- The 68 landmarks (dlib order).
_EYE_X = np.array([-1.0, -0.33, 0.33, 1.0, 0.33, -0.33])
_EYE_UPPER = np.array([False, True, True, False, False, False])
_MOUTH_OUTER_X = np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0, 0.6, 0.25, 0.0, -0.25, -0.6])
_MOUTH_INNER_X = np.array([-0.88, -0.4, 0.0, 0.4, 0.88, 0.4, 0.0, -0.4])
_JAW_ANGLE = np.linspace(-0.1, np.pi + 0.1, 17)


def canonical_landmarks(identity: Identity, openness: np.ndarray, blink: np.ndarray):
  """Face-unit landmarks for T frames: u, v float64 [T, 68]; depth z and foreshortening mask [68]."""
  openness = np.asarray(openness, np.float64)[:, None]
  blink = np.asarray(blink, np.float64)[:, None]
  t = openness.shape[0]
  us, vs, zs, fs = [], [], [], []

  def add(u, v, layer):
    u, v = np.broadcast_arrays(np.asarray(u, np.float64), np.asarray(v, np.float64))
    u, v = np.broadcast_to(u, (t, u.shape[-1])), np.broadcast_to(v, (t, v.shape[-1]))
    us.append(u)
    vs.append(v)
    zs.append(np.full(u.shape[-1], DEPTH[layer]))
    fs.append(np.full(u.shape[-1], layer in FORESHORTENED))

  # Jaw 0-16: from the image-left side under the chin to the image-right side, on the outline.
  chin_v = chin(identity, openness)
  jaw_v = np.where(np.sin(_JAW_ANGLE) > 0, chin_v, identity.face_top) * np.sin(_JAW_ANGLE)
  add(-outline_half_width(identity, jaw_v, chin_v) * np.cos(_JAW_ANGLE), jaw_v, "outline")
  # Brows 17-21 (image left), 22-26 (image right), each listed left to right.
  for side in (-1, 1):
    x = np.linspace(-1.0, 1.0, 5)
    add(side * identity.eye_spacing + x * identity.brow_length, brow_curve(identity, x, side)[0][None],
        "brows")
  # Nose bridge 27-30 (top to tip), base 31-35 (left to right).
  tip_v = identity.eye_height + identity.nose_length
  add(np.zeros(4), identity.eye_height + np.array([0.0, 0.33, 0.67, 1.0]) * identity.nose_length,
      "nose_bridge")
  add(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * identity.nose_width,
      tip_v + np.array([0.03, 0.045, 0.055, 0.045, 0.03]), "nose_base")
  # Eyes 36-41 (image left), 42-47 (image right): corner, two upper, corner, two lower.
  for side in (-1, 1):
    upper, lower = eye_curves(identity, _EYE_X[None], blink)
    add(side * identity.eye_spacing + _EYE_X * identity.eye_width,
        np.where(_EYE_UPPER, upper, lower), "eyes")
  # Mouth 48-59 outer, 60-67 inner (corner, upper left to right, corner, lower right to left).
  half_width = mouth_half_width(identity, openness)
  uo, ui, li, lo = mouth_curves(identity, _MOUTH_OUTER_X[None], openness)
  outer_upper = np.arange(12) <= 6
  add(_MOUTH_OUTER_X * half_width, np.where(outer_upper, uo, lo), "mouth")
  uo, ui, li, lo = mouth_curves(identity, _MOUTH_INNER_X[None], openness)
  inner_upper = np.arange(8) <= 4
  add(_MOUTH_INNER_X * half_width, np.where(inner_upper, ui, li), "mouth")
  return (np.concatenate(us, axis=1), np.concatenate(vs, axis=1), np.concatenate(zs),
          np.concatenate(fs))


def landmarks(identity: Identity, motion: Motion, openness: np.ndarray,
              resolution: int) -> np.ndarray:
  """float32 [T, 68, 2] pixel (x, y) of the 68 landmarks of the rendered face in every frame."""
  u, v, z, foreshorten = canonical_landmarks(identity, openness, motion.blink)
  view = views(motion, resolution)
  per_frame = View(*(getattr(view, f.name)[:, None] for f in dataclasses.fields(view)))
  x, y = project(per_frame, u, v, z[None], foreshorten[None])
  return np.stack([x, y], axis=-1).astype(np.float32)
