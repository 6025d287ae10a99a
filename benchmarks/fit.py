"""The pod-scale fit table (docs/pod_scale.md): for every paper-size stage in the registry and each
TPU target, the largest per-chip batch whose train step compiles within the chip's HBM, with the
per-chip parameter and optimizer bytes and the mesh — all compiled on this CPU through libtpu.

  python benchmarks/fit.py [--targets=v5e-8,v5e-256,v5p:4x4x4] [--stages=vqgan] \
      [--remat=none,full] [--start_per_chip=N] [--min_per_chip=M] [--max_per_chip=K] \
      [--results=/tmp/fit.json] [--merge=a.json,b.json] [--markdown=docs/pod_scale_table.md]

Stages come from swaptalk_jax/trainers/registry.py STAGES (paper variants below). Each (stage,
variant, target) is searched by doubling the per-chip batch from 1 until the compile does not fit
(or --max_per_chip); results are appended to --results as they come, and a rerun skips what is
there (compiles of paper-size steps take minutes on a small CPU). A stage whose frozen inputs
cannot be stood in for yet gets a row saying so. The VQGAN's LPIPS and ArcFace are ON with random
stand-in weights (same shapes as the real ones), the discriminator active: the heaviest step.

--remat: each row is searched once per activation-checkpointing policy (`config.model.remat`,
swaptalk_jax/models/remat.py; 'none' = the stage as configured); the table puts a stage's rows
for one target next to each other so the largest per-chip batch with and without remat compare.
Results of 'none' keep their old keys (`stage:variant@target`), others get `#remat=<policy>`.

Each compile runs in a child process (`--compile_one`): libtpu can abort the whole process on a
program it cannot emit (a CHECK failure, SIGABRT), and such a crash is a finding, not a lost row:
the search records the child's fatal line for that batch and stops there. --min_per_chip bounds
the downward search (a batch already known to fit or fail need not be compiled again).
"""
import argparse
import dataclasses
import itertools
import json
import os
import re
import subprocess
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


def standin_vqgan_run(weights_dir: str, variant: str = "f16") -> str:
  """A `swaptalk train` run directory of configs/vqgan.py:<variant> holding zero generator params of
  the real shapes (the frozen stage-0 VQGAN the later stages load; only its shapes matter to a
  compile). Written once per weights_dir."""
  from configs import vqgan as vqgan_configs  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.models.vqgan import vqgan_from_config  # pylint: disable=g-import-not-at-top
  workdir = os.path.join(weights_dir, f"vqgan_{variant}_run")
  step = os.path.join(workdir, "checkpoints", "1")
  if os.path.isdir(os.path.join(step, "state")):
    return workdir
  config = vqgan_configs.get_config(variant)
  size = config.data.image_size
  model = vqgan_from_config(config.model)
  shapes = jax.eval_shape(lambda r: model.init(r, jnp.zeros((1, size, size, 3)))["params"],
                          jax.random.key(0))
  params = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), nn.unbox(shapes))
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(step, "state"), {"params": {"generator": params}})
  checkpointer.wait_until_finished()
  os.makedirs(os.path.join(step, "config"), exist_ok=True)
  with open(os.path.join(step, "config", "metadata"), "w") as f:
    f.write(config.to_json())
  return workdir


def result_key(stage: str, variant: str, target: str, remat: str = "none") -> str:
  """The --results key of one row ('none' keeps the key rows had before remat existed)."""
  key = f"{stage}:{variant}@{target}"
  return key if remat == "none" else f"{key}#remat={remat}"


def parse_key(key: str) -> tuple[str, str, str]:
  """result_key's inverse: (stage:variant, target, remat)."""
  row, _, remat = key.partition("#remat=")
  stage, target = row.split("@")
  return stage, target, remat or "none"


def stage_config(stage: str, variant: str, weights_dir: str, remat: str = "none"):
  """The paper-size config of a stage with stand-ins for its frozen inputs (random or zero weights
  of the real shapes) and `config.model.remat = remat`, or raises NotImplementedError naming what
  is missing."""
  c = _stage_config(stage, variant, weights_dir)
  c.model.remat = remat
  return c


