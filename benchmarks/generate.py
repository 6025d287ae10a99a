"""`swaptalk generate` speed and memory: frames/s per part of the tiny and the paper-size chain,
FLOPs per frame of the paper-size chain, and peak RSS against video length.

  python benchmarks/generate.py [--frames 50] [--skip_paper] [--rss_seconds 2,6,18]

Weights are RANDOM (numpy draws from the parameter shapes; timing does not depend on values), so
the output pictures mean nothing; every stage runs at its real size. Parts: decode (both decoding
passes), face (detection/tracking, alignment, crops), E, swap, lip-sync, D, paste (colour match +
feathered paste-back) and encode (H.264 + AAC). The target is a synthetic talking head rendered
at 256x256 with speech (data_prep/synthetic), written as an mp4. A warm-up run on the same target
compiles every stage first; the timed run is the second. FLOPs come from XLA's cost analysis of
each jitted stage at batch 1. Peak RSS: a fresh process per length running the VQGAN-only tiny
chain (ru_maxrss).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from swaptalk_jax.inference import pipeline, stages  # noqa: E402


def _stage(model, config, *inputs):
  import generate_helpers as gh  # pylint: disable=import-outside-toplevel
  return stages.LoadedStage(model, jax.device_put(gh.random_params(model, 0, *inputs)), config, 0,
                            "(random)")


def build_chain(size: str, batch_size: int = 8) -> stages.Chain:
  """size 'tiny': configs vqgan:tiny (64 px, 16x16 tokens) + swap:tiny + lipsync:tiny;
  'paper': vqgan:f16 (256 px, 16x16 tokens) + swap:transformer + lipsync:unet."""
  from configs import lipsync as lipsync_config, swap as swap_config, vqgan as vqgan_config  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.lipsync import lipsync_from_config  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.swap import swap_model_from_config  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.vqgan import vqgan_from_config  # pylint: disable=import-outside-toplevel
  variants = dict(tiny=("tiny", "tiny", "tiny"), paper=("f16", "transformer", "unet"))[size]
  vc = vqgan_config.get_config(variants[0])
  s, d = vc.data.image_size, vc.model.embed_dim
  vq = _stage(vqgan_from_config(vc.model), vc, jnp.zeros((1, s, s, 3)))
  grid = s // (2 ** (len(vc.model.ch_mult) - 1))
  tokens, half = jnp.zeros((1, grid, grid, d)), jnp.zeros((1, grid // 2, grid, d))
  sc = swap_config.get_config(variants[1])
  sc.model.token_dim = d
  swap = _stage(swap_model_from_config(sc.model), sc, tokens, tokens)
  lc = lipsync_config.get_config(variants[2])
  sync = _stage(lipsync_from_config(lc.model, d), lc, half, half, half, jnp.zeros((1, 16, 80)))
  return stages.Chain(vq, swap=swap, lipsync=sync, batch_size=batch_size)


def flops_per_frame(chain: stages.Chain) -> dict:
  """XLA's FLOP count of each stage at batch 1."""
  s = chain.image_size
  images = jnp.zeros((1, s, s, 3))
  tokens = jax.eval_shape(chain.encode, chain.vqgan.params, images)
  t = jnp.zeros(tokens.shape, tokens.dtype)
  mel = jnp.zeros((1, 16, 80))
  fns = dict(E=(chain.encode, (chain.vqgan.params, images)),
             swap=(chain.swap_fn, (chain.swap.params, chain.vqgan.params, t, t)),
             lipsync=(chain.lipsync_fn, (chain.lipsync.params, chain.vqgan.params, t, t, mel)),
             D=(chain.decode, (chain.vqgan.params, t)))
  out = {}
  for name, (fn, args) in fns.items():
    cost = fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    out[name] = float(cost.get("flops", float("nan")))
  return out


