"""`swaptalk prepare`: the synthetic set by identity splits, deterministic for a seed, through the
one builder; real sources dispatch to data_prep.real.cli or fail clearly."""
import subprocess
import sys
import types

import numpy as np
import pytest

from data_prep.synthetic.prepare import prepare_synthetic
from swaptalk_jax import cli
from swaptalk_jax.data import dataset, pipelines

FLAGS = ["--identities", "4", "--clips_per_identity", "1", "--seconds", "1.2", "--resolution",
         "48", "--test_identities", "2"]


def _records(path, split):
  """Every record of a split as {field: bytes of the array} (protobuf map order is not stable)."""
  reader = dataset.SplitReader(path, split)
  return [{k: np.asarray(v).tobytes() if np.asarray(v).dtype != object else repr(v)
           for k, v in r.items()} for r in reader.read(range(len(reader)))]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, repo_root):
  out = tmp_path_factory.mktemp("synthetic")
  result = subprocess.run([sys.executable, "-m", "swaptalk_jax.cli", "prepare", "synthetic",
                           "--out", str(out), *FLAGS], capture_output=True, text=True, timeout=300,
                          cwd=repo_root)
  assert result.returncode == 0, result.stderr[-3000:]
  return out, result.stdout


def test_cli_writes_identity_splits_and_reports_counts(prepared):
  out, stdout = prepared
  path = out / "synthetic" / "1.0.0"
  assert f"wrote {path}" in stdout
  assert "train: 2 clips, 2 identities, 4 records, 60 frames" in stdout
  assert "test: 2 clips, 2 identities, 4 records, 60 frames" in stdout
  meta = dataset.load_meta(path)
  ids = {s: {c.identity for c in t} for s, t in meta.clip_tables.items()}
  assert ids == dict(train={"syn00000", "syn00001"}, test={"syn00002", "syn00003"})
  for split, table in meta.clip_tables.items():  # ground-truth partners stay inside the split
    for c in table:
      assert c.extras["swap_gt_identity"] in ids[split] - {c.identity}
  assert meta.extras["swap_gt_frames"].kind == "frames"
  assert meta.extras["resync_audio"].kind == "audio"


@pytest.mark.multiprocess
def test_same_seed_same_records_other_seed_differs(prepared, tmp_path):
  out, _ = prepared
  # Rendered in 2 worker processes this time: the same records as the in-process CLI run.
  again = prepare_synthetic(tmp_path / "a", 4, 1, 1.2, 48, 0, 2, workers=2)
  assert _records(again, "train") == _records(out / "synthetic" / "1.0.0", "train")
  other = prepare_synthetic(tmp_path / "b", 4, 1, 1.2, 48, 1, 2)
  assert _records(other, "train") != _records(again, "train")


def test_records_round_trip_to_the_rendered_clip(prepared):
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  out, _ = prepared
  path = out / "synthetic" / "1.0.0"
  clip = dataset.SplitReader(path, "test").read_clip("syn00003_c000")
  want = synthetic.make_clip(3, 0, 0, 1.2, 48, partners=[2, 3])
  assert clip.clip_id == want.clip_id and clip.num_frames == want.num_frames == 30
  assert np.abs(clip.frames.astype(int) - want.frames).mean() < 3  # JPEG q95
  np.testing.assert_allclose(clip.audio, want.audio, atol=1 / 32768)
  np.testing.assert_array_equal(clip.extras["mouth_openness"], want.extras["mouth_openness"])


def test_every_stage_reads_the_synthetic_set_with_exact_swap_ground_truth(prepared):
  out, _ = prepared
  config = pipelines.default_data_config()
  config.sources = [dict(name="synthetic", data_dir=str(out), weight=1.0)]
  config.image_size, config.batch_size = 48, 4
  config.swap.same_identity_fraction = 0.0
  batch = next(pipelines.make_train_iterator("swap", config))
  assert batch["has_gt"].all() and not batch["same_identity"].any()
  assert not np.array_equal(batch["target_gt"], batch["target"])
  for stage in ("vqgan", "lip_expert", "lipsync"):
    assert next(pipelines.make_eval_iterator(stage, config))


def test_lipsync_resync_ground_truth_matches_the_renderer(prepared):
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.audio.mel import log_mel  # pylint: disable=import-outside-toplevel
  out, _ = prepared
  config = pipelines.default_data_config()
  config.sources = [dict(name="synthetic", data_dir=str(out), weight=1.0)]
  config.image_size, config.batch_size = 48, 4
  config.lipsync.resync_gt = True
  config = pipelines.resolve_config(config)
  plans, _ = pipelines.plan_dataset("lipsync", config, "train", True)
  batch = next(pipelines.make_train_iterator("lipsync", config))
  assert batch["resync_target"].shape == (4, 5, 48, 48, 3)
  assert batch["resync_mel"].shape == (4, 5, 16, 80) and batch["resync_mel_window"].shape == (4, 16, 80)
  # First example: compare with the renderer's own re-synced frames and the re-sync audio's mel.
  plan = plans[0]
  path = pipelines.dataset_path(config.sources[0])
  meta = dataset.load_meta(path)
  record, frame, _ = plan["images"]["resync_target"][0]
  entry = next(c for c in meta.clip_tables["train"]
               if c.first_record <= record < c.first_record + c.num_chunks)
  clip_frame = sum(entry.chunk_frames[:record - entry.first_record]) + frame
  ident, index = int(entry.clip_id[3:8]), int(entry.clip_id[-3:])
  want = synthetic.make_clip(ident, index, 0, 1.2, 48, partners=[0, 1])
  got = (batch["resync_target"][0] + 1) * 127.5
  assert np.abs(got - want.extras["resync_gt_frames"][clip_frame:clip_frame + 5]).mean() < 3
  step = plan["mels"]["resync_mel_window"][1]
  full = log_mel(want.extras["resync_audio"])
  np.testing.assert_allclose(batch["resync_mel_window"][0], full[step:step + 16], atol=0.05)
  assert np.abs(batch["resync_mel_window"][0] - batch["mel_window"][0]).mean() > 0.1


