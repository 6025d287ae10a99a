"""Seeded appearance (face geometry, colours, hair, background) and voice of one synthetic identity.

Geometry is in face units: the face centre is the origin, u points right and v down in the image,
the face's half-width is about 0.75 and its half-height about 1.
"""
import dataclasses

import numpy as np

# Skin tones from dark to light (RGB in [0, 1]); an identity interpolates between neighbours.
_SKIN_TONES = np.array([
    [0.36, 0.24, 0.17], [0.55, 0.37, 0.26], [0.72, 0.52, 0.39], [0.85, 0.66, 0.53],
    [0.94, 0.78, 0.68], [0.98, 0.87, 0.80]], np.float32)
_HAIR_TONES = np.array([
    [0.06, 0.05, 0.05], [0.22, 0.14, 0.08], [0.45, 0.30, 0.16], [0.70, 0.55, 0.30],
    [0.60, 0.22, 0.10], [0.62, 0.62, 0.62]], np.float32)
_IRIS_TONES = np.array([
    [0.25, 0.15, 0.08], [0.45, 0.30, 0.15], [0.20, 0.40, 0.65], [0.30, 0.50, 0.30],
    [0.45, 0.50, 0.55]], np.float32)

HAIR_STYLES = ("short", "long", "bun", "bald")


@dataclasses.dataclass(frozen=True)
class Identity:
  """Everything that makes one synthetic person look and sound like themselves."""
  name: str
  # Face outline: half-width, upper/lower half-heights, how much the jaw narrows towards the chin.
  face_width: float
  face_top: float
  face_bottom: float
  jaw_taper: float
  # Colours, RGB float32 [3] in [0, 1].
  skin: np.ndarray
  hair: np.ndarray
  iris: np.ndarray
  lips: np.ndarray
  brows: np.ndarray
  background_top: np.ndarray
  background_bottom: np.ndarray
  clothes: np.ndarray
  # Eyes (centres at u = +-eye_spacing, v = eye_height), half-sizes and iris radius.
  eye_spacing: float
  eye_height: float
  eye_width: float
  eye_open: float
  iris_radius: float
  # Brows: height above the eye centre, half-length, thickness, arch and tilt.
  brow_raise: float
  brow_length: float
  brow_thickness: float
  brow_arch: float
  brow_tilt: float
  # Nose: length from the eye line to the tip, half-width of the tip.
  nose_length: float
  nose_width: float
  # Mouth: centre height, half-width, lip thicknesses, half-gap when fully open.
  mouth_height: float
  mouth_width: float
  upper_lip: float
  lower_lip: float
  max_gap: float
  # Hair: style index into HAIR_STYLES, hairline height at the centre, volume beyond the head.
  hair_style: int
  hairline: float
  hair_volume: float
  # Voice: mean pitch (Hz) and vocal-tract scale of the formants (1 = adult male reference).
  pitch_hz: float
  formant_scale: float


def _mix(palette: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """A colour between two neighbouring palette entries, with a little per-channel jitter."""
  pos = rng.uniform(0, len(palette) - 1)
  i = min(int(pos), len(palette) - 2)
  colour = palette[i] + (pos - i) * (palette[i + 1] - palette[i])
  return np.clip(colour + rng.normal(0, 0.02, 3), 0.0, 1.0).astype(np.float32)


def _background(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Two colours of a vertical gradient: a random hue, mid saturation and brightness."""
  hue = rng.uniform(0, 1)
  base = 0.5 + 0.35 * np.cos(2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3])))
  top = base * rng.uniform(0.75, 1.0)
  bottom = base * rng.uniform(0.35, 0.7)
  return top.astype(np.float32), bottom.astype(np.float32)


def identity_name(identity_id: int) -> str:
  """'syn00003' for identity 3."""
  return f"syn{identity_id:05d}"


def sample_identity(identity_id: int, seed: int) -> Identity:
  """The identity `identity_id` of the synthetic set drawn with `seed` (same inputs, same person)."""
  rng = np.random.default_rng([seed, identity_id, 0x1D])
  skin = _mix(_SKIN_TONES, rng)
  lips = np.clip(skin * np.array([0.95, 0.62, 0.62]) + np.array([0.12, 0.0, 0.02]) +
                 rng.normal(0, 0.03, 3), 0, 1).astype(np.float32)
  hair = _mix(_HAIR_TONES, rng)
  top, bottom = _background(rng)
  eye_height = rng.uniform(-0.14, -0.04)
  style = int(rng.integers(len(HAIR_STYLES)))
  female_voice = rng.uniform() < 0.5
  return Identity(
      name=identity_name(identity_id),
      face_width=rng.uniform(0.66, 0.82),
      face_top=rng.uniform(0.92, 1.05),
      face_bottom=rng.uniform(0.95, 1.12),
      jaw_taper=rng.uniform(0.1, 0.4),
      skin=skin, hair=hair, iris=_mix(_IRIS_TONES, rng), lips=lips,
      brows=np.clip(hair * 0.8, 0, 1).astype(np.float32),
      background_top=top, background_bottom=bottom,
      clothes=rng.uniform(0.1, 0.9, 3).astype(np.float32),
      eye_spacing=rng.uniform(0.25, 0.33),
      eye_height=eye_height,
      eye_width=rng.uniform(0.11, 0.15),
      eye_open=rng.uniform(0.045, 0.07),
      iris_radius=rng.uniform(0.042, 0.055),
      brow_raise=rng.uniform(0.12, 0.18),
      brow_length=rng.uniform(0.13, 0.19),
      brow_thickness=rng.uniform(0.018, 0.04),
      brow_arch=rng.uniform(0.0, 0.06),
      brow_tilt=rng.uniform(-0.05, 0.05),
      nose_length=rng.uniform(0.26, 0.36),
      nose_width=rng.uniform(0.07, 0.11),
      mouth_height=rng.uniform(0.50, 0.60),
      mouth_width=rng.uniform(0.17, 0.25),
      upper_lip=rng.uniform(0.025, 0.045),
      lower_lip=rng.uniform(0.035, 0.065),
      max_gap=rng.uniform(0.09, 0.13),
      hair_style=style,
      hairline=eye_height - rng.uniform(0.42, 0.55),
      hair_volume=rng.uniform(0.06, 0.2),
      pitch_hz=rng.uniform(170, 240) if female_voice else rng.uniform(90, 140),
      formant_scale=rng.uniform(1.08, 1.2) if female_voice else rng.uniform(0.92, 1.05),
  )
