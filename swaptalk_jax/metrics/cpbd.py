"""CPBD sharpness (Narvekar & Karam 2011, "A no-reference image blur metric based on the cumulative
probability of blur detection"), the paper's Table 1 sharpness column. Higher is sharper, in [0, 1].

Convention: the one of the `cpbd` PyPI package (what talking-face papers quote), reproduced
number-for-number (tests/test_metrics_cpbd.py: parity with the package on the same images):
- input: grayscale intensities in [0, 255] (RGB is converted with ITU-R 601 luma, as PIL's 'L'
  mode does; the package expects the caller to have done that);
- edges for classifying blocks: skimage's Canny (sigma 1, its default thresholds); edges whose width
  is measured: Octave-style thresholded Sobel (horizontal gradient) with simple thinning;
- edge width (Marziliano): walk left and right from an edge pixel along its row while intensity
  keeps strictly rising/falling (gradient angle quantised to 0 or 180 degrees; other angles are
  not measured), at most 101 steps each way;
- 64x64 blocks (only whole ones; the remainder is ignored) with > 0.2% Canny pixels count; just
  noticeable width 5 px for block contrast <= 50, else 3; P(blur) = 1 - exp(-|w / w_jnb|^3.6);
  CPBD = share of measured edges with P(blur) <= 0.63 (histogram bins 0..63 of round(100 P)).
Faces under 64 px have no whole block: a clear error (upsample them first, and say so).
The reference loops over pixels in Python (~1 s per 256 px frame); this is vectorised per column.
"""
import numpy as np
import scipy.ndimage

from swaptalk_jax.errors import UserError

BLOCK = 64
EDGE_BLOCK_SHARE = 0.002
BETA = 3.6
MAX_STEPS = 100
_SOBEL_ROWS = np.array([[0.25, 0.5, 0.25], [0.0, 0.0, 0.0], [-0.25, -0.5, -0.25]])


def to_gray(image) -> np.ndarray:
  """uint8 RGB [H, W, 3] or gray [H, W] -> float64 [H, W] in [0, 255] (RGB: PIL's 'L' luma,
  rounded to integers as PIL stores it)."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise UserError(f"CPBD expects uint8 images, got {image.dtype} (convert [-1, 1] floats with "
                     "identity_preservation.to_uint8)")
  if image.ndim == 3 and image.shape[-1] == 3:
    r, g, b = (image[..., i].astype(np.float64) for i in range(3))
    # PIL: L = (R*299 + G*587 + B*114) / 1000, rounded half up in integer arithmetic.
    return np.floor((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536.0)
  if image.ndim == 2:
    return image.astype(np.float64)
  raise UserError(f"CPBD expects an image [H, W] or [H, W, 3], got shape {image.shape}")


def _sobel_edges(image: np.ndarray) -> np.ndarray:
  """Octave's thresholded vertical-derivative Sobel with simple thinning (bool [H, W])."""
  kernel = _SOBEL_ROWS / np.sum(np.abs(_SOBEL_ROWS))
  strength = np.square(scipy.ndimage.convolve(image, kernel.T))
  # The package compares the squared strength with 2 sqrt(mean(strength^2)) (kept as is).
  strength[strength <= 2.0 * np.sqrt(np.mean(strength))] = 0.0
  pad = np.pad(strength, 1)
  centre = pad[1:-1, 1:-1]
  along_x = (centre > pad[1:-1, :-2]) & (centre > pad[1:-1, 2:])
  along_y = (centre > pad[:-2, 1:-1]) & (centre > pad[2:, 1:-1])
  return along_x | along_y


def _runs_left(cond: np.ndarray) -> np.ndarray:
  """[H, W] -> count of consecutive True ending at each column, walking left (inclusive)."""
  out = np.zeros(cond.shape, np.int64)
  out[:, 0] = cond[:, 0]
  for c in range(1, cond.shape[1]):
    out[:, c] = (out[:, c - 1] + 1) * cond[:, c]
  return out


def _runs_right(cond: np.ndarray) -> np.ndarray:
  return _runs_left(cond[:, ::-1])[:, ::-1]


