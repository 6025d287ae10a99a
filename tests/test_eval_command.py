"""`swaptalk eval` (evaluators/table1.py): Table 1 on the synthetic test split through the one
inference path, on the session fixtures (the trained micro VQGAN `tiny_vqgan` on `stage_data`: 2
held-out identities x 2 clips; swap and lip-sync runs with random params over it, as
test_export.py makes them). Nothing is trained here.

The self-driven command runs on 2 clips x 10 frames: the files are written, the table has its rows
and columns with finite values in range and intervals around the means, the no-swap row is the
ceiling it must be when the target is the truth, and one clip's output equals what `swaptalk
generate` writes for the same inputs -- as its swap-only cascade stage equals `swaptalk generate
--no-sync`. Cross-driven cases are checked without generation.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from core_helpers import assert_one_error_line
from data_prep.synthetic import demo
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.evaluators import cascades, table1, table1_cases

FRAMES = 10
ROWS = list(table1.ROWS.values())
COLUMNS = ["fid", "fd_dlib", "ssim", "cpbd", "lmd", "lse_c", "lse_d", "id_retrieve", "consistency",
           "gt_ssim", "gt_l1", "mouth_corr"]


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu")


def _swaptalk(args, cwd):
  return subprocess.Popen([sys.executable, "-m", "swaptalk_jax.cli", *args], cwd=cwd, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def run_dir(tiny_vqgan, tmp_path_factory):
  """<run>/{vqgan,swap,lipsync}: the trained micro VQGAN and random-param swap/lip-sync runs."""
  import generate_helpers
  run = tmp_path_factory.mktemp("eval_chain")
  shutil.copytree(tiny_vqgan.workdir, run / "vqgan")
  generate_helpers.random_swap_run(run / "swap", str(run / "vqgan"))
  generate_helpers.random_lipsync_run(run / "lipsync", str(run / "vqgan"))
  return run


@pytest.fixture(scope="module")
def self_eval(run_dir, stage_data, tmp_path_factory, repo_root):
  out = tmp_path_factory.mktemp("eval_self")
  proc = subprocess.run([sys.executable, "-m", "swaptalk_jax.cli", "eval", "--run", str(run_dir),
                         "--data", str(stage_data), "--setting", "self", "--out", str(out),
                         "--max_clips", "2", "--max_frames", str(FRAMES), "--resamples", "100"],
                        cwd=repo_root, env=_env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out, proc.stdout


def test_self_driven_table(self_eval):
  out, stdout = self_eval
  for ext in ("md", "csv", "json"):
    assert (out / f"table1_self.{ext}").is_file()
  doc = json.loads((out / "table1_self.json").read_text())
  assert list(doc["rows"]) == ROWS and doc["setting"] == "self"
  md = (out / "table1_self.md").read_text()
  assert md in stdout and all(f"| {row} |" in md for row in ROWS)
  # The per-clip figures again, grouped by the source photo's skin tone.
  tones = doc["meta"]["by_source_tone"]
  assert sum(tones["counts"].values()) == 2 and "### By the source's skin tone" in md
  for case in doc["meta"]["cases"]:
    assert case["source_tone"] == ("darker" if case["source_luminance"] < tones["split"]
                                   else "lighter")
  chain_mouth = doc["rows"][table1.ROWS["chain"]]["mouth_corr"]["per_clip"]
  for group, mean in tones["means"][table1.ROWS["chain"]]["mouth_corr"].items():
    members = [c["target_clip"] for c in doc["meta"]["cases"] if c["source_tone"] == group]
    assert mean == pytest.approx(np.mean([chain_mouth[c] for c in members]))
  assert "not run (no weights: --inception_weights" in md
  assert "not run (no weights: --syncnet_weights" in md
  clips = [c["target_clip"] for c in doc["meta"]["cases"]]
  assert len(clips) == 2 and len({c[:8] for c in clips}) == 2      # one clip of each identity
  for row, cells in doc["rows"].items():
    assert set(cells) == set(COLUMNS), row
    for key in ("fid", "lse_c", "lse_d"):
      assert cells[key]["skipped"].startswith("not run (no weights"), (row, key)
    for key, cell in cells.items():
      if cell["skipped"]:
        continue
      assert np.isfinite([cell["value"], cell["low"], cell["high"]]).all(), (row, key)
      assert cell["low"] - 1e-9 <= cell["value"] <= cell["high"] + 1e-9, (row, key)
      if cell["per_clip"] is not None:
        assert sorted(cell["per_clip"]) == sorted(clips), (row, key)
        assert cell["value"] == pytest.approx(np.mean(list(cell["per_clip"].values())))
    for key in ("ssim", "gt_ssim", "cpbd", "gt_l1"):
      assert -1.0 <= cells[key]["value"] <= 1.0, (row, key)
    for key in ("id_retrieve", "consistency"):
      assert 0.0 <= cells[key]["value"] <= 100.0, (row, key)
    assert -1.0 <= cells["mouth_corr"]["value"] <= 1.0 and cells["lmd"]["value"] >= 0
  # Self-driven, the target IS the truth: the no-swap row is the ceiling.
  no_swap = doc["rows"][table1.ROWS["no_swap"]]
  assert no_swap["ssim"]["value"] == pytest.approx(1.0) and no_swap["lmd"]["value"] == 0
  assert no_swap["id_retrieve"]["value"] >= 90 and no_swap["gt_ssim"]["value"] > 0.95
  assert no_swap["mouth_corr"]["value"] > 0.9
  copy = doc["rows"][table1.ROWS["copy"]]
  assert copy["mouth_corr"]["value"] == 0.0          # a still mouth follows nothing
  colour = doc["rows"][table1.ROWS["colour"]]
  assert colour["mouth_corr"]["value"] == 0.0
  assert colour["ssim"]["value"] < copy["ssim"]["value"]   # the structure is gone
  assert copy["gt_l1"]["value"] > no_swap["gt_l1"]["value"]
  # The wrong-sync control: the same case driven by its own audio rotated by half its length.
  case = out / "cases" / clips[0]
  rate, audio = _read_wav(case / "audio.wav")
  shifted_rate, shifted = _read_wav(case / "audio_shifted.wav")
  assert shifted_rate == rate and np.array_equal(shifted, np.roll(audio, len(audio) // 2))
  assert (case / "output_shifted_audio.mp4").is_file()
  # The pixel cascades: stage 1 once per order, stage 2 per variant; the variant that keeps the
  # target's face track generates every frame stage 1 did (re-detection may find fewer).
  for name in ("cascade_swap_only.mp4", "cascade_lipsync_only.mp4",
               *(cascades.output_name(k) for k in cascades.CASCADES)):
    assert (case / name).is_file(), name
  for meta in doc["meta"]["cases"]:
    for key, (_, _, redetect) in cascades.CASCADES.items():
      first, second = meta[f"{key}_face_frames"]
      assert first == meta["face_frames"] > 0, (key, meta)
      if redetect:
        assert 0 <= second <= meta["frames"], (key, meta)
      else:
        assert second == first, (key, meta)


def _read_wav(path):
  import wave  # pylint: disable=import-outside-toplevel
  with wave.open(str(path), "rb") as f:
    return f.getframerate(), np.frombuffer(f.readframes(f.getnframes()), "<i2")


def test_a_clip_equals_what_generate_writes(self_eval, run_dir, repo_root, stage_data, tmp_path):
  """One inference path: `swaptalk generate` on a case's inputs writes the eval's output frames
  (run beside a bad-input command line: exit 1, one line)."""
  out, _ = self_eval
  case = out / "cases" / json.loads((out / "table1_self.json").read_text())[
      "meta"]["cases"][0]["target_clip"]
  video = tmp_path / "generate.mp4"
  gen = _swaptalk(["generate", "--source", str(case / "source.png"), "--target",
                   str(case / "target.mp4"), "--audio", str(case / "audio.wav"), "--out",
                   str(video), "--run", str(run_dir), "--framing", "synthetic", "--color_match",
                   "0", "--quiet"], repo_root)
  swap_only = tmp_path / "swap_only.mp4"
  gen_swap = _swaptalk(["generate", "--source", str(case / "source.png"), "--target",
                        str(case / "target.mp4"), "--audio", str(case / "audio.wav"), "--out",
                        str(swap_only), "--run", str(run_dir), "--no-sync", "--framing",
                        "synthetic", "--color_match", "0", "--quiet"], repo_root)
  bad = _swaptalk(["eval", "--run", str(tmp_path / "no_run"), "--data", str(stage_data),
                   "--setting", "cross", "--out", str(tmp_path / "o")], repo_root)
  assert_one_error_line(bad, "run directory", command="eval")
  for proc in (gen, gen_swap):
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
  ours, theirs = demo.read_frames(str(case / "output.mp4")), demo.read_frames(str(video))
  assert ours.shape == theirs.shape == (FRAMES, 128, 128, 3)
  np.testing.assert_array_equal(ours, theirs)
  stage1 = demo.read_frames(str(case / "cascade_swap_only.mp4"))
  np.testing.assert_array_equal(stage1, demo.read_frames(str(swap_only)))
  assert np.abs(stage1.astype(int) - ours).mean() > 0.5     # not the whole chain's output


def test_cases_self_and_cross(stage_data, tmp_path):
  """Self: the identity's own other clip as the photo, its own audio, the truth = the target.
  Cross (2 held-out identities): the other identity's photo, audio from A's other clip."""
  dataset, clips = table1_cases.held_out_clips(str(stage_data))
  assert len(clips) == 4 and [c.clip for c in clips] == [0, 0, 1, 1]
  for clip in clips:
    own = table1_cases.choice(clips, clip, "self", 0)
    assert own["a"] == own["b"] == own["c"] == clip.identity
    assert own["audio_clip"] == own["target_clip"] == clip.clip != own["photo_clip"]
    cross = table1_cases.choice(clips, clip, "cross", 0)
    assert cross["a"] != cross["b"] == clip.identity and cross["c"] == cross["a"]
    assert cross["audio_clip"] != cross["photo_clip"]
    assert cross == table1_cases.choice(clips, clip, "cross", 0)
  self_case = table1_cases.write_case(dataset, clips, clips[0], "self", tmp_path / "s",
                                      max_frames=4)
  cross_case = table1_cases.write_case(dataset, clips, clips[0], "cross", tmp_path / "c",
                                       max_frames=4)
  truth = np.load(self_case.path("ground_truth.npz"))
  target = demo.read_frames(self_case.path("target.mp4"))
  assert target.shape == (4, 128, 128, 3) and np.abs(truth["frames"] - target.astype(float)).mean() < 3
  np.testing.assert_array_equal(truth["driving_openness"], truth["target_openness"])
  cross_truth = np.load(cross_case.path("ground_truth.npz"))
  assert np.abs(cross_truth["frames"] - target.astype(float)).mean() > 5
  assert cross_case.source_identity != cross_case.target_clip[:8]


def test_bad_input_is_one_clear_error(stage_data, run_dir, tmp_path):
  options = table1.EvalOptions(setting="self")
  with pytest.raises(MissingFileError, match="dataset directory .* does not exist"):
    table1.evaluate_run(str(run_dir), None, str(tmp_path / "no_data"), str(tmp_path), options)
  partial = tmp_path / "partial"
  shutil.copytree(run_dir / "vqgan", partial / "vqgan")
  with pytest.raises(MissingFileError, match="has no swap stage"):
    table1.load_chain(str(partial), None)
  with pytest.raises(UserError, match="one of --run"):
    table1.load_chain(None, None)
  dataset, _ = table1_cases.held_out_clips(str(stage_data))
  empty = tmp_path / "no_test"
  empty.mkdir()
  meta = json.loads((dataset / "metadata.json").read_text())
  meta["clip_table"]["test"] = []
  (empty / "metadata.json").write_text(json.dumps(meta))
  with pytest.raises(UserError, match="no 'test' clips"):
    table1.evaluate_run(str(run_dir), None, str(empty), str(tmp_path), options)
  with pytest.raises(UserError, match="needs >= 2 test clips"):
    table1.evaluate(None, str(stage_data), str(tmp_path), table1.EvalOptions("self", max_clips=1))
  assert not set(table1.row_keys(table1.EvalOptions("self", cascades=False))) & set(
      cascades.CASCADES)
  chain = table1.load_chain(str(run_dir), None)
  view = cascades.stage_only(chain, "swap")
  assert view.lipsync is None and view.swap is chain.swap and chain.lipsync is not None
  assert view.encode is chain.encode and view.swap_fn is chain.swap_fn   # compiled once
  with pytest.raises(UserError, match="unknown stage 'vqgan'"):
    cascades.stage_only(chain, "vqgan")
  with pytest.raises(UserError, match="has no lipsync stage"):
    cascades.stage_only(view, "lipsync")