def test_resync_ground_truth_on_a_dataset_without_it_is_an_error(tmp_path):
  from swaptalk_jax.data import tfds_builder, toy_clips  # pylint: disable=import-outside-toplevel
  source = tfds_builder.ClipSource(
      "plain", lambda split, _: [toy_clips.toy_clip(f"{split}{i}", f"id{i}", 12, 16, i)
                                 for i in range(2)])
  tfds_builder.prepare(source, tmp_path)
  config = pipelines.default_data_config()
  config.sources = [dict(name="plain", data_dir=str(tmp_path), weight=1.0)]
  config.image_size, config.batch_size = 16, 2
  config.lipsync.resync_gt = True
  with pytest.raises(ValueError, match="resync_gt needs"):
    pipelines.make_train_iterator("lipsync", config)


def test_other_params_into_the_same_dir_is_an_error(prepared):
  out, _ = prepared
  with pytest.raises(ValueError, match="already holds"):
    prepare_synthetic(out, 4, 1, 1.2, 48, 5, 2)


def test_bad_split_sizes_are_errors(tmp_path):
  with pytest.raises(ValueError, match="test_identities"):
    prepare_synthetic(tmp_path, 3, 1, 1.0, 32, 0, 2)


def test_real_sources_dispatch_to_data_prep_real_cli(monkeypatch):
  calls = []
  fake = types.ModuleType("data_prep.real.cli")
  fake.main = lambda source, argv: calls.append((source, argv))
  monkeypatch.setitem(sys.modules, "data_prep.real.cli", fake)
  import data_prep.real  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(data_prep.real, "cli", fake, raising=False)
  cli.main(["swaptalk", "prepare", "hdtf", "--manual_dir", "x"])
  assert calls == [("hdtf", ["swaptalk prepare hdtf", "--manual_dir", "x"])]


def test_missing_real_source_module_is_a_clear_error(monkeypatch, capsys):
  import data_prep.real  # pylint: disable=import-outside-toplevel
  monkeypatch.setitem(sys.modules, "data_prep.real.cli", None)
  # An earlier test may have imported the real module: hide the package attribute too.
  monkeypatch.delattr(data_prep.real, "cli", raising=False)
  with pytest.raises(SystemExit) as e:
    cli.main(["swaptalk", "prepare", "voxceleb2"])
  assert e.value.code == 2
  assert "'voxceleb2' is not available" in capsys.readouterr().err


def test_unknown_source_and_missing_out_are_usage_errors(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["swaptalk", "prepare", "imagenet"])
  assert e.value.code == 2 and "unknown source 'imagenet'" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    cli.main(["swaptalk", "prepare", "synthetic", "--identities", "4"])
  assert e.value.code == 2 and "out" in capsys.readouterr().err


def test_verify_command_reads_and_decodes_every_record(prepared, capsys):
  out, _ = prepared
  cli.main(["swaptalk", "prepare", "verify", "--dataset", str(out / "synthetic" / "1.0.0")])
  assert "0 problem(s)" in capsys.readouterr().out


def test_same_identity_pairs_with_one_clip_per_identity_use_another_frame(prepared):
  from swaptalk_jax.data import sampling  # pylint: disable=import-outside-toplevel
  out, _ = prepared
  config = pipelines.default_data_config()
  config.sources = [dict(name="synthetic", data_dir=str(out), weight=1.0)]
  config.swap.same_identity_fraction = 1.0
  config = pipelines.resolve_config(config)
  plans, _ = pipelines.plan_dataset("swap", config, "train", True)
  index = sampling.SplitIndex.build(dataset.load_meta(pipelines.dataset_path(config.sources[0])),
                                    "train")
  clip_frame = lambda ref: int(index.first_frame[ref[0]]) + ref[1]
  for i in range(50):
    src, tgt = plans[i]["images"]["source"], plans[i]["images"]["target"]
    assert index.clip_of[src[0]] == index.clip_of[tgt[0]]  # the identity's only clip
    assert clip_frame(src) != clip_frame(tgt)


def test_help_lists_the_synthetic_flags(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["swaptalk", "prepare", "synthetic", "--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  assert all(f"--{f}" in out for f in ("out", "identities", "seed", "test_identities", "workers"))