def _stage_config(stage: str, variant: str, weights_dir: str):
  if stage == "vqgan":
    from benchmarks.vqgan import benchmark_config  # pylint: disable=g-import-not-at-top
    return benchmark_config(variant, weights_dir)
  import importlib  # pylint: disable=g-import-not-at-top
  c = importlib.import_module(f"configs.{stage}").get_config(variant)
  c.vqgan.workdir = standin_vqgan_run(weights_dir, c.vqgan.get("variant", "f16"))
  if stage == "swap" and c.identity.kind == "arcface":    # L_id_src / L_id_res on, as in the paper
    from swaptalk_jax import params_file  # pylint: disable=g-import-not-at-top
    from swaptalk_jax.models import arcface  # pylint: disable=g-import-not-at-top
    r = c.identity.arcface_variant
    c.identity.arcface_path = os.path.join(weights_dir, f"arcface_{r}_random.safetensors")
    if not os.path.exists(c.identity.arcface_path):
      params_file.save_params(c.identity.arcface_path, arcface.init_arcface_params(0, r),
                              network="arcface", variant=r)
  if stage == "lipsync" and c.loss.sync_weight:
    raise NotImplementedError("lipsync with L_sync needs a lip-expert run; benchmarks/fit.py has no "
                              "stand-in for it")
  return c


def fit_one(config, target, per_chip: int, mesh: dict):
  """Compiles one per-chip batch in this process: (CompileReport, seconds)."""
  config.data.batch_size = per_chip * target.chips
  config.mesh.update(mesh)
  start = time.time()
  report = aot_compile.compile_for_target(config, target)
  return report, time.time() - start


def crash_line(stderr: str) -> str:
  """The line that says why a child compile died: glog's fatal line ('F1203 ... Check failed: ...'),
  else the last 'Check failed' or Python exception line, else the last non-empty line."""
  lines = [l.strip() for l in stderr.splitlines() if l.strip()]
  for pattern in (r"^F\d{4} ", r"Check failed", r"^\w*(Error|Exception)\b"):
    hits = [l for l in lines if re.search(pattern, l)]
    if hits:
      return hits[-1][:300]
  return lines[-1][:300] if lines else "no output"