def synthetic_target(path: str, frames: int, resolution: int = 256) -> str:
  from data_prep.synthetic import make_clip  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.video.write import write_video  # pylint: disable=import-outside-toplevel
  clip = make_clip(3, 0, 0, frames / 25, resolution, partners=range(8))
  write_video(path, clip.frames, fps=25, audio=clip.audio, sample_rate=16000, preset="ultrafast")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.fromarray(make_clip(5, 0, 0, 0.04, resolution, partners=range(8)).frames[0]).save(
      path + ".source.png")
  return path


def time_parts(chain: stages.Chain, target: str, workdir: str) -> pipeline.Report:
  options = pipeline.Options(framing="synthetic", preset="ultrafast", progress=False)
  source = target + ".source.png"
  pipeline.generate(chain, source, target, os.path.join(workdir, "warmup.mp4"), None, options)
  return pipeline.generate(chain, source, target, os.path.join(workdir, "timed.mp4"), None, options)


def rss_child(seconds: float, workdir: str) -> None:
  """One fresh process: the tiny VQGAN-only chain on a `seconds`-long 256 px synthetic target."""
  import resource  # pylint: disable=import-outside-toplevel
  chain = build_chain("tiny")
  chain.swap = chain.lipsync = None
  target = synthetic_target(os.path.join(workdir, f"rss_{seconds}.mp4"), int(seconds * 25))
  pipeline.generate(chain, None, target, os.path.join(workdir, f"rss_{seconds}_out.mp4"), None,
                    pipeline.Options(framing="synthetic", preset="ultrafast", progress=False))
  print("RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--skip_paper", action="store_true")
  parser.add_argument("--skip_tiny", action="store_true")
  parser.add_argument("--paper_batch", type=int, default=2, help="faces per device call, paper "
                      "size (8 at 256 px needs several GB of activations on CPU)")
  parser.add_argument("--rss_seconds", default="2,6,18")
  parser.add_argument("--rss_child", type=float, default=None)
  parser.add_argument("--workdir", default=None)
  args = parser.parse_args()
  workdir = args.workdir or tempfile.mkdtemp(prefix="bench_generate_")
  if args.rss_child is not None:
    rss_child(args.rss_child, workdir)
    return
  print(f"# swaptalk generate on this CPU ({os.cpu_count()} cores), random weights, "
        f"{args.frames}-frame 256x256 synthetic target")
  target = synthetic_target(os.path.join(workdir, "target.mp4"), args.frames)
  sizes = ([] if args.skip_tiny else ["tiny"]) + ([] if args.skip_paper else ["paper"])
  print(f"\n| chain | crop | {' | '.join(pipeline.PARTS)} | whole |")
  print("|---|---|" + "---|" * (len(pipeline.PARTS) + 1))
  for size in sizes:
    chain = build_chain(size, args.paper_batch if size == "paper" else 8)
    report = time_parts(chain, target, workdir)
    fps = [report.frames / v if v > 0 else float("inf") for v in report.part_seconds.values()]
    print(f"| {size} | {chain.image_size} px | " + " | ".join(f"{f:.1f}" for f in fps)
          + f" | {report.frames_per_second:.2f} |", flush=True)
    if size == "paper":
      flops = flops_per_frame(chain)
      total = sum(flops.values())
      print("\nFLOPs per frame, paper-size chain (XLA cost analysis, batch 1): " + ", ".join(
          f"{k} {v / 1e9:.1f} G" for k, v in flops.items()) + f"; total {total / 1e9:.1f} G")
  print("\n| target length (s) | peak RSS (MB) |\n|---|---|")
  for seconds in [float(s) for s in args.rss_seconds.split(",") if s]:
    r = subprocess.run([sys.executable, __file__, "--rss_child", str(seconds), "--workdir",
                        workdir], capture_output=True, text=True, env=dict(os.environ))
    if r.returncode:
      print(r.stderr[-2000:])
      continue
    kb = int(r.stdout.rsplit("RSS_KB", 1)[1].split()[0])
    print(f"| {seconds:g} | {kb / 1024:.0f} |", flush=True)
  print(json.dumps(dict(workdir=workdir)))


if __name__ == "__main__":
  main()
