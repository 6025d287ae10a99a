"""Session fixture: one VQ-lip expert (`configs/lip_expert.py:micro`) trained on the stage tests'
synthetic set over the session's micro VQGAN, checkpointed, with its held-out figures. Stage 2's
tests read it; stage 3's tests load it as their frozen sync judge (`.workdir` through
`core.checkpoint.load_params(workdir, "expert")`, or `.task` / `.params` directly).

Register it in tests/conftest.py: `from lip_expert_fixtures import lip_expert  # noqa`.
"""
import dataclasses
from typing import Any

import jax
import numpy as np
import pytest

EXPERT_STEPS = 300


@dataclasses.dataclass
class TrainedLipExpert:
  workdir: str          # a `swaptalk train` run directory (checkpoint at EXPERT_STEPS)
  config: Any           # configs/lip_expert.py:micro on stage_data over tiny_vqgan
  task: Any             # trainers.lip_expert.LipExpertTask (.expert, .vqgan)
  params: Any           # EMA expert params (host numpy)
  bce: np.ndarray       # per-step train BCE
  scores: dict          # held-out eval batch means (accuracy, bce, ...)
  offsets: dict         # offset_evaluation figures (held-out clips; delays 0, +5, -5)
  offset_image: np.ndarray


def micro_expert_config(data_dir, vqgan_workdir, **overrides):
  from configs import lip_expert as lip_expert_config
  from core_helpers import apply_overrides
  from stage_fixtures import data_sources
  c = lip_expert_config.get_config("micro")
  c.vqgan.workdir = str(vqgan_workdir)
  c.data.sources = data_sources(data_dir)
  c.train.update(num_steps=EXPERT_STEPS, async_checkpointing=False, eval_every=0,
                 checkpoint_every=EXPERT_STEPS, eval_batches=4)
  return apply_overrides(c, overrides)


def train_expert(config, workdir):
  """Trains config.train.num_steps steps on one device and checkpoints; (trainer, state, bce)."""
  from swaptalk_jax.core import checkpoint
  from swaptalk_jax.core.trainer import global_batch
  from swaptalk_jax.trainers.registry import build_trainer
  trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    bce = []
    for _ in range(config.train.num_steps):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      bce.append(m["expert/bce"])
    checkpoint.save(trainer.manager, config.train.num_steps, state, trainer.train_iter, config,
                    force=True)
    trainer.manager.wait_until_finished()
  return trainer, state, np.asarray(jax.device_get(bce))


def held_out_scores(trainer, state) -> dict:
  from swaptalk_jax.core.trainer import global_batch
  params = trainer.eval_params(state)
  out = []
  with trainer.scope():
    for i, local in zip(range(trainer.config.train.eval_batches), trainer.make_eval_iter()):
      out.append(jax.device_get(trainer.eval_fn(params, global_batch(local, trainer.batch_sharding),
                                                jax.random.PRNGKey(i))))
  return {k: float(np.mean([o[k] for o in out])) for k in out[0]}


@pytest.fixture(scope="session")
def lip_expert(stage_data, tiny_vqgan, tmp_path_factory) -> TrainedLipExpert:
  from swaptalk_jax.trainers import lip_expert as trainer_lib
  config = micro_expert_config(stage_data, tiny_vqgan.workdir)
  workdir = str(tmp_path_factory.mktemp("lip_expert_run"))
  trainer, state, bce = train_expert(config, workdir)
  params = jax.device_get(state.ema_params["expert"])
  offsets, image = trainer_lib.offset_evaluation(config, trainer.task, params)
  return TrainedLipExpert(workdir=workdir, config=config, task=trainer.task, params=params,
                          bce=bce, scores=held_out_scores(trainer, state), offsets=offsets,
                          offset_image=image)
