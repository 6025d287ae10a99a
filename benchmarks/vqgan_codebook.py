"""Dead-code fixes of the VQGAN quantiser, side by side: the same small VQGAN trained on the synthetic
set with no fix, the usage-entropy loss, the dead-code restart, and both; codebook usage and
reconstruction error after the same number of steps.

  python benchmarks/vqgan_codebook.py [--steps 200] [--image_size 32] [--num_codes 64]

Usage figures: `eval used` = fraction of each codebook used by the whole eval split's tokens
(unseen identities; the codebook_usage evaluator); `running dead` = fraction of codes whose running usage (the trainer's EMA) is below
dead_threshold / K at the end; `perplexity` = per eval batch (K = uniform use of all codes).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

from benchmarks import common  # noqa: E402
from configs import vqgan as vqgan_config  # noqa: E402
from data_prep.synthetic.prepare import prepare_synthetic  # noqa: E402
from swaptalk_jax.core.loop import evaluate  # noqa: E402
from swaptalk_jax.core.trainer import global_batch  # noqa: E402
from swaptalk_jax.trainers.registry import build_trainer  # noqa: E402

VARIANTS = {"none": (0.0, False), "entropy": (0.01, False), "restart": (0.0, True),
            "entropy+restart": (0.01, True)}


class _NoWriter:
  def write_scalars(self, *a):
    pass

  def write_images(self, *a):
    pass


def small_config(data_dir: str, image_size: int, num_codes: int, entropy: float, restart: bool):
  c = vqgan_config.get_config("tiny")
  if image_size < 64:   # f4 at 32 px keeps an 8x8 token grid
    c.model.update(ch=16, ch_mult=(1, 2, 2), z_channels=16, embed_dim=16, num_groups=8)
    c.discriminator.update(base_features=8, num_layers=2, num_groups=4)
  c.model.num_codes = num_codes
  c.data.sources = [dict(name="synthetic", data_dir=data_dir, weight=1.0)]
  c.data.update(image_size=image_size, batch_size=8)
  c.train.update(async_checkpointing=False, eval_every=0, checkpoint_every=10**6, eval_batches=2,
                 ema_decay=0.9)
  c.optim.generator.learning_rate = 1e-3
  c.loss.update(disc_start=10**6, entropy_weight=entropy)
  c.codebook_restart.enabled = restart
  return c


def train_variant(config, steps: int) -> dict:
  with tempfile.TemporaryDirectory() as workdir:
    trainer = build_trainer(config, workdir, devices=jax.devices()[:1])
    with trainer.scope():
      state = trainer.restore_or_init()
      for _ in range(steps):
        state, metrics = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                                trainer.batch_sharding))
      scores = evaluate(trainer, state, _NoWriter(), steps)
      metrics = jax.device_get(metrics)
  return dict(train_l1=float(metrics["generator/l1"]), eval_l1=scores["l1"],
              used_upper=scores["codebook_usage/used_upper"],
              used_lower=scores["codebook_usage/used_lower"],
              dead_upper=float(metrics["generator/dead_codes_upper"]),
              dead_lower=float(metrics["generator/dead_codes_lower"]),
              perplexity_upper=scores["perplexity_upper"],
              perplexity_lower=scores["perplexity_lower"])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--image_size", type=int, default=32)
  parser.add_argument("--num_codes", type=int, default=64)
  parser.add_argument("--variants", default=",".join(VARIANTS))
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as data_dir:
    prepare_synthetic(data_dir, identities=10, clips_per_identity=1, seconds=1.0,
                      resolution=max(64, args.image_size), seed=0, test_identities=2)
    rows = []
    for name in args.variants.split(","):
      entropy, restart = VARIANTS[name]
      config = small_config(data_dir, args.image_size, args.num_codes, entropy, restart)
      r = train_variant(config, args.steps)
      rows.append([name, f"{r['train_l1']:.4f}", f"{r['eval_l1']:.4f}",
                   f"{r['used_upper']:.2f}/{r['used_lower']:.2f}",
                   f"{r['dead_upper']:.2f}/{r['dead_lower']:.2f}",
                   f"{r['perplexity_upper']:.1f}/{r['perplexity_lower']:.1f}"])
      print(name, r, flush=True)
  print(f"\n{args.steps} steps, {args.image_size} px, K={args.num_codes} codes per half, batch 8, "
        f"{common.cpu_threads()} CPU threads")
  common.print_table(rows, ["dead-code fix", "train L1", "eval L1", "eval used U/L",
                            "running dead U/L", "perplexity U/L"])


if __name__ == "__main__":
  main()
