"""Bad configs and workdirs fail with one clear line before anything is compiled."""
import jax
import numpy as np
import pytest

from core_helpers import assert_one_error_line, cli_train, run_steps, toy_config
from swaptalk_jax.core import checkpoint, trainer as trainer_lib
from swaptalk_jax.trainers import registry


@pytest.fixture
def no_compiling(monkeypatch):
  """Any jax.jit call inside build_trainer fails the test: errors must come before compiling."""
  def refuse(*args, **kwargs):
    raise AssertionError("build_trainer reached jax.jit before failing")
  monkeypatch.setattr(trainer_lib.jax, "jit", refuse)


@pytest.fixture(scope="module")
def toy_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("toy"))
  t, state, _ = run_steps(toy_config(), workdir, jax.devices()[:1], 1)
  checkpoint.save(t.manager, 1, jax.device_put(state, t.state_shardings), t.train_iter, t.config,
                  force=True)
  t.manager.wait_until_finished()
  return workdir


def test_unknown_config_key_is_rejected_by_the_cli(tmp_path):
  proc = cli_train(["--config=configs/toy.py", "--config.train.no_such_key=1",
                    f"--workdir={tmp_path}"])
  _, err = proc.communicate(timeout=300)
  assert proc.returncode != 0
  assert "no_such_key" in err


@pytest.mark.parametrize("key, value, message", [
    ("train.grad_accum_steps", 0, "grad_accum_steps must be >= 1"),
    ("train.compute_dtype", "float16", "compute_dtype"),
    ("optim.model.optimizer", "sgd", "config.optim.model.optimizer"),
    ("mesh", {"data": 3, "fsdp": 1}, "needs 3 devices"),
    ("stage", "nope", "not a known stage"),
])
def test_invalid_config_fails_before_compiling(tmp_path, no_compiling, key, value, message):
  with pytest.raises(ValueError, match=message):
    registry.build_trainer(toy_config(**{key: value}), str(tmp_path), devices=jax.devices()[:1])


def test_workdir_of_another_config_is_refused(toy_workdir, no_compiling):
  with pytest.raises(checkpoint.CheckpointMismatchError, match="holds checkpoints of another config"):
    registry.build_trainer(toy_config(**{"model.channels": 8}), toy_workdir,
                              devices=jax.devices()[:1])


def test_workdir_of_another_config_is_one_line_from_the_cli(toy_workdir):
  assert_one_error_line(cli_train(["--config=configs/toy.py", "--config.model.channels=8",
                                   f"--workdir={toy_workdir}"]), "config.model differs")


def test_checkpoint_of_incompatible_model_is_refused(toy_workdir):
  t = registry.build_trainer(toy_config(), toy_workdir, devices=jax.devices()[:1])
  step = t.manager.latest_step()
  changed = jax.tree_util.tree_map_with_path(
      lambda p, x: jax.ShapeDtypeStruct((x.shape[0] + 1,) + x.shape[1:], x.dtype)
      if "Conv_0" in jax.tree_util.keystr(p) and "bias" in jax.tree_util.keystr(p) else x,
      t.abstract_state)
  with pytest.raises(checkpoint.CheckpointMismatchError, match="incompatible model.*Conv_0/bias"):
    checkpoint.check_compatible(t.manager, step, t.config, changed)


def test_load_params_reads_one_group_of_a_run(toy_workdir):
  """core/checkpoint.load_params: EMA params where kept, raw on request, the stored config; clear
  errors for a missing run, step or group."""
  from swaptalk_jax.errors import MissingFileError, UserError  # pylint: disable=import-outside-toplevel
  t = registry.build_trainer(toy_config(), toy_workdir, devices=jax.devices()[:1])
  with t.scope():
    state, _ = checkpoint.restore(t.manager, 1, t.abstract_state, None)
  ema, step, config = checkpoint.load_params(toy_workdir, "model")
  raw, _, _ = checkpoint.load_params(toy_workdir, "model", ema=False)
  critic, _, _ = checkpoint.load_params(toy_workdir, "critic")   # no EMA kept: raw params
  assert step == 1 and config.stage == "toy" and config.model.channels == toy_config().model.channels
  for got, want in ((ema, state.ema_params["model"]), (raw, state.params["model"]),
                    (critic, state.params["critic"])):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(jax.device_get(want))):
      np.testing.assert_array_equal(a, b)
  with pytest.raises(UserError, match="no parameter group 'generator'.*critic"):
    checkpoint.load_params(toy_workdir, "generator")
  with pytest.raises(MissingFileError, match="no checkpoint of step 7"):
    checkpoint.load_params(toy_workdir, "model", step=7)
  with pytest.raises(MissingFileError, match="no checkpoint under"):
    checkpoint.load_params(toy_workdir + "/nothing_here", "model")
