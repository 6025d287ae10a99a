"""A dataset mixture from one command-line string (`--config.data.mixture`): parsing, bad input in
one line, and a `swaptalk train` run whose mixture was changed on the command line."""
import os

import ml_collections
import pytest

from core_helpers import cli_train
from swaptalk_jax.data import pipelines
from swaptalk_jax.data.mixture import parse_mixture
from swaptalk_jax.errors import UserError


def test_parse_mixture():
  assert parse_mixture("synthetic:data:1.0, hdtf:/x/y:0.5,mine:/mnt/p") == [
      dict(name="synthetic", data_dir="data", weight=1.0),
      dict(name="hdtf", data_dir="/x/y", weight=0.5),
      dict(name="mine", data_dir="/mnt/p", weight=1.0)]
  assert parse_mixture("a:gs://bucket/d:2")[0] == dict(name="a", data_dir="gs://bucket/d", weight=2.0)


@pytest.mark.parametrize("text,message", [
    ("synthetic:data:0", "weight must be > 0, got 0"),
    ("synthetic:data:-1", "weight must be > 0"),
    ("synthetic", "write name:data_dir"),
    ("synthetic:data,,hdtf:x", "empty entry"),
    ("a:d:1,a:d:2", "names a dataset twice"),
])
def test_bad_mixtures_fail_in_one_line(text, message):
  with pytest.raises(UserError, match=message):
    parse_mixture(text)


def test_mixture_replaces_sources_and_a_missing_dataset_is_named(stage_data, tmp_path):
  c = pipelines.default_data_config()
  c.mixture = f"synthetic:{stage_data}:1.0,synthetic:{tmp_path}:0.5"
  assert [s["weight"] for s in pipelines.resolve_config(c).sources] == [1.0, 0.5]
  c.image_size, c.batch_size = 32, 2
  with pytest.raises(UserError, match=f"no prepared dataset at {tmp_path}/synthetic"):
    pipelines.make_train_iterator("vqgan", c)


@pytest.mark.slow
def test_train_with_a_mixture_from_the_command_line(stage_data, tmp_path):
  other = tmp_path / "other"          # a second prepared dataset (same files, another data_dir)
  other.mkdir()
  os.symlink(stage_data / "synthetic", other / "synthetic")
  workdir = str(tmp_path / "run")
  proc = cli_train(["--config=configs/vqgan.py:micro", f"--workdir={workdir}",
                    f"--config.data.mixture=synthetic:{stage_data}:1.0,synthetic:{other}:0.25",
                    "--config.train.num_steps=2", "--config.train.eval_every=0",
                    "--config.train.checkpoint_every=2", "--config.train.log_every=1",
                    "--config.train.async_checkpointing=False"])
  _, err = proc.communicate(timeout=1800)   # one compile: ~1 min idle, far more on a loaded CPU
  assert proc.returncode == 0, err[-3000:]
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "2")) or any(
      "2" == d for _, dirs, _ in os.walk(workdir) for d in dirs), os.listdir(workdir)
  bad = cli_train(["--config=configs/vqgan.py:micro", f"--workdir={tmp_path / 'bad'}",
                   f"--config.data.mixture=synthetic:{stage_data}:0"])
  _, err = bad.communicate(timeout=600)
  assert bad.returncode == 1
  assert err.strip().splitlines()[-1].endswith("weight must be > 0, got 0")


def test_per_source_eval_metrics(stage_data, tmp_path):
  """The per_source evaluator scores each dataset of a mixture on its own eval split."""
  import jax
  from stage_fixtures import micro_vqgan_config
  from swaptalk_jax.evaluators.per_source import Evaluator
  from swaptalk_jax.trainers.registry import build_trainer
  other = tmp_path / "other"
  other.mkdir()
  os.symlink(stage_data / "synthetic", other / "synthetic")
  config = micro_vqgan_config(stage_data, **{
      "data.mixture": f"synthetic:{stage_data}:1.0,synthetic:{other}:0.25"})
  trainer = build_trainer(config, str(tmp_path / "run"), devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    evaluator = Evaluator(ml_collections.ConfigDict(dict(type="per_source", num_batches=1)),
                          trainer.eval_context)
    scores = evaluator.run(trainer.eval_params(state))
  assert evaluator.labels == ["synthetic_0", "synthetic_1"]
  assert {"synthetic_0/l1", "synthetic_1/l1"} <= set(scores)
  # Same files under both names, same eval draws: the same figures.
  assert scores["synthetic_0/l1"] == pytest.approx(scores["synthetic_1/l1"], rel=1e-6)
