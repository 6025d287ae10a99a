"""Stage-1 swap: step time and MFU of `configs/swap.py:tiny` on this CPU, and seed Table IV side by
side at tiny size: every row trained for the same steps on the same data (same seed, init and
batch order), then scored on held-out identities against the exact ground truth
(evaluators/swap_pairs.py), next to the trivial swaps.

  python benchmarks/swap.py --vqgan outputs/vqgan_tiny --vqgan_variant tiny --data data \
      [--steps 300] [--identity_kind trained --identity_workdir DIR | --identity_kind arcface \
      --arcface_path FILE] [--skip_table] [--skip_timing] [--json OUT.json]

Rows: transformer (L_proxy + L_id_src + L_id_res), transformer without L_id_res, without L_id_src,
transformer on L_proxy alone (no identity loss: the control of claim C3), and the UNet backbone
(same losses as the first row). The identity rows need an identity network (`--identity_kind`);
without one, the rows run on L_proxy alone and the table says so. With an identity network, the
swaps are also retrieved with it ("ID top-1 (net)", the net the losses train through) next to
dlib's recogniser (independent of it). `--json` writes every row's means and per-target-clip values
(benchmarks/claims.py --swap_table reads them for C3's paired bootstrap).
MFU = XLA's FLOPs of the compiled step / median step time / measured matmul peak
(benchmarks/common.py). Other processes share this machine's cores: the numbers are medians under
that load.
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from configs import swap as swap_configs  # noqa: E402
from swaptalk_jax.core import sharding  # noqa: E402
from swaptalk_jax.core.trainer import global_batch  # noqa: E402
from swaptalk_jax.data import pipelines  # noqa: E402
from swaptalk_jax.evaluators import swap_pairs  # noqa: E402
from swaptalk_jax.trainers import swap as swap_trainer  # noqa: E402
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


ID_WEIGHT = 0.1   # L_id_src / L_id_res weight of the rows that have them (configs/swap.py's paper value)
ROWS = (("transformer", "tiny", {}),
        ("transformer w/o L_id_res", "tiny", {"loss.id_res_weight": 0.0}),
        ("transformer w/o L_id_src", "tiny", {"loss.id_src_weight": 0.0}),
        ("transformer, L_proxy only", "tiny", {"loss.id_src_weight": 0.0,
                                               "loss.id_res_weight": 0.0}),
        ("unet", "tiny_unet", {}))
PROXY_ONLY = "transformer, L_proxy only"
BASELINES = ("no_swap", "paste_source", "vqgan_target", "vqgan_source", "vqgan_gt")
COLUMNS = (("ssim", "SSIM"), ("l1", "L1"), ("l1_lower", "L1 lower"), ("id_top1", "ID top-1 (dlib)"),
           ("id_top1_net", "ID top-1 (net)"), ("landmarks", "landmarks (px@256)"))


def table_rows(with_id: bool):
  """(name, variant, overrides) of the rows to train; without an identity net, L_proxy only."""
  if not with_id:
    return [(ROWS[0][0] + " (L_proxy only)", "tiny", {}), (ROWS[4][0] + " (L_proxy only)",
                                                          "tiny_unet", {})]
  return [(name, variant, {"loss.id_src_weight": ID_WEIGHT, "loss.id_res_weight": ID_WEIGHT,
                           **overrides}) for name, variant, overrides in ROWS]


def scoring_identity_net(args):
  """(IdentityNet, params) the identity rows train through, to score retrieval with; or None."""
  if args.identity_kind == "none":
    return None
  config = make_config(args, "tiny", **{"loss.id_src_weight": ID_WEIGHT})
  return swap_trainer.load_identity_net(config)


def per_clip(values: dict, clips: np.ndarray) -> dict:
  """{metric: {target clip: mean over its pairs}} (the paired bootstrap's resampling unit)."""
  return {metric: {str(c): float(np.mean(v[clips == c])) for c in np.unique(clips)}
          for metric, v in values.items()}


def train_and_score(config, args, identity, candidates) -> tuple[dict, float]:
  """Trains one row for args.steps, then its per-pair figures on the held-out pairs."""
  trainer = build_trainer(config, tempfile.mkdtemp(), devices=jax.devices()[:1])
  start = time.perf_counter()
  with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    state = trainer.restore_or_init()
    for _ in range(args.steps):
      state, _ = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    result = swap_pairs.swap_pair_values(trainer.task, trainer.eval_params(state),
                                         pipelines.dataset_path(config.data.sources[0]), "test",
                                         args.image_size, frames_per_clip=args.frames_per_clip,
                                         identity=identity, candidates=candidates)
  return result, seconds


def table_line(name: str, means: dict, seconds: float) -> list:
  return [name] + [means.get(key, float("nan")) for key, _ in COLUMNS] + [seconds]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vqgan", required=True, help="stage-0 run dir (swaptalk train workdir)")
  parser.add_argument("--vqgan_variant", default="tiny")
  parser.add_argument("--data", required=True, help="data_dir holding synthetic/")
  parser.add_argument("--image_size", type=int, default=0,
                      help="0: the VQGAN variant's image size (configs/vqgan.py)")
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--frames_per_clip", type=int, default=6)
  parser.add_argument("--identity_kind", default="none", choices=("none", "arcface", "trained"))
  parser.add_argument("--identity_workdir", default=None)
  parser.add_argument("--arcface_path", default=None)
  parser.add_argument("--skip_table", action="store_true")
  parser.add_argument("--skip_timing", action="store_true", help="no step-time / MFU row")
  parser.add_argument("--json", default=None, help="write the table's means and per-clip values")
  args = parser.parse_args()
  if not args.image_size:
    from configs import vqgan as vqgan_configs  # pylint: disable=g-import-not-at-top
    args.image_size = int(vqgan_configs.get_config(args.vqgan_variant).data.image_size)
  if args.steps < 1:
    sys.exit(f"swap benchmark: --steps must be >= 1, got {args.steps}")
  if args.skip_table and args.skip_timing:
    sys.exit("swap benchmark: --skip_table and --skip_timing together leave nothing to run")
  start_all = time.perf_counter()
  if not args.skip_timing:
    peak = common.measure_matmul_peak()
    print(f"jax {jax.__version__}, {common.cpu_threads()} cpu threads, matmul peak {peak:.1f} "
          "GFLOP/s")
    timing = step_time_and_mfu(make_config(args), peak)
    common.print_table([["tiny (on-the-fly encode)", timing["step_s"], timing["gflop"],
                         timing["mfu"]]], ["step", "seconds", "GFLOP", "MFU"])
  if args.skip_table:
    return
  with_id = args.identity_kind != "none"
  if not with_id:
    print("no identity network given (--identity_kind): every row trains on L_proxy alone, so the "
          "identity-loss rows are not run")
  identity = scoring_identity_net(args)
  table, doc, first = [], {"rows": {}, "baselines": {}}, None
  for name, variant, overrides in table_rows(with_id):
    candidates = ("swap",) if first is not None else swap_pairs.CANDIDATES
    result, seconds = train_and_score(make_config(args, variant, **overrides), args, identity,
                                      candidates)
    first = first or result
    values = result["values"]["swap"]
    means = {k: float(np.mean(v)) for k, v in values.items()}
    table.append(table_line(name, means, seconds))
    doc["rows"][name] = dict(variant=variant, overrides=overrides, train_s=seconds, means=means,
                             per_clip=per_clip(values, result["target_clip"]))
    print(f"swap benchmark: {name}: {means} ({seconds:.0f} s training)", flush=True)
  for name in BASELINES:
    values = first["values"][name]
    means = {k: float(np.mean(v)) for k, v in values.items()}
    table.append(table_line(f"baseline: {name}", means, 0.0))
    doc["baselines"][name] = dict(means=means, per_clip=per_clip(values, first["target_clip"]))
  chance, truth = first["chance"], first["ground_truth"]
  title = (f"Table IV at tiny size: {args.steps} steps each, held-out identities, exact ground truth "
           f"({len(first['target_clip'])} pairs from {len(np.unique(first['target_clip']))} target "
           f"clips; id_top1 chance {chance.get('id_top1', float('nan')):.2f}, ground truth dlib "
           f"{truth.get('id_top1', float('nan')):.2f}, net {truth.get('id_top1_net', float('nan')):.2f})")
  print("\n" + title)
  common.print_table(table, ["row"] + [heading for _, heading in COLUMNS] + ["train s"])
  print(f"swap benchmark: {time.perf_counter() - start_all:.0f} s wall")
  if args.json:
    doc["meta"] = dict(title=title, steps=args.steps, frames_per_clip=args.frames_per_clip,
                       image_size=args.image_size, vqgan=args.vqgan,
                       vqgan_variant=args.vqgan_variant, identity_kind=args.identity_kind,
                       identity_workdir=args.identity_workdir, id_weight=ID_WEIGHT,
                       chance=chance, ground_truth=truth, argv=sys.argv[1:],
                       wall_s=time.perf_counter() - start_all)
    with open(args.json, "w") as f:
      json.dump(doc, f, indent=1)
    print(f"swap benchmark: wrote {args.json}")


if __name__ == "__main__":
  main()
