"""The lip-sync network and Task without training: every backbone's shapes, an untrained network
is the warped reference, the target's own lower half never reaches the prediction (perturbation and
gradient), the audio does, and the paper-size `unet` and `dit` steps compile sharded on 8 devices."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from compile_only import compile_only
from configs import lipsync as lipsync_config
from configs import vqgan as vqgan_config
from generate_helpers import random_params
from swaptalk_jax.core import optim, sharding
from swaptalk_jax.core.task import FROZEN
from swaptalk_jax.core.train_state import init_train_state
from swaptalk_jax.core.train_step import make_train_step
from swaptalk_jax.models.lipsync import BACKBONES, lipsync_from_config
from swaptalk_jax.models.vqgan import vqgan_from_config
from swaptalk_jax.trainers.lip_expert import FrozenVQGAN
from swaptalk_jax.trainers.lipsync import LipSyncTask


def tiny_model_config(backbone: str) -> ml_collections.ConfigDict:
  m = lipsync_config.get_config("tiny").model
  m.update(backbone=backbone, warp_features=(8, 16), unet_features=(16, 32), num_heads=2,
           num_groups=4, dit_width=32, dit_depth=2, audio_width=32)
  return m


@pytest.mark.parametrize("backbone", BACKBONES)
def test_each_backbone_maps_tokens_to_lower_half_tokens(backbone):
  net = lipsync_from_config(tiny_model_config(backbone), embed_dim=16)
  rng = np.random.default_rng(0)
  tokens = [jnp.asarray(rng.normal(size=(3, 8, 16, 16)), jnp.float32) for _ in range(3)]
  mel = jnp.asarray(rng.normal(size=(3, 16, 80)), jnp.float32)
  params = net.init(jax.random.key(0), *tokens, mel)["params"]
  pred, aux = net.apply({"params": params}, *tokens, mel)
  assert pred.shape == (3, 8, 16, 16) and aux["flow"].shape == (3, 8, 16, 2)
  # output layers start at zero: an untrained network returns the (identity-)warped reference
  np.testing.assert_allclose(np.asarray(pred), np.asarray(tokens[2]), atol=1e-6)
  if backbone != "plain_unet":   # the attention backbones have cross-attention params
    names = " ".join(jax.tree_util.keystr(path) for path, _ in
                     jax.tree_util.tree_leaves_with_path(params))
    assert "cross_attention" in names or "_attn" in names


def micro_task(backbone: str = "unet") -> tuple[LipSyncTask, dict]:
  """A Task over a random micro VQGAN (32 px, 16x16 tokens, D = 16), its params drawn in numpy
  from the shapes (generate_helpers.random_params: an eager flax init compiles every op)."""
  vcfg = vqgan_config.get_config("micro")
  vqgan = vqgan_from_config(vcfg.model)
  vparams = random_params(vqgan, 1, jnp.zeros((1, 32, 32, 3)))
  config = lipsync_config.get_config("tiny")
  task = LipSyncTask(network=lipsync_from_config(tiny_model_config(backbone), 16),
                     vqgan=FrozenVQGAN(vqgan, vparams, vcfg, 0), loss_config=config.loss,
                     eval_config=config.eval)
  return task, vparams


def random_batch(rng, b=2, t=5, s=32):
  return {"target": rng.uniform(-1, 1, (b, t, s, s, 3)).astype(np.float32),
          "reference": rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32),
          "mel": rng.uniform(-4, 4, (b, t, 16, 80)).astype(np.float32),
          "mel_window": rng.uniform(-4, 4, (b, 16, 80)).astype(np.float32)}


def test_target_lower_half_never_reaches_the_prediction():
  task, vparams = micro_task("unet")
  rng = np.random.default_rng(0)
  batch = random_batch(rng)
  # every weight random, none at its init (zero output layers would hide any dependence): drawn
  # in numpy from the shapes, as micro_task's VQGAN (no eager init compiling op by op)
  tokens = jnp.zeros((1, 8, 16, 16))
  net_params = random_params(task.network, 5, tokens, tokens, tokens, jnp.zeros((1, 16, 80)))
  params = {"lipsync": net_params, FROZEN: {"vqgan": vparams}}
  predict = jax.jit(lambda p, b: task.forward(p, b)[0])
  base = np.asarray(predict(params, batch))

  lower_changed = dict(batch, target=batch["target"].copy())
  lower_changed["target"][:, :, 16:] = rng.uniform(-1, 1, lower_changed["target"][:, :, 16:].shape)
  np.testing.assert_array_equal(np.asarray(predict(params, lower_changed)), base)
  # ... while the ground truth the loss compares with does change
  gt = jax.jit(lambda p, b: task.forward(p, b)[2].codes)
  assert not np.array_equal(np.asarray(gt(params, lower_changed)), np.asarray(gt(params, batch)))

  upper_changed = dict(batch, target=batch["target"].copy())
  upper_changed["target"][:, :, :16] = -upper_changed["target"][:, :, :16]
  assert np.abs(np.asarray(predict(params, upper_changed)) - base).max() > 1e-4
  audio_changed = dict(batch, mel=batch["mel"][::-1].copy())
  assert np.abs(np.asarray(predict(params, audio_changed)) - base).max() > 1e-4
  # (no gradient check: the encoder's argmin blocks pixel gradients of every token, so a zero
  # gradient on the lower half would prove nothing; the perturbations above are the check)


def test_loss_runs_and_bad_config_is_one_line(tmp_path):
  task, vparams = micro_task("plain_unet")
  batch = random_batch(np.random.default_rng(1))
  params = {"lipsync": task.init_params(jax.random.key(0), batch)["lipsync"],
            FROZEN: {"vqgan": vparams}}
  loss, (metrics, _) = jax.jit(lambda p, b: task.loss("lipsync", p, b, jax.random.key(0), 0, None))(
      params, batch)
  assert np.isfinite(float(loss))
  # untrained = the reference copied: same code error as the copy baseline
  np.testing.assert_allclose(float(metrics["code_mse"]), float(metrics["copy_code_mse"]), rtol=1e-5)
  from swaptalk_jax.errors import UserError
  from swaptalk_jax.trainers import lipsync as lipsync_trainer
  config = lipsync_config.get_config("tiny")
  with pytest.raises(UserError, match="vqgan.workdir"):
    lipsync_trainer.make_task(config)
  with pytest.raises(UserError, match="unknown variant"):
    lipsync_config.get_config("huge")


def paper_task(backbone: str) -> tuple[LipSyncTask, ml_collections.ConfigDict]:
  """The paper-size Task (f16 VQGAN at 256 px, D = 256) with abstract frozen params (no files)."""
  config = lipsync_config.get_config(backbone)
  vcfg = vqgan_config.get_config("f16")
  vqgan = vqgan_from_config(vcfg.model)
  vparams = jax.eval_shape(lambda: nn.unbox(vqgan.init(jax.random.key(0),
                                                       jnp.zeros((1, 256, 256, 3)))["params"]))
  dtype = jnp.dtype(config.train.compute_dtype)
  task = LipSyncTask(network=lipsync_from_config(config.model, vcfg.model.embed_dim, dtype),
                     vqgan=FrozenVQGAN(vqgan, vparams, vcfg, 0), loss_config=config.loss,
                     eval_config=config.eval)
  return task, config


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["unet", "dit"])
def test_paper_size_step_compiles_sharded_on_8_devices(backbone):
  """The whole train step (frozen f16 encoder, network forward/backward, AdamW, EMA) lowered and
  compiled with fsdp=8 on 8 fake devices; parameters, FLOPs and memory per device printed. The
  program never runs: compiled without LLVM's optimisation of its CPU code (compile_only.py)."""
  task, config = paper_task(backbone)
  mesh = sharding.make_mesh({"data": 1, "fsdp": 8}, jax.devices()[:8])
  rules = sharding.LOGICAL_RULES
  batch_size = 8
  batch = {"target": jax.ShapeDtypeStruct((batch_size, 5, 256, 256, 3), jnp.float32),
           "reference": jax.ShapeDtypeStruct((batch_size, 256, 256, 3), jnp.float32),
           "mel": jax.ShapeDtypeStruct((batch_size, 5, 16, 80), jnp.float32),
           "mel_window": jax.ShapeDtypeStruct((batch_size, 16, 80), jnp.float32)}
  txs, schedules = {}, {}
  for group in task.groups:
    txs[group], schedules[group] = optim.make_optimizer(group, config.optim[group], 1000)
  example = {k: jnp.zeros((1,) + v.shape[1:], v.dtype) for k, v in batch.items()}
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    boxed = jax.eval_shape(lambda r: init_train_state(task, txs, r, example), jax.random.key(0))
    state_shardings = sharding.logical_to_shardings(boxed, mesh, rules, min_size=config.fsdp_min_size)
    state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                         sharding.strip_boxes(boxed), state_shardings)
    batch_sharding = sharding.batch_sharding(mesh)
    replicated = sharding.replicated(mesh)
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=batch_sharding)
             for k, v in batch.items()}
    frozen = {"vqgan": jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                                   sharding=replicated),
                                    task.vqgan.params)}
    step = jax.jit(make_train_step(task, txs, schedules, 1, 0.999),
                   in_shardings=(state_shardings, {k: batch_sharding for k in batch},
                                 jax.tree.map(lambda _: replicated, frozen)),
                   out_shardings=(state_shardings, replicated), donate_argnums=(0,))
    compiled = compile_only(step.lower(state, batch, frozen))   # inspected, never run
  num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  sharded = [s for s in jax.tree.leaves(state_shardings.params) if not s.is_fully_replicated]
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  memory = compiled.memory_analysis()
  per_device = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
  print(f"lipsync {backbone} paper size: {num_params / 1e6:.1f} M params ({len(sharded)} arrays "
        f"fsdp-sharded), step {cost.get('flops', 0) / 1e12:.2f} TFLOP per device, memory "
        f"{per_device / 2**30:.2f} GiB per device (args {memory.argument_size_in_bytes / 2**30:.2f}, "
        f"temp {memory.temp_size_in_bytes / 2**30:.2f})")
  assert num_params > 20e6 and sharded
