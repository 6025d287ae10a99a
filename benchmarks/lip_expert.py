"""The VQ-lip expert: step time / MFU at the micro/tiny size, and which fixes get it off the BCE
0.69 plateau, side by side (same data, same steps, same seed, one process).

  python benchmarks/lip_expert.py --vqgan WORKDIR --data DATA_DIR [--config micro] [--steps 300]
      [--variants default,wav2lip,...] [--offset]

WORKDIR: a stage-0 `swaptalk train` run (e.g. configs/vqgan.py:micro); DATA_DIR holds the prepared
`synthetic/` set it was trained on. Per variant: steps until the train BCE (mean of 10 steps) first
falls below 0.65 ('-' = never), the last 20 steps' train BCE, held-out-identity eval accuracy and
BCE, and with --offset the AV-offset detection accuracy at 0 / within +-1 frame (eval clips).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from configs import lip_expert as lip_expert_config  # noqa: E402
from swaptalk_jax.core.trainer import global_batch  # noqa: E402
from swaptalk_jax.trainers import lip_expert as trainer_lib  # noqa: E402
from swaptalk_jax.trainers.registry import build_trainer  # noqa: E402

# name -> config overrides (dotted keys) on top of the variant's defaults.
VARIANTS = {
    "default": {},
    "no_center": {"model.center_window": False},                # the window mean left in
    "wav2lip": {"model.score": "wav2lip"},                      # p = cos of ReLU'd embeddings
    "no_scale": {"model.temperature": "fixed", "model.init_scale": 1.0},
    "fixed_scale": {"model.temperature": "fixed"},
    "no_stream_norm": {"model.stream_norm": "none"},
    "no_token_norm": {"model.token_norm": False},
    "no_warmup": {"optim.expert.warmup_steps": 0},
    "lr_1e-4": {"optim.expert.learning_rate": 1e-4},
    "lr_3e-3": {"optim.expert.learning_rate": 3e-3},
    "mean_pool": {"model.pool": "mean"},
    "hard_neg_2": {"data.lip_expert.min_offset_frames": 2},
}


def apply(config, overrides: dict):
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def make_config(variant: str, vqgan: str, data_dir: str, steps: int, seed: int, overrides: dict):
  c = lip_expert_config.get_config(variant)
  c.vqgan.workdir = vqgan
  c.data.sources = [dict(name="synthetic", data_dir=data_dir, weight=1.0)]
  c.seed = seed
  c.data.shuffle_seed = seed
  c.train.update(num_steps=steps, async_checkpointing=False, eval_every=0,
                 checkpoint_every=10 ** 6)
  return apply(c, overrides)


def steps_below(bce: np.ndarray, threshold: float = 0.65, smooth: int = 10):
  """First step at which the running mean of `smooth` steps is below `threshold`, else None."""
  if len(bce) < smooth:
    return None
  running = np.convolve(bce, np.ones(smooth) / smooth, mode="valid")
  hits = np.nonzero(running < threshold)[0]
  return int(hits[0] + smooth) if len(hits) else None


def train(config, devices=None):
  """Trains config.train.num_steps steps; returns (trainer, state, per-step train BCE, seconds
  per step after the first)."""
  trainer = build_trainer(config, tempfile.mkdtemp(prefix="lip_expert_bench_"),
                          devices=devices or jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    metrics, start = [], None
    for i in range(config.train.num_steps):
      state, m = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
      metrics.append(m["expert/bce"])
      if i == 0:
        jax.block_until_ready(m)
        start = time.perf_counter()
    jax.block_until_ready(state)
    seconds = (time.perf_counter() - start) / max(config.train.num_steps - 1, 1)
  return trainer, state, np.asarray(jax.device_get(metrics)), seconds


def evaluate(trainer, state, offset: bool):
  """Held-out eval (batch means over config.train.eval_batches) and optionally offset detection."""
  params = trainer.eval_params(state)
  scores = []
  with trainer.scope():
    for i, local in zip(range(trainer.config.train.eval_batches), trainer.make_eval_iter()):
      scores.append(jax.device_get(trainer.eval_fn(params, global_batch(
          local, trainer.batch_sharding), jax.random.PRNGKey(i))))
  out = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
  if offset:
    figures, _ = trainer_lib.offset_evaluation(trainer.config, trainer.task,
                                               state.ema_params["expert"], delays=(0,))
    out.update(figures)
  return out


def step_flops(trainer, state) -> float:
  """FLOPs of one train step from XLA's cost analysis (forward + backward + update)."""
  batch = {k: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=trainer.batch_sharding)
           for k, s in trainer.batch_spec.items()}
  with trainer.scope():
    cost = trainer.step_fn.lower(state, batch, trainer.frozen).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--vqgan", required=True, help="stage-0 run directory")
  parser.add_argument("--data", required=True, help="data_dir holding synthetic/")
  parser.add_argument("--config", default="micro", choices=("micro", "tiny"))
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--variants", default=",".join(VARIANTS))
  parser.add_argument("--offset", action="store_true", help="also AV-offset detection")
  args = parser.parse_args()
  names = args.variants.split(",")
  unknown = sorted(set(names) - set(VARIANTS))
  if unknown:
    parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")

  peak = common.measure_matmul_peak()
  rows = []
  for name in names:
    config = make_config(args.config, args.vqgan, args.data, args.steps, args.seed, VARIANTS[name])
    trainer, state, bce, seconds = train(config)
    scores = evaluate(trainer, state, args.offset)
    row = dict(variant=name, steps_to_065=steps_below(bce), last_bce=float(bce[-20:].mean()),
               eval_acc=scores["accuracy"], eval_bce=scores["bce"], step_ms=1e3 * seconds)
    if name == names[0]:
      flops = step_flops(trainer, state)
      row["gflops_step"] = flops / 1e9
      if peak:
        row["mfu"] = flops / seconds / (peak * 1e9)   # peak is in GFLOP/s
    if args.offset:
      row.update(offset_acc=scores["offset_acc"], offset_acc_1=scores["offset_acc_1"])
    rows.append(row)
    print(row, flush=True)
  keys = list(dict.fromkeys(k for r in rows for k in r))
  print("\n" + " | ".join(keys))
  for r in rows:
    print(" | ".join("-" if r.get(k) is None else (f"{r[k]:.3f}" if isinstance(r[k], float)
                                                    else str(r[k])) for k in keys))


if __name__ == "__main__":
  main()
