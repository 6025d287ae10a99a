"""Stage-1 swap: step time and MFU of `configs/swap.py:tiny` on this CPU, and seed Table IV side by
side at tiny size: every row trained for the same steps on the same data, then scored on held-out
identities against the exact ground truth (evaluators/swap_pairs.py), next to the trivial swaps.

  python benchmarks/swap.py --vqgan outputs/vqgan_tiny --vqgan_variant tiny --data data \
      [--steps 300] [--identity_kind trained --identity_workdir DIR | --identity_kind arcface \
      --arcface_path FILE] [--skip_table]

Rows: transformer (L_proxy + L_id_src + L_id_res), transformer without L_id_res, without L_id_src,
and the UNet backbone (same losses as the first row). The identity rows need an identity network
(`--identity_kind`); without one, the rows run on L_proxy alone and the table says so. MFU = XLA's
FLOPs of the compiled step / median step time / measured matmul peak (benchmarks/common.py). Other
processes share this machine's cores: the numbers are medians under that load.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402

from benchmarks import common  # noqa: E402
from configs import swap as swap_configs  # noqa: E402
from swaptalk_jax.core import sharding  # noqa: E402
from swaptalk_jax.core.trainer import global_batch  # noqa: E402
from swaptalk_jax.data import pipelines  # noqa: E402
from swaptalk_jax.evaluators import swap_pairs  # noqa: E402
from swaptalk_jax.trainers.registry import build_trainer  # noqa: E402


def make_config(args, variant: str = "tiny", **overrides):
  c = swap_configs.get_config(variant)
  c.vqgan.update(workdir=args.vqgan, variant=args.vqgan_variant)
  from configs import vqgan as vqgan_configs  # pylint: disable=g-import-not-at-top
  c.model.token_dim = vqgan_configs.model_config(args.vqgan_variant).embed_dim
  c.data.sources = [dict(name="synthetic", data_dir=args.data, weight=1.0)]
  c.data.image_size = args.image_size
  c.train.update(async_checkpointing=False, eval_every=0, checkpoint_every=10 ** 6,
                 num_steps=args.steps)
  if args.identity_kind != "none":
    c.identity.update(kind=args.identity_kind, workdir=args.identity_workdir,
                      arcface_path=args.arcface_path)
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def step_time_and_mfu(config, peak_gflops: float) -> dict:
  trainer = build_trainer(config, tempfile.mkdtemp(), devices=jax.devices()[:1])
  with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    state = trainer.restore_or_init()
    batch = global_batch(next(trainer.train_iter), trainer.batch_sharding)
    compiled = trainer.step_fn.lower(state, batch, trainer.frozen).compile()
    cost = compiled.cost_analysis()
    flops = float((cost[0] if isinstance(cost, (list, tuple)) else cost).get("flops", 0.0))
    box = [state]

    def step():
      box[0], metrics = trainer.step_fn(box[0], batch, trainer.frozen)
      return metrics

    _, median, _ = common.time_fn_stats(step, warmup=2, iters=10)
  return dict(step_s=median, gflop=flops / 1e9, mfu=flops / median / (peak_gflops * 1e9))


def train_and_score(config, args) -> tuple[dict, float]:
  trainer = build_trainer(config, tempfile.mkdtemp(), devices=jax.devices()[:1])
  start = time.perf_counter()
  with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    state = trainer.restore_or_init()
    for _ in range(args.steps):
      state, _ = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    scores = swap_pairs.swap_scores(trainer.task, trainer.eval_params(state),
                                   pipelines.dataset_path(config.data.sources[0]), "test",
                                   args.image_size,
                                   frames_per_clip=args.frames_per_clip)
  return scores, seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vqgan", required=True, help="stage-0 run dir (swaptalk train workdir)")
  parser.add_argument("--vqgan_variant", default="tiny")
  parser.add_argument("--data", required=True, help="data_dir holding synthetic/")
  parser.add_argument("--image_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--frames_per_clip", type=int, default=6)
  parser.add_argument("--identity_kind", default="none", choices=("none", "arcface", "trained"))
  parser.add_argument("--identity_workdir", default=None)
  parser.add_argument("--arcface_path", default=None)
  parser.add_argument("--skip_table", action="store_true")
  args = parser.parse_args()

  peak = common.measure_matmul_peak()
  print(f"jax {jax.__version__}, {common.cpu_threads()} cpu threads, matmul peak {peak:.1f} GFLOP/s")
  timing = step_time_and_mfu(make_config(args), peak)
  common.print_table([["tiny (on-the-fly encode)", timing["step_s"], timing["gflop"],
                       timing["mfu"]]], ["step", "seconds", "GFLOP", "MFU"])
  if args.skip_table:
    return
  with_id = args.identity_kind != "none"
  rows = [("transformer", "tiny", {}),
          ("transformer w/o L_id_res", "tiny", {"loss.id_res_weight": 0.0}),
          ("transformer w/o L_id_src", "tiny", {"loss.id_src_weight": 0.0}),
          ("unet", "tiny_unet", {})]
  if not with_id:
    print("no identity network given (--identity_kind): every row trains on L_proxy alone, so the "
          "identity-loss rows are not run")
    rows = [rows[0], rows[3]]
  table, reference = [], None
  for name, variant, overrides in rows:
    if with_id:
      overrides = {"loss.id_src_weight": 0.1, "loss.id_res_weight": 0.1, **overrides}
    scores, seconds = train_and_score(make_config(args, variant, **overrides), args)
    reference = scores
    s = scores["swap"]
    table.append([name, s["ssim"], s["l1"], s["l1_lower"], s["id_top1"], s["landmarks"], seconds])
  for name in ("no_swap", "paste_source", "vqgan_target", "vqgan_source", "vqgan_gt"):
    s = reference[name]
    table.append([f"baseline: {name}", s["ssim"], s["l1"], s["l1_lower"], s["id_top1"],
                  s["landmarks"], 0.0])
  print(f"\nTable IV at tiny size: {args.steps} steps each, held-out identities, exact ground truth "
        f"(id_top1 chance {reference['chance']['id_top1']:.2f}, ground truth "
        f"{reference['ground_truth']['id_top1']:.2f})")
  common.print_table(table, ["row", "SSIM", "L1", "L1 lower", "ID top-1 (dlib)",
                             "landmarks (px@256)", "train s"])


if __name__ == "__main__":
  main()
