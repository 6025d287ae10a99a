"""The identity net the project trains (configs/identity.py, trainers/identity.py): a few steps on the
stage tests' synthetic set lower the margin loss; the run loads as the swap stage's identity net
(unit-norm embeddings) and the VQGAN and swap stages train with it; verification eval on held-out
identities; bad inputs fail in one line."""
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import identity as identity_configs
from configs import swap as swap_configs
from configs import vqgan as vqgan_configs
from core_helpers import apply_overrides
from generate_helpers import random_vqgan_run
from stage_fixtures import data_sources
from swaptalk_jax.aot import batch_specs
from swaptalk_jax.core import checkpoint
from swaptalk_jax.core.trainer import global_batch
from swaptalk_jax.data import pipelines
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.evaluators import common as evaluators
from swaptalk_jax.losses import identity_nets
from swaptalk_jax.losses.angular_margin import margin_logits
from swaptalk_jax.metrics import verification
from swaptalk_jax.trainers import identity as identity_trainer
from swaptalk_jax.trainers import vqgan as vqgan_trainer
from swaptalk_jax.trainers.registry import build_trainer

STEPS = 12


def small_config(data_dir, **overrides):
  """configs/identity.py:tiny made smaller still for the test budget (32 px, widths 8..64)."""
  c = identity_configs.get_config("tiny")
  c.model.update(input_size=32, widths=(8, 16, 32, 64), embedding_dim=32)
  c.data.image_size = 32
  c.data.sources = data_sources(data_dir)
  c.data.batch_size = 16
  c.optim.embedder.warmup_steps = c.optim.head.warmup_steps = 2
  c.train.update(num_steps=STEPS, async_checkpointing=False, eval_every=0,
                 checkpoint_every=10_000)
  # Only the verification evaluator (the batch mean's extra compile is not worth the budget).
  c.evals = dict(verification=dict(type="verification", frames_per_clip=2, max_pairs=200))
  return apply_overrides(c, overrides)


def one_identity_dataset(stage_data, out) -> pathlib.Path:
  """A data_dir whose synthetic set keeps only the first identity of each split (its clips head
  each clip table, so the record order holds); the shards are the stage set's, linked."""
  src = pipelines.dataset_path(data_sources(stage_data)[0])
  dst = pathlib.Path(out) / "synthetic" / src.name
  dst.mkdir(parents=True)
  for f in src.iterdir():
    if f.name != "metadata.json":
      (dst / f.name).symlink_to(f)
  meta = json.loads((src / "metadata.json").read_text())
  for split, table in meta["clip_table"].items():
    meta["clip_table"][split] = [c for c in table if c["identity"] == table[0]["identity"]]
  (dst / "metadata.json").write_text(json.dumps(meta))
  return pathlib.Path(out)


@pytest.fixture(scope="module")
def identity_run(stage_data, tmp_path_factory):
  config = small_config(stage_data)
  workdir = str(tmp_path_factory.mktemp("identity_run"))
  trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    losses = []
    for _ in range(STEPS):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      losses.append(float(m["embedder/loss"]))
    scores = evaluators.run_all(trainer.evaluators, trainer.eval_params(state))
    checkpoint.save(trainer.manager, STEPS, state, trainer.train_iter, config, force=True)
    trainer.manager.wait_until_finished()
    host = jax.device_get(state)
  return dict(config=config, workdir=workdir, losses=losses, scores=scores, state=host,
              num_classes=trainer.task.num_classes, batch_spec=trainer.batch_spec)


def test_trains_and_evaluates(identity_run):
  losses, scores, state = identity_run["losses"], identity_run["scores"], identity_run["state"]
  print("margin CE per step", np.round(losses, 3), "\neval", scores)
  assert identity_run["num_classes"] == 8                     # the 8 training identities
  # What `swaptalk compile` assumes without data is what the pipeline yields.
  spec = batch_specs.batch_spec(identity_run["config"])
  assert {k: (v.shape, v.dtype) for k, v in spec.items()} == {
      k: (v.shape, v.dtype) for k, v in identity_run["batch_spec"].items()}
  assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5
  # The head is its own (training-only) group; BatchNorm running stats moved off their init.
  assert set(state.params) == {"embedder", "head"}
  assert state.params["head"]["centres"].shape == (32, 8)
  assert not np.allclose(state.params["embedder"]["bn1"]["mean"], 0.0)
  np.testing.assert_allclose(state.params["embedder"]["bn1"]["var"],
                             state.task_state["running"]["bn1/var"])
  # Periodic eval: the batch mean and the verification evaluator on the 2 held-out identities.
  for key in ("verification/accuracy", "verification/auc",
              "verification/pixel_accuracy", "verification/threshold"):
    assert key in scores and math.isfinite(scores[key]), key
  assert 0.0 <= scores["verification/accuracy"] <= 1.0
  assert scores["verification/pairs"] > 0


