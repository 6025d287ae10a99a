"""Scene cuts from colour-histogram differences between consecutive frames.

Each frame gets a hue-saturation histogram (16 x 8 bins, L1-normalised, from a 64-px thumbnail);
a cut starts frame t when half the L1 distance to frame t-1 exceeds `threshold` (0 = same colours,
1 = disjoint). Talking-head motion stays far below 0.3; cuts between shots typically exceed 0.5.
"""
import cv2
import numpy as np

THUMB = 64


def color_histogram(frame: np.ndarray) -> np.ndarray:
  """RGB uint8 [H,W,3] -> float32 [128] normalised hue-saturation histogram."""
  step = max(1, max(frame.shape[:2]) // (4 * THUMB))  # subsample first: area-resizing 1080p is slow
  frame = frame[::step, ::step]
  h, w = frame.shape[:2]
  s = THUMB / max(h, w)
  small = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
  hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
  hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
  return (hist / max(hist.sum(), 1.0)).astype(np.float32)


class CutDetector:
  """Streaming: `is_cut(frame)` on consecutive frames; True where a new shot begins."""

  def __init__(self, threshold: float = 0.45):
    self.threshold = threshold
    self._prev = None
    self.distances = []

  def is_cut(self, frame: np.ndarray) -> bool:
    hist = color_histogram(frame)
    d = 0.0 if self._prev is None else 0.5 * float(np.abs(hist - self._prev).sum())
    self._prev = hist
    self.distances.append(d)
    return d > self.threshold


def segments(num_frames: int, cuts, keep: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
  """[start, end) runs of `keep` frames that cross no cut and last at least `min_frames`."""
  keep = np.asarray(keep, bool).copy()
  breaks = set(int(c) for c in cuts)
  out, start = [], None
  for t in range(num_frames + 1):
    if start is not None and (t == num_frames or not keep[t] or t in breaks):
      if t - start >= min_frames:
        out.append((start, t))
      start = None
    if t < num_frames and keep[t] and start is None:
      start = t
  return out
