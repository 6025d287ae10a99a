"""Stage 3 trained through the shared core on the session's synthetic set and micro VQGAN, then
evaluated cross-driven on HELD-OUT identities against the exact re-sync ground truth (the same
frames re-rendered with the mouth driven by another clip's audio), next to the baselines: the
reference lower half copied unchanged, and the output driven by shuffled audio.

What it asserts is what was measured to hold (dev runs of this config on the same synthetic recipe,
/tmp/swaptalk_dev, 300 steps): on the training identities the prediction's code error falls to
about half the copy baseline's (0.0085 vs 0.0175). On HELD-OUT identities it does NOT yet beat the
copy baseline (quantised decode, cross-driven: lower-face L1 0.0778 vs copy 0.0758, SSIM 0.585 vs
0.608, code accuracy 0.45 vs 0.53; self-driven alike), and the micro VQGAN's 32 px faces keep
little of the mouth (its own reconstruction's mouth-opening correlation with the ground truth was
0.17-0.24 by the old mouth-darkness proxy; by the dlib inner-lip measure now used,
metrics/mouth_frames.py, +0.59 for the quickstart VQGAN: benchmarks/mouth_opening_validation.py), so the audio baselines differ from the output by ~0.0003 L1. Those figures are printed,
not asserted, until the stage generalises (see the issue's report)."""
import glob
import os

import jax
import numpy as np
import pytest

from configs import lipsync as lipsync_config
from core_helpers import apply_overrides
from stage_fixtures import data_sources
from swaptalk_jax.core import reporting
from swaptalk_jax.core.loop import write_summaries
from swaptalk_jax.core.trainer import global_batch
from swaptalk_jax.trainers.lipsync import resync_report
from swaptalk_jax.trainers.registry import build_trainer

TRAIN_STEPS = 300


def small_config(vqgan, **overrides):
  """configs/lipsync.py:tiny at the micro VQGAN's 32 px, with CPU-test widths."""
  c = lipsync_config.get_config("tiny")
  c.vqgan.workdir = vqgan.workdir
  c.data.sources = data_sources(vqgan.data_dir)
  c.data.update(image_size=32, batch_size=8)
  c.model.update(warp_features=(16, 32), unet_features=(32, 64), audio_width=64, num_heads=2)
  c.train.update(num_steps=TRAIN_STEPS, async_checkpointing=False, eval_every=0,
                 checkpoint_every=10 ** 6)
  return apply_overrides(c, overrides)


@pytest.fixture(scope="module")
def trained(tiny_vqgan, tmp_path_factory):
  config = small_config(tiny_vqgan)
  workdir = str(tmp_path_factory.mktemp("lipsync_run"))
  trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    metrics = []
    for _ in range(TRAIN_STEPS):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      metrics.append(m)
    metrics = jax.device_get(metrics)
    batches = [global_batch(b, trainer.batch_sharding) for b in trainer.make_eval_iter()]
    params = trainer.eval_params(state)
    cross = resync_report(trainer.task, params, batches, cross=True)
    writer = reporting.make_writer(workdir)
    write_summaries(trainer, state, writer, TRAIN_STEPS)
    writer.flush()
  return dict(metrics=metrics, cross=cross, workdir=workdir)


def _table(report: dict) -> str:
  keys = ("lower_l1", "lower_ssim", "mouth_l1", "code_accuracy", "mouth_corr", "silent_opening")
  lines = [f"{'':10s}" + "".join(f"{k:>16s}" for k in keys)]
  for name in ("output", "copy", "shuffled", "vq"):
    lines.append(f"{name:10s}" + "".join(f"{report.get(f'{name}_{k}', float('nan')):16.4f}"
                                         for k in keys))
  return "\n".join(lines)


@pytest.mark.slow
def test_lipsync_learns_and_reports_held_out_cross_driven_figures(trained):
  metrics, cross = trained["metrics"], trained["cross"]
  first = {k: np.mean([m[k] for m in metrics[:5]]) for k in ("lipsync/code_mse",)}
  last = {k: np.mean([m[k] for m in metrics[-20:]])
          for k in ("lipsync/code_mse", "lipsync/copy_code_mse", "lipsync/code_accuracy")}
  print(f"train code MSE first {first['lipsync/code_mse']:.4f} last {last['lipsync/code_mse']:.4f} "
        f"(copy {last['lipsync/copy_code_mse']:.4f}); code accuracy {last['lipsync/code_accuracy']:.3f}"
        f"\ncross-driven, held-out identities ({cross['frames']} frames, {cross['silent_frames']} "
        f"silent; ground-truth silent opening {cross.get('gt_silent_opening', float('nan')):.4f}):\n"
        f"{_table(cross)}")
  # training: the prediction ends far closer to the target's lower-half codes than the copy
  assert last["lipsync/code_mse"] < 0.7 * last["lipsync/copy_code_mse"]
  # the held-out cross-driven figures exist for every candidate (printed above)
  assert cross["frames"] >= 60 and all(np.isfinite(v) for v in cross.values())
  assert os.path.exists(trained["workdir"]) and glob.glob(
      os.path.join(trained["workdir"], "**", "events.out.tfevents.*"), recursive=True)
