"""Per-clip quality statistics for the clip table (filters and analysis, not training inputs).

sharpness: variance of the Laplacian of the grey aligned crop (higher = sharper), median over frames.
face_size: median eye-centre distance in original frame pixels (the face's real resolution).
yaw: left/right asymmetry of the nose tip between the jaw sides, (d_left - d_right)/(d_left + d_right),
  0 frontal, +-1 profile; roll: eye-line angle in degrees; pitch: nose tip height between the eye
  line and the mouth (about 0.4-0.5 frontal, smaller looking up, larger looking down).
mouth_open: inner-lip gap over mouth width per frame; its std shows whether the person talks.
"""
import cv2
import numpy as np

from swaptalk_jax.face import landmarks as lm


def sharpness(crops: np.ndarray, every: int = 5) -> float:
  """Median variance of the Laplacian over every `every`-th crop."""
  values = [cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
            for c in crops[::every]]
  return float(np.median(values))


def mouth_openness(landmarks: np.ndarray) -> np.ndarray:
  """[T,68,2] -> [T]: mean inner-lip gap (61-67, 62-66, 63-65) over the mouth-corner distance."""
  gap = np.linalg.norm(landmarks[:, [61, 62, 63]] - landmarks[:, [67, 66, 65]], axis=-1).mean(-1)
  width = np.linalg.norm(landmarks[:, 54] - landmarks[:, 48], axis=-1)
  return gap / np.maximum(width, 1e-6)


def pose(landmarks: np.ndarray) -> dict[str, np.ndarray]:
  """[T,68,2] (frame pixels) -> yaw, pitch, roll proxies [T]."""
  nose = landmarks[:, lm.NOSE_TIP]
  d_left = np.linalg.norm(nose - landmarks[:, 2], axis=-1)
  d_right = np.linalg.norm(nose - landmarks[:, 14], axis=-1)
  yaw = (d_left - d_right) / np.maximum(d_left + d_right, 1e-6)
  p = lm.five_points(landmarks)
  eye_mid, mouth_mid = p[:, :2].mean(1), p[:, 3:].mean(1)
  axis = mouth_mid - eye_mid
  pitch = ((nose - eye_mid) * axis).sum(-1) / np.maximum((axis * axis).sum(-1), 1e-6)
  eye_vec = p[:, 1] - p[:, 0]
  roll = np.degrees(np.arctan2(eye_vec[:, 1], eye_vec[:, 0]))
  return dict(yaw=yaw, pitch=pitch, roll=roll)


def clip_quality(crops: np.ndarray, frame_landmarks: np.ndarray, frame_scale: float) -> dict:
  """The clip table's quality dict from aligned crops and landmarks in decoded-frame pixels."""
  mouth = mouth_openness(frame_landmarks)
  angles = pose(frame_landmarks)
  size = lm.interocular(frame_landmarks) / frame_scale
  return dict(
      sharpness=sharpness(crops), face_size=float(np.median(size)),
      yaw_median=float(np.median(angles["yaw"])), yaw_max_abs=float(np.abs(angles["yaw"]).max()),
      pitch_median=float(np.median(angles["pitch"])),
      roll_max_abs=float(np.abs(angles["roll"]).max()),
      mouth_open_mean=float(mouth.mean()), mouth_open_std=float(mouth.std()),
      mouth_open_max=float(mouth.max()))
