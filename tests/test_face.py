"""Face module: similarity fit, template, detection + landmarks on a real photo, tracking against
per-frame detection, crop and feathered paste-back, anti-aliased crops of large faces."""
import cv2
import numpy as np
import pytest
import skimage.data

from reference import media as real_media
from swaptalk_jax.face import align, detect, landmarks, paste, track

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def astronaut():
  return skimage.data.astronaut()


@pytest.fixture(scope="module")
def predictor():
  return landmarks.LandmarkPredictor()


def test_fit_similarity_recovers_transform():
  rng = np.random.default_rng(0)
  src = rng.uniform(0, 100, (5, 2))
  ang, s, t = 0.3, 1.7, np.array([12.0, -5.0])
  rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
  dst = src @ rot.T + t
  m = align.fit_similarity(src, dst, [1, 1, 1, 0.5, 0.5])
  np.testing.assert_allclose(m, np.concatenate([rot, t[:, None]], 1), atol=1e-9)
  np.testing.assert_allclose(align.apply_affine(align.invert_affine(m), dst), src, atol=1e-9)


@pytest.mark.parametrize("size", [256, 512])
def test_template_puts_eyes_up_and_mouth_down(size):
  tpl = align.template(align.AlignConfig(size=size))
  eyes, nose, mouth = tpl[:2], tpl[2], tpl[3:]
  assert (eyes[:, 1] < size / 2).all() and (mouth[:, 1] > size / 2).all() and nose[1] > size / 2
  np.testing.assert_allclose(np.linalg.norm(eyes[1] - eyes[0]), 0.27 * size, rtol=1e-9)
  np.testing.assert_allclose(eyes[:, 0].mean(), size / 2, atol=1e-9)


def test_detect_and_landmarks_on_real_face(astronaut, predictor):
  boxes = detect.detect_faces(astronaut)
  assert boxes.shape[0] == 1
  x0, y0, x1, y1 = boxes[0, :4]
  # The astronaut's face (Eileen Collins) lies around x 170-260, y 70-180 in the 512 px photo.
  assert 140 < x0 < 200 and 220 < x1 < 290 and 40 < y0 < 110 and 150 < y1 < 220, boxes
  pts = predictor(astronaut, boxes[0])
  five = landmarks.five_points(pts)
  assert five[0, 0] < five[1, 0]                      # eye on the image's left first
  assert five[:2, 1].max() < five[2, 1] < five[3:, 1].min()   # eyes above nose above mouth
  inside = (pts[:, 0] > x0 - 20) & (pts[:, 0] < x1 + 20) & (pts[:, 1] > y0 - 20) & (pts[:, 1] < y1 + 30)
  assert inside.all()
  # The eye landmarks sit on dark pixels (pupil/lashes) relative to the cheek below them.
  gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY).astype(float)
  eye_val = np.mean([gray[int(y), int(x)] for x, y in five[:2]])
  cheek = np.mean([gray[int(y + 0.6 * (five[2, 1] - y)), int(x)] for x, y in five[:2]])
  assert eye_val < cheek - 20


def test_min_face_filter(astronaut):
  assert detect.detect_faces(astronaut, detect.DetectorConfig(min_face=200)).shape[0] == 0
  small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # face ~50 px
  assert detect.detect_faces(small, detect.DetectorConfig(min_face=32)).shape[0] == 1
  assert detect.detect_faces(small, detect.DetectorConfig(min_face=80)).shape[0] == 0


def test_tracking_matches_per_frame_detection(predictor):
  frames = real_media.face_frames(30, (160, 144), fps=25)
  cfg = lambda n: track.TrackerConfig(detect_every=n, detector=detect.DetectorConfig(min_face=40))
  dense = track.track_video(frames, cfg(1), predictor=predictor)
  sparse = track.track_video(frames, cfg(5), predictor=predictor)
  assert dense.valid.all() and sparse.valid.all()
  assert sparse.detected.sum() == 6 and dense.detected.sum() == 30
  iod = landmarks.interocular(dense.landmarks).mean()
  err = np.linalg.norm(sparse.landmarks - dense.landmarks, axis=-1).mean()
  assert err < 0.05 * iod, (err, iod)


def test_track_validity_rules():
  lm = np.zeros((6, 68, 2), np.float32)
  t = track.FaceTrack(lm, np.array([1, -1, -1, 2, -1, -1]), np.array([1, 0, 0, 1, 0, 0], bool))
  # Frames between a one-face detection and a two-face detection are not trusted.
  np.testing.assert_array_equal(t.valid, [True, False, False, False, False, False])
  t = track.FaceTrack(lm, np.array([1, -1, -1, 1, -1, -1]), np.array([1, 0, 0, 1, 0, 0], bool))
  assert t.valid.all()


def test_crop_paste_roundtrip(astronaut, predictor):
  pts = predictor(astronaut, detect.detect_faces(astronaut)[0])
  m = align.frame_to_crop_transforms(pts[None])[0]
  crop = align.warp_to_crop(astronaut, m, 256)
  crop_pts = align.apply_affine(m, pts)
  tpl = align.template()
  assert np.abs(landmarks.five_points(crop_pts)[:3] - tpl[:3]).max() < 8  # aligned to the template
  back = paste.paste_back(astronaut, crop, paste.crop_to_frame_map(m))
  inner = paste.crop_to_frame_map(m) @ np.array([128, 128, 1.0])
  cx, cy = inner.astype(int)
  diff = np.abs(back.astype(int) - astronaut)
  assert diff[cy - 30:cy + 30, cx - 30:cx + 30].mean() < 6       # face region comes back
  assert diff[:, :60].max() == 0                                 # far outside: untouched
  edited = paste.paste_back(astronaut, np.zeros_like(crop), paste.crop_to_frame_map(m))
  assert edited[cy, cx].max() < 5 and (edited[:, :60] == astronaut[:, :60]).all()


def test_large_face_crop_is_antialiased(astronaut, predictor):
  pts = predictor(astronaut, detect.detect_faces(astronaut)[0])
  m = align.frame_to_crop_transforms(pts[None])[0]
  ref = align.warp_to_crop(astronaut, m, 128)
  big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
  scale_up = np.array([[0.25, 0, -0.375], [0, 0.25, -0.375], [0, 0, 1]])  # big px -> photo px
  m_big = m @ scale_up
  crop = align.warp_to_crop(big, m_big, 128)
  naive = cv2.warpAffine(big, m_big, (128, 128), flags=cv2.INTER_LINEAR)
  err = np.abs(crop.astype(int) - ref).mean()
  naive_err = np.abs(naive.astype(int) - ref).mean()
  assert err < 4 and err < naive_err, (err, naive_err)


def test_missing_model_file_is_clear():
  with pytest.raises(FileNotFoundError, match="does not exist"):
    landmarks.LandmarkPredictor("/nonexistent/shape_predictor_68_face_landmarks.dat")


def test_iou():
  got = detect.iou(np.array([0, 0, 10, 10.0]), np.array([[0, 0, 10, 10, 1], [5, 5, 15, 15, 1],
                                                          [20, 20, 30, 30, 1]]))
  np.testing.assert_allclose(got, [1.0, 25 / 175, 0.0], rtol=1e-6)