def fit_isolated(stage, variant, target_name, weights_dir, remat, per_chip: int, mesh: dict):
  """fit_one in a child process (`fit.py --compile_one`): (CompileReport or None, seconds, crash),
  crash being the child's fatal line when it died without a report (else None)."""
  with tempfile.TemporaryDirectory(prefix="fit_one_") as tmp:
    out = os.path.join(tmp, "report.json")
    spec = dict(stage=stage, variant=variant, target=target_name, weights_dir=weights_dir,
                remat=remat, per_chip=per_chip, mesh=mesh, out=out)
    start = time.time()
    child = subprocess.run([sys.executable, os.path.abspath(__file__),
                            "--compile_one=" + json.dumps(spec)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.time() - start
    if child.returncode == 0 and os.path.exists(out):
      with open(out) as f:
        return aot_compile.CompileReport(**json.load(f)), seconds, None
    why = crash_line(child.stderr)
    return None, seconds, f"rc {child.returncode}: {why}"


def compile_one(spec: dict) -> None:
  """The child side of fit_isolated: one compile, its CompileReport written as JSON."""
  target = topology.resolve_target(spec["target"])
  config = stage_config(spec["stage"], spec["variant"], spec["weights_dir"], spec["remat"])
  report, _ = fit_one(config, target, spec["per_chip"], spec["mesh"])
  with open(spec["out"], "w") as f:
    json.dump(dataclasses.asdict(report), f)


def search(stage, variant, target, weights_dir, mesh, max_per_chip, log, start=1, remat="none",
           min_per_chip=1, compile_fn=None):
  """Powers of two from `start`: up while the step fits (to max_per_chip), down while it does not
  (to min_per_chip); returns the row of the largest per-chip batch that fits (to a factor of 2).
  A compile that crashed is recorded in `tried` with its fatal line and ends the search.
  compile_fn(per_chip) -> (report or None, seconds, crash or None); default fit_isolated."""
  compile_fn = compile_fn or (lambda n: fit_isolated(stage, variant, target.name, weights_dir,
                                                     remat, n, mesh))
  best, tried, report, crash = None, [], None, None
  per_chip, direction = start, 0
  while max(1, min_per_chip) <= per_chip <= max_per_chip:
    got, seconds, crash = compile_fn(per_chip)
    if got is None:
      tried.append((per_chip, False, None, round(seconds), crash))
      log(f"  {stage}:{variant} {target.name} remat={remat} per-chip {per_chip}: compile crashed "
          f"after {seconds:.0f} s: {crash}")
      break
    report = got
    tried.append((per_chip, report.fits, round(report.peak_bytes / GIB, 2), round(seconds)))
    log(f"  {stage}:{variant} {target.name} remat={remat} per-chip {per_chip}: "
        f"{'fits' if report.fits else 'does not fit'} "
        f"(peak {report.peak_bytes / GIB:.2f} GiB, compiled in {seconds:.0f} s)"
        + (f"; TPU compiler: {report.compiler_oom}" if report.compiler_oom else ""))
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
    row = dict(max_per_chip=0, tried=tried)
    if report is not None:
      row.update(mesh=report.mesh, param_bytes=report.param_bytes,
                 param_counts=report.param_counts)
    return row
  return dict(max_per_chip=best.global_batch // target.chips, tried=tried, mesh=best.mesh,
              peak_gib=best.peak_bytes / GIB, hbm_gib=best.hbm_bytes / GIB,
              param_bytes=best.param_bytes, param_counts=best.param_counts,
              tflop_per_chip=best.flops_per_device / 1e12,
              capped=best.global_batch // target.chips * 2 not in [t[0] for t in tried])


def tried_cell(t) -> str:
  """One tried batch for the table: 'N: peak GiB[ (no)] (s)', 'N: TPU compiler OOM (no) (s)' or,
  for a crashed compile (a 5th element: its fatal line), 'N: compile crashed: <line> (s)'."""
  n, ok, p, sec = t[:4]
  if len(t) > 4:   # a note written by hand for a compile stopped on purpose is shown as it is
    what = t[4] if t[4].startswith("not finished") else f"compile crashed: {t[4]}"
    return f"{n}: {what} ({sec})"
  what = "TPU compiler OOM" if not ok and not p else format(p, "g")
  return f"{n}: {what}{'' if ok else ' (no)'} ({sec})"


def markdown(results: dict) -> str:
  lines = ["# Pod-scale fit table", "",
           "Written by `benchmarks/fit.py --markdown`; how it was made, what the columns mean and "
           "which rows are missing: [pod_scale.md](pod_scale.md#the-fit-table). Per-chip batch: "
           "largest power of two tried that fits (\"search cap\": the next one was not tried). "
           "Bytes per chip; TFLOP from the compiled program's cost analysis. remat: "
           "`config.model.remat` (none: no activation checkpointing; full: every repeated block "
           "recomputed in the backward pass).", "",
           "| stage | target | chips | mesh | remat | max batch / chip | peak at it (GiB of HBM) "
           "| params / chip | optimizer / chip | EMA / chip | frozen / chip | TFLOP / chip / step "
           "| batches tried: peak GiB (compile s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  # stages in PAPER_VARIANTS order, each stage's targets in first-seen order, a (stage, target)'s
  # remat rows together, 'none' first
  stages = [f"{s}:{v}" for s, vs in PAPER_VARIANTS.items() for v in vs]
  targets = {}
  for key in results:
    targets.setdefault(parse_key(key)[1], len(targets))
  rank = lambda k: (stages.index(parse_key(k)[0]) if parse_key(k)[0] in stages else len(stages),
                    parse_key(k)[0], targets[parse_key(k)[1]], parse_key(k)[2] != "none", k)
  for key in sorted(results, key=rank):
    r = results[key]
    stage, target, remat = parse_key(key)
    if "error" in r:
      lines.append(f"| {stage} | {target} | | | {remat} | not compiled: {r['error']} "
                   "| | | | | | | |")
      continue
    b = r.get("param_bytes")
    gib = lambda x: f"{x / GIB:.3f} GiB"
    if r["max_per_chip"]:
      best = str(r["max_per_chip"]) + (" (search cap)" if r.get("capped") else "")
    else:
      crashed = [t[0] for t in r["tried"] if len(t) > 4]
      best = (f"none known (compile crashed at {crashed[0]})" if crashed
              else f"none (< {min(t[0] for t in r['tried'])})")
    peak = f"{r['peak_gib']:.2f} of {r['hbm_gib']:.0f}" if r["max_per_chip"] else "-"
    mesh = " x ".join(f"{k}={v}" for k, v in r["mesh"].items()) if "mesh" in r else "-"
    state = (" | ".join(gib(b[k]) for k in ("params", "opt_state", "ema_params", "frozen"))
             if b else "- | - | - | -")
    tried = ", ".join(tried_cell(t) for t in r["tried"])
    tflop = f"{r['tflop_per_chip']:.2f}" if "tflop_per_chip" in r else "-"
    lines.append(f"| {stage} | {target} | {r['chips']} | {mesh} | {remat} | {best} | {peak} "
                 f"| {state} | {tflop} | {tried} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--targets", default="v5e-8,v5e-256,v5p:4x4x4")
  parser.add_argument("--stages", default=",".join(s for s in registry.STAGES if s != "toy"),
                      help="stages (all their paper variants) or stage:variant, comma-separated")
  parser.add_argument("--mesh", default="data=-1,fsdp=1", help="config.mesh for every compile")
  parser.add_argument("--remat", default="none",
                      help="config.model.remat policies, comma-separated: each row once per policy")
  parser.add_argument("--max_per_chip", type=int, default=64)
  parser.add_argument("--start_per_chip", type=int, default=1,
                      help="first per-chip batch tried (a power of 2 near the answer saves compiles)")
  parser.add_argument("--min_per_chip", type=int, default=1,
                      help="the downward search stops here (a smaller batch is not compiled)")
  parser.add_argument("--merge", default="",
                      help="other --results files, comma-separated, folded into --results first "
                           "(rows made by separate runs; a key already in --results is kept)")
  parser.add_argument("--compile_one", default=None, help=argparse.SUPPRESS)  # the child's spec
  parser.add_argument("--results", default=os.path.join(tempfile.gettempdir(), "swaptalk_fit.json"))
  parser.add_argument("--markdown", default=None, help="also write the table here")
  parser.add_argument("--weights_dir", default=None,
                      help="where the stand-in weights and VQGAN run are written (reused by a rerun)")
  args = parser.parse_args()
  if args.compile_one:
    compile_one(json.loads(args.compile_one))
    return
  mesh = {k: int(v) for k, v in (kv.split("=") for kv in args.mesh.split(","))}
  results = json.load(open(args.results)) if os.path.exists(args.results) else {}
  for other in filter(None, args.merge.split(",")):
    with open(other) as f:
      for key, row in json.load(f).items():
        results.setdefault(key, row)
  weights_dir = args.weights_dir or tempfile.mkdtemp(prefix="fit_standins_")
  os.makedirs(weights_dir, exist_ok=True)
  log = lambda s: print(s, flush=True)
  for entry in args.stages.split(","):   # a stage ('swap': its paper variants) or 'swap:unet'
    stage, _, only = entry.partition(":")
    for variant in (only,) if only else PAPER_VARIANTS.get(stage, ()):
      for name, remat in itertools.product(args.targets.split(","), args.remat.split(",")):
        key = result_key(stage, variant, name, remat)
        if key in results:
          continue
        target = topology.resolve_target(name)
        start = time.time()
        try:
          stage_config(stage, variant, weights_dir, remat)   # stand-ins written once, here
          row = search(stage, variant, target, weights_dir, mesh, args.max_per_chip, log,
                       args.start_per_chip, remat, args.min_per_chip)
        except NotImplementedError as e:
          row = {"error": str(e)}
        row["chips"] = target.chips
        row["wall_s"] = round(time.time() - start)
        results[key] = row
        with open(args.results, "w") as f:
          json.dump(results, f, indent=1)
  if args.merge:
    with open(args.results, "w") as f:
      json.dump(results, f, indent=1)
  table = markdown(results)
  print(table)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(table + "\n")


if __name__ == "__main__":
  main()
