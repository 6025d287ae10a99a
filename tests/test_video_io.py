"""Video I/O: any input -> 25 fps frames + 16 kHz mono on one clock; the mp4 writer.

Expected values come from an independent reading of the same file (PyAV frames with their own
timestamps) or from the composed source signal, not from the code under test.
"""
import os

import av
import numpy as np
import pytest

from reference import media as real_media
from swaptalk_jax.audio.resample import to_mono_16k
from swaptalk_jax.video import decode, write


def _source_frames(path):
  """(timestamps s, RGB frames) as PyAV decodes them, rotation not applied."""
  with av.open(str(path)) as c:
    fr = [(float(f.time), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
  fr.sort(key=lambda x: x[0])
  return np.array([t for t, _ in fr]), [f for _, f in fr]


def _expected_indices(times, fps=25):
  """Output frame k shows the last source frame with timestamp <= k/25 (times rel. to the first)."""
  t = times - times[0]
  duration = t[-1] + np.median(np.diff(t))
  n = int(np.ceil(duration * fps - 1e-6))
  return [int(np.searchsorted(t, k / fps + 1e-6, side="right") - 1) for k in range(n)]


@pytest.mark.parametrize("fps,vfr", [(30, False), (29.97, False), (60, True)])
def test_frames_resampled_to_25fps(tmp_path, fps, vfr):
  path = real_media.talking_video(tmp_path / "v.mp4", seconds=1.5, fps=fps, vfr=vfr, size=(96, 80))
  times, src = _source_frames(path)
  got = decode.read_video(path, with_audio=False).frames
  want = _expected_indices(times)
  if vfr:  # the nominal last-frame duration of a VFR stream is its average period
    assert abs(got.shape[0] - len(want)) <= 1
  else:
    assert got.shape[0] == len(want)
  for k in range(min(len(want), got.shape[0])):
    np.testing.assert_array_equal(got[k], src[want[k]], err_msg=f"output frame {k}")


def test_audio_44k_stereo_to_16k_mono_in_sync(tmp_path):
  path = real_media.talking_video(tmp_path / "v.mp4", seconds=2.0, fps=30, sample_rate=44100,
                                  channels=2, size=(64, 64))
  v = decode.read_video(path)
  assert v.info.audio_rate == 44100 and v.info.audio_channels == 2
  assert v.audio.dtype == np.float32 and v.audio.shape == (v.frames.shape[0] * 640,)
  ref = to_mono_16k(real_media.speech(44100, 2, 2.0), 44100)[:v.audio.shape[0]]
  # AAC is lossy; the waveform still correlates strongly, best at zero lag (A/V sync kept).
  lags = range(-80, 81, 8)
  corr = [np.corrcoef(np.roll(ref, lag)[400:-400], v.audio[400:-400])[0, 1] for lag in lags]
  assert max(corr) > 0.9, corr
  assert abs(list(lags)[int(np.argmax(corr))]) <= 8


def test_48k_audio_and_segment_start(tmp_path):
  path = real_media.talking_video(tmp_path / "v.mp4", seconds=2.0, fps=25, sample_rate=48000,
                                  channels=1, size=(64, 64))
  full = decode.read_video(path)
  part = decode.read_video(path, start=0.8, end=1.6)
  assert part.frames.shape[0] == 20
  np.testing.assert_array_equal(part.frames, full.frames[20:40])
  np.testing.assert_allclose(part.audio, full.audio[20 * 640:40 * 640], atol=2e-3)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_applied(tmp_path, rotation):
  upright = real_media.face_frames(1, (96, 64))[0]
  path = real_media.talking_video(tmp_path / "r.mp4", seconds=0.2, size=(96, 64), rotation=rotation,
                                  audio=False)
  frame = decode.read_video(path, with_audio=False).frames[0]
  assert frame.shape == upright.shape
  err = np.abs(frame.astype(int) - upright).mean()
  wrong = np.abs(np.rot90(frame, 2).astype(int) - upright).mean()
  assert err < 6 and err < wrong / 3, (err, wrong)


def test_odd_size_and_downscale(tmp_path):
  path = write.write_video(str(tmp_path / "odd.mp4"), real_media.face_frames(5, (101, 77)), fps=60)
  v = decode.read_video(str(path), with_audio=False)
  assert v.frames.shape[1:] == (101, 77, 3)
  info = decode.probe(str(path), max_side=50)
  assert info.decoded_size == (38, 50) and abs(info.scale - 50 / 101) < 1e-9
  frames = list(decode.iter_frames(str(path), info=info))
  assert frames[0].shape == (50, 38, 3)


def test_bad_inputs_raise_media_error(tmp_path):
  (tmp_path / "t.mp4").write_text("not a video")
  (tmp_path / "empty.mp4").write_bytes(b"")
  real_media.audio_only(tmp_path / "a.mp4")
  for name, words in [("t.mp4", "cannot open"), ("empty.mp4", "cannot open"),
                      ("a.mp4", "no video stream")]:
    with pytest.raises(decode.MediaError, match=words) as e:
      decode.read_video(str(tmp_path / name))
    assert name in str(e.value)
  path = real_media.talking_video(tmp_path / "silent.mp4", seconds=0.4, audio=False, size=(32, 32))
  with pytest.raises(decode.MediaError, match="no audio stream"):
    decode.read_audio(path)


def test_writer_roundtrip_and_atomic(tmp_path):
  frames = real_media.face_frames(10, (64, 64))
  out = write.write_video(str(tmp_path / "o.mp4"), frames, fps=25,
                           audio=real_media.speech(16000, 1, 0.4), sample_rate=16000)
  v = decode.read_video(out)
  assert v.frames.shape == frames.shape and np.abs(v.frames.astype(int) - frames).mean() < 4
  assert sorted(os.listdir(tmp_path)) == ["o.mp4"]
  with pytest.raises(ValueError, match="no frames"):
    write.write_video(str(tmp_path / "none.mp4"), [], fps=25)
  assert sorted(os.listdir(tmp_path)) == ["o.mp4"]  # nothing partial left behind
