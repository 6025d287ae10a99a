"""Stage 1 through the shared core on the session fixtures (synthetic set + trained micro VQGAN with
the paper's 16x16 token grid): the swap learns on training identities and, on HELD-OUT identities,
beats leaving the target alone against the exact ground truth (it does not yet beat copying the
source's tokens: see the test); bad inputs fail in one line."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import swap as swap_configs
from core_helpers import apply_overrides
from stage_fixtures import CachedEmbedder, data_sources
from swaptalk_jax.core import reporting as core_metrics
from swaptalk_jax.core import sharding
from swaptalk_jax.core.trainer import global_batch
from swaptalk_jax.data import pipelines
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.evaluators import swap_pairs
from swaptalk_jax.metrics import identity_preservation
from swaptalk_jax.trainers.registry import build_trainer

TRAIN_STEPS = 300


def swap_config(vqgan, **overrides):
  """configs/swap.py:tiny on the fixture VQGAN (micro: 32 px, 16x16 tokens of 16 dims)."""
  c = swap_configs.get_config("tiny")
  c.vqgan.update(workdir=vqgan.workdir, variant="micro")
  c.model.token_dim = vqgan.config.model.embed_dim
  c.data.sources = data_sources(vqgan.data_dir)
  c.data.image_size = vqgan.config.data.image_size
  c.train.update(async_checkpointing=False, eval_every=0, checkpoint_every=10_000, eval_batches=2,
                 num_steps=TRAIN_STEPS)
  return apply_overrides(c, overrides)


@pytest.fixture(scope="module")
def trained_swap(tiny_vqgan, tmp_path_factory):
  config = swap_config(tiny_vqgan)
  workdir = str(tmp_path_factory.mktemp("swap_run"))
  trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
  with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    state = trainer.restore_or_init()
    history = []
    for _ in range(TRAIN_STEPS):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      history.append(m)
    history = jax.device_get(history)
    params = trainer.eval_params(state)
    eval_batch = global_batch(next(trainer.make_eval_iter()), trainer.batch_sharding)
    batch_metrics = jax.device_get(trainer.eval_fn(params, eval_batch, jax.random.key(0)))
    grid = jax.device_get(trainer.summary_fn(params, eval_batch))
    # dlib descriptors kept by content (same figures): swap_scores embeds the gallery once per
    # candidate and each source photo once per pair
    embedder = CachedEmbedder()
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(identity_preservation, "default_embedder", lambda: embedder)
      scores = swap_pairs.swap_scores(trainer.task, params,
                                     pipelines.dataset_path(config.data.sources[0]), "test",
                                     config.data.image_size, frames_per_clip=6)
  writer = core_metrics.make_writer(workdir)
  writer.write_images(TRAIN_STEPS, {f"eval/{k}": core_metrics.to_image_grid(v)
                                    for k, v in grid.items()})
  writer.flush()
  return dict(config=config, workdir=workdir, history=history, scores=scores,
              batch_metrics=batch_metrics, grid=grid)


@pytest.mark.slow
def test_swap_learns_and_beats_no_swap_on_heldout_identities(trained_swap):
  history, scores = trained_swap["history"], trained_swap["scores"]
  first = np.mean([m["swap/proxy"] for m in history[:5]])
  last = np.mean([m["swap/proxy"] for m in history[-10:]])
  print(f"L_proxy first {first:.4f} last {last:.4f}; eval batch {trained_swap['batch_metrics']}")
  print("held-out identities (2 unseen, exact ground truth):\n" + swap_pairs.format_table(scores))
  assert last < 0.1 * first
  swap, no_swap, vq_target, vq_source = (scores[k] for k in ("swap", "no_swap", "vqgan_target",
                                                             "vqgan_source"))
  # Against the exact ground truth of unseen identities, the swap is far better than the target
  # left alone (raw or through the VQGAN) on SSIM and L1 (measured at 300 steps: SSIM 0.55 vs
  # -0.13 / -0.07, L1 0.075 vs 0.25 / 0.25).
  assert swap["ssim"] > max(no_swap["ssim"], vq_target["ssim"]) + 0.3
  assert swap["l1"] < 0.5 * min(no_swap["l1"], vq_target["l1"])
  # dlib retrieval of the source over 2 unseen identities at 32 px (chance 0.5) is bounded by the
  # micro VQGAN, which keeps little identity (docs/vqgan_identity.md): the swap is checked against
  # the target left alone and against copying the source's tokens (its ceiling through this
  # VQGAN), not against a fixed margin. Measured with the 2026-12-03 package set (identical on
  # 8766e66, before this session's changes): swap 0.50, no swap 0.00, target via VQGAN 0.33,
  # source tokens copied 0.50, truth via VQGAN 0.625; an earlier package set gave the swap 1.0.
  assert swap["id_top1"] > no_swap["id_top1"]
  assert swap["id_top1"] >= vq_source["id_top1"] - 0.125
  # KNOWN GAP (not yet achieved on this budget): the swap does not beat copying the source's
  # tokens (vqgan_source): measured L1 0.0783 vs 0.0795, lower half 0.0800 vs 0.0806, SSIM 0.564
  # vs 0.568, token MSE 0.0185 vs 0.0180. The source photo pasted as is (raw pixels: SSIM 0.69)
  # is better still: on these aligned crops it differs from the ground truth only in expression,
  # and the micro VQGAN's own reconstruction of the ground truth reaches SSIM 0.66. Guard: not
  # worse than the token copy by more than noise.
  assert swap["l1"] < vq_source["l1"] + 0.005 and swap["ssim"] > vq_source["ssim"] - 0.02
  # TensorBoard grid source | target | swapped | ground truth.
  assert trained_swap["grid"]["swap"].shape[2] == 4 * trained_swap["config"].data.image_size


@pytest.mark.slow
def test_bad_inputs_fail_in_one_line(tiny_vqgan, tmp_path):
  def error_of(config):
    with pytest.raises(UserError) as info:
      build_trainer(config, str(tmp_path / "run"), devices=jax.devices()[:1])
    message = str(info.value)
    assert "\n" not in message
    return message

  # A VQGAN run of another variant than config.vqgan.variant.
  assert "configs/vqgan.py:tiny" in error_of(apply_overrides(swap_config(tiny_vqgan),
                                                             {"vqgan.variant": "tiny"}))
  # No VQGAN run at the path.
  with pytest.raises(MissingFileError):
    build_trainer(swap_config(tiny_vqgan, **{"vqgan.workdir": str(tmp_path / "nothing")}),
                  str(tmp_path / "run"), devices=jax.devices()[:1])
  # The VQGAN was trained at another image size.
  assert "image_size" in error_of(swap_config(tiny_vqgan, **{"data.image_size": 64}))
  # An identity-loss weight with no identity network configured.
  assert "identity" in error_of(swap_config(tiny_vqgan, **{"loss.id_src_weight": 0.1}))
  # ArcFace chosen without its converted weights.
  assert "arcface_path" in error_of(swap_config(tiny_vqgan, **{
      "loss.id_res_weight": 0.1, "identity.kind": "arcface"}))
