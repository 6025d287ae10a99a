"""Session fixtures shared by the stage tests: one synthetic dataset and one trained VQGAN with the
paper's 16x16 token grid (`configs/vqgan.py:micro`, 32 px), made once per test session.

`stage_data`: 10 identities (8 train, 2 held out for test), 2 clips x 3 s each, 64 px, with the
exact swap and re-sync ground truth of the synthetic set. `tiny_vqgan`: the whole stage-0 objective
(GAN from step 200, both dead-code fixes) trained on it for 1000 steps on one device and
checkpointed; swap, lip-expert and lip-sync tests load it as their frozen VQGAN.
"""
import dataclasses
import pathlib
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import pytest

VQGAN_STEPS = 1000


@dataclasses.dataclass
class TrainedVQGAN:
  workdir: str            # a `swaptalk train` run directory (checkpoint at VQGAN_STEPS)
  config: Any             # its config (configs/vqgan.py:micro on stage_data)
  params: Any             # EMA generator params (host numpy)
  data_dir: pathlib.Path  # the data_dir holding `synthetic/`
  metrics: list           # per-step train metrics
  scores: dict            # eval scores (held-out identities) + 'train_l1'
  task_state: Any


def data_sources(data_dir) -> list:
  """`config.data.sources` for the synthetic set under `data_dir`."""
  return [dict(name="synthetic", data_dir=str(data_dir), weight=1.0)]


@pytest.fixture(scope="session")
def stage_data(tmp_path_factory) -> pathlib.Path:
  """The data_dir (holding `synthetic/<version>/`) of the stage tests' synthetic set."""
  from data_prep.synthetic.prepare import prepare_synthetic
  out = tmp_path_factory.mktemp("stage_data")
  prepare_synthetic(out, identities=10, clips_per_identity=2, seconds=3.0, resolution=64, seed=0,
                    test_identities=2)
  return out


def micro_vqgan_config(data_dir, **overrides):
  from configs import vqgan as vqgan_config
  from core_helpers import apply_overrides
  c = vqgan_config.get_config("micro")
  c.data.sources = data_sources(data_dir)
  c.train.update(async_checkpointing=False, eval_every=0, checkpoint_every=VQGAN_STEPS,
                 eval_batches=2)
  return apply_overrides(c, overrides)


class CachedEmbedder:
  """dlib's identity embedder (face/recognition.py) with its descriptors kept by content: the
  stage tests' identity figures embed the same crops again and again (the gallery once per
  candidate, a source photo once per pair, a mean image once per frame), ~85 ms each on a CPU.
  Same descriptors as the plain embedder: dlib is deterministic."""

  def __init__(self):
    from swaptalk_jax.face import recognition  # pylint: disable=import-outside-toplevel
    self._embedder = recognition.DlibIdentityEmbedder()
    self._cache = {}

  def embed(self, image, box=None):
    image = np.ascontiguousarray(image)
    key = (image.tobytes(), image.shape, None if box is None else tuple(np.asarray(box).tolist()))
    if key not in self._cache:
      self._cache[key] = self._embedder.embed(image, box)
    return self._cache[key]


class _NullWriter:
  def write_scalars(self, *a):
    pass

  def write_images(self, *a):
    pass


@pytest.fixture(scope="session")
def tiny_vqgan(stage_data, tmp_path_factory) -> TrainedVQGAN:
  from swaptalk_jax.core import checkpoint, sharding
  from swaptalk_jax.core.loop import evaluate
  from swaptalk_jax.core.trainer import global_batch
  from swaptalk_jax.trainers.registry import build_trainer
  config = micro_vqgan_config(stage_data)
  workdir = str(tmp_path_factory.mktemp("vqgan_run"))
  trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
  with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(sharding.rules_from_config(config)):
    state = trainer.restore_or_init()
    metrics = []
    for _ in range(VQGAN_STEPS):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      metrics.append(m)
    metrics = jax.device_get(metrics)
    scores = evaluate(trainer, state, _NullWriter(), VQGAN_STEPS)   # held-out identities
    params = trainer.eval_params(state)
    train_scores = [jax.device_get(trainer.eval_fn(params, global_batch(
        next(trainer.train_iter), trainer.batch_sharding), jax.random.key(0))) for _ in range(2)]
    scores["train_l1"] = float(np.mean([t["l1"] for t in train_scores]))
    checkpoint.save(trainer.manager, VQGAN_STEPS, state, trainer.train_iter, config, force=True)
    trainer.manager.wait_until_finished()
  return TrainedVQGAN(workdir=workdir, config=config,
                      params=jax.device_get(state.ema_params["generator"]), data_dir=stage_data,
                      metrics=metrics, scores=scores, task_state=jax.device_get(state.task_state))