def test_load_identity_net_embeds_unit_norm(identity_run):
  net, params = identity_trainer.load_identity_net(identity_run["workdir"])
  embed = jax.jit(net.embed)
  rng = np.random.default_rng(0)
  for size in (32, 64):   # any crop size: resized to the net's input as in training
    images = jnp.asarray(rng.uniform(-1, 1, (3, size, size, 3)), jnp.float32)
    e = np.asarray(embed(params, images))
    assert e.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(e[0], e[1], atol=1e-3)
  # The EMA embedder by default; the raw one on request (different params after 12 steps).
  _, raw = identity_trainer.load_identity_net(identity_run["workdir"], ema=False)
  assert not np.allclose(raw["conv1"]["kernel"], params["conv1"]["kernel"])


def test_swap_stage_trains_with_the_trained_identity_net(identity_run, stage_data, tmp_path):
  vqgan_dir = random_vqgan_run(str(tmp_path / "vqgan"), "micro")
  c = swap_configs.get_config("tiny")
  c.vqgan.update(workdir=vqgan_dir, variant="micro")
  c.model.update(token_dim=16, num_layers=1)
  c.data.sources = data_sources(stage_data)
  c.data.update(image_size=32, batch_size=4)
  c.loss.update(id_src_weight=0.1, id_res_weight=0.1)
  c.identity.update(kind="trained", workdir=identity_run["workdir"])
  c.train.update(async_checkpointing=False, eval_every=0, checkpoint_every=10_000, num_steps=2)
  trainer = build_trainer(c, str(tmp_path / "swap"), devices=jax.devices()[:1])
  assert trainer.task.identity_net.name == "identity_tiny"
  with trainer.scope():
    state = trainer.restore_or_init()
    before = jax.device_get(state.params["swap"])
    for _ in range(2):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      m = jax.device_get(m)
      assert m["nonfinite"] == 0
      assert 0 < m["swap/id_src"] <= 2 and 0 <= m["swap/id_res"] <= 2
  after = jax.device_get(state.params["swap"])
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_vqgan_trains_with_the_trained_identity_net(identity_run, stage_data, tmp_path):
  """Stage 0's identity loss and identity-feature (perceptual) term through the project's own net
  (identity.kind='trained'): both are measured in the train step, the frozen net is a jit
  argument, and either weight without a net is one clear error."""
  c = vqgan_configs.get_config("micro")
  c.data.sources = data_sources(stage_data)
  c.data.update(image_size=32, batch_size=4)
  c.loss.update(identity_weight=0.5, identity_feature_weight=0.5, disc_start=10_000)
  c.identity.update(kind="trained", workdir=identity_run["workdir"])
  c.train.update(async_checkpointing=False, eval_every=0, checkpoint_every=10_000, num_steps=1)
  trainer = build_trainer(c, str(tmp_path / "vqgan"), devices=jax.devices()[:1])
  assert trainer.task.identity_net.name == "identity_tiny" and set(trainer.frozen) == {"identity"}
  with trainer.scope():
    state = trainer.restore_or_init()
    state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                      trainer.batch_sharding))
  m = jax.device_get(m)
  assert m["nonfinite"] == 0 and 0 < m["generator/identity"] <= 2
  assert 0 < m["generator/identity_features"] <= 16     # 4 maps, each at most 4
  with pytest.raises(UserError, match="loss.identity_weight"):
    vqgan_trainer.make_task(apply_overrides(c, {"loss.identity_weight": 0.1,
                                                "identity.kind": "none"}))
  with pytest.raises(UserError, match="loss.identity_feature_weight"):
    vqgan_trainer.make_task(apply_overrides(c, {"loss.identity_weight": 0.0,
                                                "identity.kind": "none"}))


@pytest.mark.parametrize("distance", [identity_nets.identity_distance,
                                      identity_nets.feature_distance])
