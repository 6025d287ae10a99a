"""Evaluators by name (swaptalk_jax/evaluators/): codebook usage over a whole split is exact on
known tokens, runs in `swaptalk train`'s periodic eval and lands in TensorBoard; a bad evaluator
config fails before anything compiles."""
import glob
import os

import jax
import ml_collections
import numpy as np
import pytest

from core_helpers import toy_config
from swaptalk_jax.core import loop
from swaptalk_jax.errors import UserError
from swaptalk_jax.evaluators import common
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config
from swaptalk_jax.trainers import registry


class _IndexTask:
  def token_indices(self, params, batch):
    del params
    return batch["indices"]


def _context(batches, num_codes=8):
  config = ml_collections.ConfigDict(dict(model=dict(num_codes=num_codes), seed=0,
                                          train=dict(eval_batches=2)))
  return common.EvalContext(task=_IndexTask(), config=config, make_eval_iter=lambda: iter(batches),
                            to_global=lambda b: b, jit_predict=lambda fn: fn, eval_fn=None)


def test_codebook_usage_counts_every_batch_of_the_split():
  # 3 batches of 2 examples, 4 token rows (2 upper, 2 lower) x 2 columns; codes 0..7.
  upper = [np.array([[0, 1], [0, 1]]), np.array([[2, 2], [2, 2]]), np.array([[3, 3], [3, 3]])]
  batches = [{"indices": np.stack([np.concatenate([u, np.full((2, 2), 7)])] * 2)} for u in upper]
  ctx = _context(batches)
  evaluator = common.evaluator_class("codebook_usage")(ml_collections.ConfigDict(), ctx)
  scores = evaluator.run({})
  assert scores["used_upper"] == 4 / 8            # codes 0, 1, 2, 3 over the WHOLE split
  assert scores["used_lower"] == 1 / 8            # code 7 only
  assert scores["tokens_per_half"] == 3 * 2 * 4
  counts = np.array([4, 4, 8, 8]) / 24
  np.testing.assert_allclose(scores["perplexity_upper"], np.exp(-np.sum(counts * np.log(counts))))
  assert scores["perplexity_lower"] == pytest.approx(1.0)
  # a per-batch view sees at most 2 of the 4 codes: the split-level figure is what it adds
  first_only = common.evaluator_class("codebook_usage")(
      ml_collections.ConfigDict(dict(num_batches=1)), ctx).run({})
  assert first_only["used_upper"] == 2 / 8


def test_every_registered_evaluator_resolves_to_a_class():
  for kind in common.EVALUATORS:
    cls = common.evaluator_class(kind)
    assert callable(getattr(cls, "run", None)), kind


def test_unknown_evaluator_type_fails_before_compiling(tmp_path, monkeypatch):
  config = toy_config()
  config.evals.nope = dict(type="fid_of_everything")
  monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("reached jax.jit"))
  with pytest.raises(UserError, match="unknown evaluator type 'fid_of_everything'"):
    registry.build_trainer(config, str(tmp_path), devices=jax.devices()[:1])


def _event_scalars(workdir: str) -> dict:
  """tag -> [(step, value)] of the TensorBoard event files under `workdir`."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel
  scalars = {}
  for path in glob.glob(os.path.join(workdir, "**", "events.out.tfevents.*"), recursive=True):
    acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    for tag in acc.Tags().get("tensors", []):
      values = [(e.step, _tensor_value(e.tensor_proto)) for e in acc.Tensors(tag)]
      scalars.setdefault(tag, []).extend((step, float(v)) for step, v in values if v.ndim == 0)
    for tag in acc.Tags().get("scalars", []):
      scalars.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
  return scalars


def _tensor_value(proto):
  from tensorboard.util import tensor_util  # pylint: disable=import-outside-toplevel
  return tensor_util.make_ndarray(proto)


@pytest.mark.slow
def test_codebook_usage_runs_in_periodic_eval_and_is_written(stage_data, tmp_path):
  """`loop.run` (what `swaptalk train` runs) with the micro VQGAN for 2 steps, eval at step 2: the
  codebook_usage evaluator of configs/vqgan.py covers the whole eval split, its figures equal a
  direct count over every eval image, and they are in the TensorBoard event file.

  On the stage tests' set with tiny_vqgan's config (batch 8, one device): its eval split is 2
  batches, and the step, eval and summary programs are the ones the session's micro VQGAN
  compiled (persistent compilation cache), not compiled again for this test."""
  from stage_fixtures import micro_vqgan_config  # pylint: disable=import-outside-toplevel
  config = micro_vqgan_config(stage_data, **{
      "train.num_steps": 2, "train.eval_every": 2, "train.log_every": 1,
      "train.checkpoint_every": 2, "train.eval_batches": 1})
  workdir = str(tmp_path / "run")
  trainer = registry.build_trainer(config, workdir, devices=jax.devices()[:1])
  state = loop.run(trainer)

  scalars = _event_scalars(workdir)
  assert "eval/codebook_usage/used_upper" in scalars, sorted(scalars)
  assert "eval/l1" in scalars and "eval/perplexity_upper" in scalars   # batch_mean, unprefixed
  written = {k: v[-1][1] for k, v in scalars.items() if k.startswith("eval/codebook_usage/")}

  # the same figure counted directly over every eval image with the EMA params
  model = vqgan_from_config(config.model)
  params = jax.device_get(state.ema_params["generator"])
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  images = np.concatenate([b["image"] for b in pipelines.make_eval_iterator("vqgan", config.data)])
  encode = jax.jit(lambda p, x: model.apply({"params": p}, x,
                                            method=HalfSplitVQGAN.encode_to_indices))
  indices = np.asarray(encode(params, images))
  half = indices.shape[1] // 2
  k = config.model.num_codes
  assert written["eval/codebook_usage/tokens_per_half"] == indices[:, :half].size
  assert written["eval/codebook_usage/used_upper"] == pytest.approx(
      len(np.unique(indices[:, :half])) / k)
  assert written["eval/codebook_usage/used_lower"] == pytest.approx(
      len(np.unique(indices[:, half:])) / k)
  # more tokens than one batch: the split, not a batch
  assert written["eval/codebook_usage/tokens_per_half"] > config.data.batch_size * half * indices.shape[2]