def edge_widths(image: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """Marziliano edge widths at `edges` (float64 [H, W], 0 where none is measured)."""
  h, w = image.shape
  gy, gx = np.gradient(image)
  angles = np.where(gx != 0, np.arctan2(gy, gx) * (180 / np.pi), 0.0)  # gx == 0: 0, as the package
  widths = np.zeros(image.shape)
  if not np.any(angles) or w < 3 or h < 3:
    return widths
  quantised = 45.0 * np.round(angles / 45.0)
  # d[:, k] = I[:, k] - I[:, k-1] (k >= 1). Rising edge (angle 0): each step of the left walk needs
  # d[k] > 0 for k = col-1, col-2, ... (k >= 1); the right walk needs d[k] > 0 for k = col+2,
  # col+3, ... (the package skips d[col+1]). Falling edges (+-180) need d < 0 instead.
  d = np.zeros(image.shape)
  d[:, 1:] = image[:, 1:] - image[:, :-1]
  valid = np.zeros(image.shape, bool)
  valid[:, 1:] = True
  run_l_up, run_l_down = _runs_left((d > 0) & valid), _runs_left((d < 0) & valid)
  run_r_up, run_r_down = _runs_right((d > 0) & valid), _runs_right((d < 0) & valid)

  inner = np.zeros(image.shape, bool)
  inner[1:-1, 1:-1] = True
  rows, cols = np.nonzero(edges & inner)
  q = quantised[rows, cols]
  rising, falling = q == 0, (q == 180) | (q == -180)
  right = cols + 2
  has_right = right <= w - 1
  right = np.minimum(right, w - 1)

  def width(run_l, run_r):
    left = np.minimum(run_l[rows, cols - 1], MAX_STEPS) + 1
    rgt = np.where(has_right, np.minimum(run_r[rows, right], MAX_STEPS), 0) + 1
    return left + rgt

  widths[rows, cols] = np.where(rising, width(run_l_up, run_r_up),
                                np.where(falling, width(run_l_down, run_r_down), 0))
  return widths


def cpbd(image) -> float:
  """CPBD of one image (uint8 RGB or gray, at least 64x64)."""
  try:
    from skimage.feature import canny  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("CPBD needs scikit-image (its Canny edges define the convention): "
                      "pip install 'scikit-image>=0.25'") from e
  gray = to_gray(image)
  h, w = gray.shape
  if h < BLOCK or w < BLOCK:
    raise UserError(f"CPBD needs images of at least {BLOCK}x{BLOCK} (one whole block), got "
                     f"{w}x{h}; upsample smaller faces first and state the size")
  canny_edges = canny(gray)
  widths = edge_widths(gray, _sobel_edges(gray))
  jnb_low, jnb_high = 5.0, 3.0
  probabilities = []
  for i in range(h // BLOCK):
    for j in range(w // BLOCK):
      rows, cols = slice(BLOCK * i, BLOCK * (i + 1)), slice(BLOCK * j, BLOCK * (j + 1))
      if np.count_nonzero(canny_edges[rows, cols]) <= BLOCK * BLOCK * EDGE_BLOCK_SHARE:
        continue
      block = widths[rows, cols]
      block = block[block != 0]
      contrast = int(np.max(gray[rows, cols]) - np.min(gray[rows, cols]))
      jnb = jnb_low if contrast <= 50 else jnb_high
      probabilities.append(1.0 - np.exp(-np.abs(block / jnb) ** BETA))
  if not probabilities:
    return 0.0
  p = np.concatenate(probabilities)
  if p.size == 0:
    return 0.0
  buckets = np.round(p * 100).astype(np.int64)
  return float(np.count_nonzero(buckets < 64) / p.size)


def cpbd_frames(frames) -> np.ndarray:
  """float64 [N] CPBD of each frame of uint8 [N, H, W, 3] (or [N, H, W]) frames."""
  frames = np.asarray(frames)
  if frames.ndim not in (3, 4) or frames.shape[0] == 0:
    raise UserError(f"CPBD expects frames [N, H, W(, 3)] with N > 0, got {frames.shape}")
  return np.array([cpbd(f) for f in frames])