def test_identity_distance_trains_the_first_argument_only(identity_run, distance):
  """1 - cos, and the feature-map distance, through the frozen net: the gradient reaches the
  reconstruction, never the reference images or the net's params; zero for identical images."""
  net, params = identity_trainer.load_identity_net(identity_run["workdir"])
  x, y = (jax.random.uniform(jax.random.key(i), (2, 32, 32, 3), minval=-1, maxval=1)
          for i in (0, 1))
  assert float(distance(net, params, x, y).min()) > 0
  loss = lambda p, a, b: distance(net, p, a, b).sum()
  g_params, g_x, g_y = jax.grad(loss, argnums=(0, 1, 2))(params, x, y)
  assert float(jnp.abs(g_x).sum()) > 0
  assert float(jnp.abs(g_y).sum()) == 0
  assert all(float(jnp.abs(g).sum()) == 0 for g in jax.tree.leaves(g_params))
  d = distance(net, params, x, x)
  np.testing.assert_allclose(np.asarray(d), 0.0, atol=1e-5)


def test_bad_inputs_fail_in_one_line(stage_data, tmp_path):
  def one_line(error_type, fn, *args):
    with pytest.raises(error_type) as info:
      fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)

  load = identity_trainer.load_identity_net
  assert "identity.workdir" in one_line(UserError, load, None)
  one_line(MissingFileError, load, str(tmp_path / "nothing"))
  vqgan_dir = random_vqgan_run(str(tmp_path / "vqgan"), "micro")
  assert "'vqgan' run" in one_line(UserError, load, vqgan_dir)
  # A dataset split with fewer than 2 identities: the head has nothing to tell apart.
  config = small_config(one_identity_dataset(stage_data, tmp_path / "one"))
  assert ">= 2" in one_line(UserError, identity_trainer.make_task, config)
  assert ">= 2" in one_line(UserError, pipelines.make_eval_iterator, "identity", config.data)
  # Net input size and data size disagree.
  assert "input_size" in one_line(UserError, identity_trainer.make_task,
                                  small_config(stage_data, **{"data.image_size": 64}))
  assert "variant" in one_line(UserError, identity_configs.get_config, "r18")
  assert ">= 2" in one_line(UserError, identity_trainer.num_classes,
                           small_config(stage_data, num_classes=1))
  assert identity_trainer.num_classes(small_config(stage_data, num_classes=5)) == 5


def test_margin_logits_match_the_formula():
  cos = jnp.array([[0.8, 0.1, -0.3], [-0.95, 0.2, 0.0]])
  logits = np.asarray(margin_logits(cos, jnp.array([0, 0]), 10.0, 0.5))
  # Target with theta + m < pi: s * cos(theta + m); the others s * cos(theta).
  np.testing.assert_allclose(logits[0], [10 * math.cos(math.acos(0.8) + 0.5), 1.0, -3.0],
                             rtol=1e-5)
  # theta + m > pi: arcface_torch's fallback s * (cos - m sin m).
  np.testing.assert_allclose(logits[1, 0], 10 * (-0.95 - 0.5 * math.sin(0.5)), rtol=1e-5)


def test_verification_pairs_threshold_and_auc():
  labels = np.array(["a"] * 4 + ["b"] * 4)
  clips = np.array(["a0", "a0", "a1", "a1", "b0", "b0", "b1", "b1"])
  pairs, same = verification.make_pairs(labels, clips, max_pairs=100)
  assert same.sum() == (~same).sum() == 8                    # 2x2 cross-clip pairs per identity
  assert all(clips[i] != clips[j] for (i, j), s in zip(pairs, same) if s)
  assert all(labels[i] == labels[j] for (i, j), s in zip(pairs, same) if s)
  scores = np.where(same, 0.9, 0.1)
  assert verification.auc(scores, same) == 1.0
  t = verification.best_threshold(scores, same)
  assert 0.1 < t < 0.9 and verification.accuracy_at(scores, same, t) == 1.0
  assert verification.auc(np.zeros(len(same)), same) == 0.5
  with pytest.raises(ValueError):
    verification.make_pairs(np.array(["a", "a"]), np.array(["x", "y"]), 10)


def test_mixture_numbers_classes_across_sources(stage_data):
  """Two sources: the second's identities are classes 8..15 (no collision with the first's)."""
  config = small_config(stage_data)
  config.data.sources = data_sources(stage_data) * 2
  config.data.batch_size = 32
  assert identity_trainer.num_classes(config) == 16
  iterator = pipelines.make_train_iterator("identity", config.data)
  labels = np.concatenate([next(iterator)["label"] for _ in range(3)])
  assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() <= 15
  assert (labels < 8).any() and (labels >= 8).any()
