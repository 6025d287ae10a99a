"""The core gives the same training on 1 device and on 8 (mesh 8x1 and 4x2 data x fsdp), restores
a checkpoint saved on 8 devices onto 1 and 4, and skips (and counts) a non-finite step."""
import jax
import numpy as np
import pytest

from core_helpers import assert_trees_close, run_steps, toy_config
from swaptalk_jax.core.trainer import global_batch
from swaptalk_jax.trainers.registry import build_trainer

STEPS = 4


def equivalence_config(**overrides):
  # Adam turns f32 round-off in near-zero gradients into +-lr steps (m / sqrt(v) ~ sign); a larger
  # eps keeps the comparison about the sharding, not about that amplification.
  c = toy_config(**overrides)
  for group in c.optim:
    c.optim[group].eps = 1e-3
  return c


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
  return run_steps(equivalence_config(), str(tmp_path_factory.mktemp("one")), jax.devices()[:1],
                   STEPS)


@pytest.mark.parametrize("mesh", [dict(data=8, fsdp=1), dict(data=4, fsdp=2)])
def test_same_training_on_1_and_8_devices(single_device_run, tmp_path, mesh):
  _, ref_state, ref_losses = single_device_run
  trainer, state, losses = run_steps(equivalence_config(mesh=mesh), str(tmp_path), jax.devices(),
                                    STEPS)
  if mesh["fsdp"] > 1:   # the fsdp axis really shards some parameters
    specs = [s.spec for s in jax.tree.leaves(trainer.state_shardings.params)]
    assert any("fsdp" in str(spec) for spec in specs)
  # Reductions run in another order across devices: f32 round-off, amplified a little by Adam.
  np.testing.assert_allclose(losses, ref_losses, rtol=2e-5)
  assert_trees_close(state.params, ref_state.params, rtol=1e-4, atol=1e-5)
  assert_trees_close(state.ema_params, ref_state.ema_params, rtol=1e-4, atol=1e-5)


def test_checkpoint_from_8_devices_restores_on_1_and_4(tmp_path):
  config = toy_config(mesh=dict(data=4, fsdp=2))
  config.train.checkpoint_every = 3
  from swaptalk_jax.core import checkpoint
  trainer, saved, _ = run_steps(config, str(tmp_path), jax.devices(), 3)
  checkpoint.save(trainer.manager, 3, jax.device_put(saved, trainer.state_shardings),
                  trainer.train_iter, config, force=True)
  trainer.manager.wait_until_finished()
  for devices, mesh in ((jax.devices()[:1], dict(data=1, fsdp=1)),
                        (jax.devices()[:4], dict(data=2, fsdp=2))):
    cfg = toy_config(mesh=mesh)
    trainer2, state, losses = run_steps(cfg, str(tmp_path), devices, 0)
    assert int(state.step) == 3
    assert_trees_close(state.params, saved.params, rtol=0, atol=0)
    _, after, losses = run_steps(cfg, str(tmp_path), devices, 2)   # training continues
    assert int(after.step) == 5 and all(np.isfinite(losses))


def test_nonfinite_batch_is_skipped_and_counted(tmp_path):
  trainer = build_trainer(toy_config(mesh=dict(data=8, fsdp=1)), str(tmp_path))
  with trainer.scope():
    state = trainer.restore_or_init()
    batch = next(trainer.train_iter)
    state, _ = trainer.train_step(state, global_batch(batch, trainer.batch_sharding))
    before = jax.device_get(state)
    poisoned = dict(batch, image=batch["image"].copy())
    poisoned["image"][3, 2, 2, 1] = np.nan
    state, metrics = trainer.train_step(state, global_batch(poisoned, trainer.batch_sharding))
    after = jax.device_get(state)
  assert float(metrics["nonfinite"]) == 1.0
  assert int(after.nonfinite_steps) == 1 and int(after.step) == 2
  assert_trees_close(after.params, before.params, rtol=0, atol=0)
  assert_trees_close(after.opt_state, before.opt_state, rtol=0, atol=0)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(after.params))


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
  """2 micro-batches on 8 devices (4x2) train like the whole batch at once on 1 device."""
  overrides = {"data.batch_size": 16}
  _, ref, ref_losses = run_steps(equivalence_config(**overrides), str(tmp_path / "full"),
                                 jax.devices()[:1], 3)
  _, acc, losses = run_steps(
      equivalence_config(mesh=dict(data=4, fsdp=2), **{"train.grad_accum_steps": 2, **overrides}),
      str(tmp_path / "accum"), jax.devices(), 3)
  np.testing.assert_allclose(losses, ref_losses, rtol=2e-5)
  assert_trees_close(acc.params, ref.params, rtol=1e-4, atol=1e-5)


def test_config_rules_extend_and_override_the_logical_rules(tmp_path):
  """config.logical_axis_rules replaces a rule by name and adds new names (MaxText style); the
  trainer builds its shardings with them (no compile needed to see it)."""
  from swaptalk_jax.core import sharding  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.errors import UserError  # pylint: disable=import-outside-toplevel
  base = dict(sharding.LOGICAL_RULES)
  assert {"heads", "kv", "mlp", "length", "embed", "batch"} <= set(base)
  config = toy_config(mesh=dict(data=4, fsdp=2))
  config.logical_axis_rules = (("conv_out", None), ("experts", "fsdp"))
  rules = dict(sharding.rules_from_config(config))
  assert rules["conv_out"] is None and rules["experts"] == "fsdp" and rules["embed"] == base["embed"]
  default = build_trainer(toy_config(mesh=dict(data=4, fsdp=2)), str(tmp_path / "a"))
  override = build_trainer(config, str(tmp_path / "b"))
  assert dict(override.rules)["conv_out"] is None
  fsdp_leaves = lambda t: sum("fsdp" in str(s.spec) for s in jax.tree.leaves(t.state_shardings.params))
  assert fsdp_leaves(default) > 0 and fsdp_leaves(override) < fsdp_leaves(default)
  config.logical_axis_rules = (("mlp", "model"),)
  with pytest.raises(UserError, match="unknown mesh axes"):
    sharding.rules_from_config(config)
