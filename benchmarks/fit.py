"""The pod-scale fit table (docs/pod_scale.md): for every paper-size stage in the registry and each
TPU target, the largest per-chip batch whose train step compiles within the chip's HBM, with the
per-chip parameter and optimizer bytes and the mesh — all compiled on this CPU through libtpu.

  python benchmarks/fit.py [--targets=v5e-8,v5e-256,v5p:4x4x4] [--stages=vqgan] \
      [--results=/tmp/fit.json] [--markdown=docs/pod_scale_table.md]

Stages come from swaptalk_jax/trainers/registry.py STAGES (paper variants below). Each (stage,
variant, target) is searched by doubling the per-chip batch from 1 until the compile does not fit
(or --max_per_chip); results are appended to --results as they come, and a rerun skips what is
there (compiles of paper-size steps take minutes on a small CPU). A stage whose frozen inputs
cannot be stood in for yet gets a row saying so. The VQGAN's LPIPS and ArcFace are ON with random
stand-in weights (same shapes as the real ones), the discriminator active: the heaviest step.
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

from swaptalk_jax.aot import compile as aot_compile, topology  # noqa: E402
from swaptalk_jax.trainers import registry  # noqa: E402

PAPER_VARIANTS = {"vqgan": ("f16", "f8"), "swap": ("transformer", "unet"),
                  "lip_expert": ("paper",), "lipsync": ("unet", "dit")}
GIB = 2 ** 30


def stage_config(stage: str, variant: str, weights_dir: str):
  """The paper-size config of a stage with stand-ins for its frozen inputs, or raises
  NotImplementedError naming what is missing."""
  if stage == "vqgan":
    from benchmarks.vqgan import benchmark_config  # pylint: disable=g-import-not-at-top
    return benchmark_config(variant, weights_dir)
  raise NotImplementedError(f"{stage} loads a trained VQGAN run (vqgan.workdir); benchmarks/fit.py "
                            "has no paper-size stand-in run for it yet")


def fit_one(config, target, per_chip: int, mesh: dict):
  config.data.batch_size = per_chip * target.chips
  config.mesh.update(mesh)
  start = time.time()
  report = aot_compile.compile_for_target(config, target)
  return report, time.time() - start


def search(stage, variant, target, weights_dir, mesh, max_per_chip, log, start=1):
  """Powers of two from `start`: up while the step fits, down while it does not; returns the row
  of the largest per-chip batch that fits (to a factor of 2)."""
  best, tried, report = None, [], None
  per_chip, direction = start, 0
  while 1 <= per_chip <= max_per_chip:
    config = stage_config(stage, variant, weights_dir)
    report, seconds = fit_one(config, target, per_chip, mesh)
    tried.append((per_chip, report.fits, round(report.peak_bytes / GIB, 2), round(seconds)))
    log(f"  {stage}:{variant} {target.name} per-chip {per_chip}: "
        f"{'fits' if report.fits else 'does not fit'} "
        f"(peak {report.peak_bytes / GIB:.2f} GiB, compiled in {seconds:.0f} s)")
    if report.fits:
      best = report
      if direction < 0:
        break
      direction, per_chip = 1, per_chip * 2
    else:
      if direction > 0:
        break
      direction, per_chip = -1, per_chip // 2
  if best is None:
    return dict(max_per_chip=0, tried=tried, mesh=report.mesh, param_bytes=report.param_bytes,
                param_counts=report.param_counts)
  return dict(max_per_chip=best.global_batch // target.chips, tried=tried, mesh=best.mesh,
              peak_gib=best.peak_bytes / GIB, hbm_gib=best.hbm_bytes / GIB,
              param_bytes=best.param_bytes, param_counts=best.param_counts,
              tflop_per_chip=best.flops_per_device / 1e12,
              capped=best.global_batch // target.chips * 2 > max_per_chip)


def markdown(results: dict) -> str:
  lines = ["| stage | target | chips | mesh | max batch / chip | peak at it (GiB of HBM) | params / chip "
           "| optimizer / chip | EMA / chip | frozen / chip | TFLOP / chip / step |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for key, r in results.items():
    stage, target = key.split("@")
    if "error" in r:
      lines.append(f"| {stage} | {target} | | | not compiled: {r['error']} | | | | | | |")
      continue
    b = r["param_bytes"]
    gib = lambda x: f"{x / GIB:.3f}"
    best = str(r["max_per_chip"]) + (" (search cap)" if r.get("capped") else "")
    peak = f"{r['peak_gib']:.2f} of {r['hbm_gib']:.0f}" if r["max_per_chip"] else "-"
    mesh = "x".join(f"{k}={v}" for k, v in r["mesh"].items())
    lines.append(f"| {stage} | {target} | {r['chips']} | {mesh} | {best} | {peak} | {gib(b['params'])} "
                 f"| {gib(b['opt_state'])} | {gib(b['ema_params'])} | {gib(b['frozen'])} "
                 f"| {r.get('tflop_per_chip', 0):.2f} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--targets", default="v5e-8,v5e-256,v5p:4x4x4")
  parser.add_argument("--stages", default=",".join(s for s in registry.STAGES if s != "toy"))
  parser.add_argument("--mesh", default="data=-1,fsdp=1", help="config.mesh for every compile")
  parser.add_argument("--max_per_chip", type=int, default=64)
  parser.add_argument("--start_per_chip", type=int, default=1,
                      help="first per-chip batch tried (a power of 2 near the answer saves compiles)")
  parser.add_argument("--results", default=os.path.join(tempfile.gettempdir(), "swaptalk_fit.json"))
  parser.add_argument("--markdown", default=None, help="also write the table here")
  args = parser.parse_args()
  mesh = {k: int(v) for k, v in (kv.split("=") for kv in args.mesh.split(","))}
  results = json.load(open(args.results)) if os.path.exists(args.results) else {}
  weights_dir = tempfile.mkdtemp(prefix="fit_standins_")
  log = lambda s: print(s, flush=True)
  for stage in args.stages.split(","):
    for variant in PAPER_VARIANTS.get(stage, ()):
      for name in args.targets.split(","):
        key = f"{stage}:{variant}@{name}"
        if key in results:
          continue
        target = topology.resolve_target(name)
        try:
          row = search(stage, variant, target, weights_dir, mesh, args.max_per_chip, log,
                       args.start_per_chip)
        except NotImplementedError as e:
          row = {"error": str(e)}
        row["chips"] = target.chips
        results[key] = row
        with open(args.results, "w") as f:
          json.dump(results, f, indent=1)
  table = markdown(results)
  print(table)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(table + "\n")


if __name__ == "__main__":
  main()
