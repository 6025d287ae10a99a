"""Inference bundles on this CPU: size per stage (f32, bf16), export time, bf16-vs-f32 accuracy,
and first-call / steady-state latency of the loaded bundle next to the training code's Chain.

  python benchmarks/export.py --vqgan RUN [--swap RUN] [--lipsync RUN] [--batch 8]

First call = load (read + verify + deserialise, or restore + build the flax model) + the first
call's compile and run; steady state = median of later calls, bundle and Chain interleaved so
shared load hits both alike. `paper-size params` are computed from configs/vqgan.py:f16's shapes.
"""
import argparse
import functools
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from swaptalk_jax.export import writer  # noqa: E402
from swaptalk_jax.inference import bundle as bundle_lib  # noqa: E402


def _mib(path: str) -> float:
  return os.path.getsize(path) / 2 ** 20


def _timed(fn):
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start


def paper_params_mib() -> tuple[float, float]:
  """(f32, bf16) MiB of the paper-size VQGAN's params (configs/vqgan.py:f16), from shapes."""
  from configs import vqgan as vqgan_config  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.vqgan import vqgan_from_config  # pylint: disable=import-outside-toplevel
  config = vqgan_config.get_config("f16")
  model = vqgan_from_config(config.model)
  size = config.data.image_size
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, 3)))
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
  return count * 4 / 2 ** 20, count * 2 / 2 ** 20


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vqgan", required=True, help="a `swaptalk train` run of configs/vqgan.py")
  parser.add_argument("--swap", default=None, help="a `swaptalk train` run of configs/swap.py")
  parser.add_argument("--lipsync", default=None,
                      help="a `swaptalk train` run of configs/lipsync.py")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--iters", type=int, default=10)
  parser.add_argument("--out", default=None, help="where to write the bundles (default: a tmp dir)")
  args = parser.parse_args()
  dirs = {"vqgan": args.vqgan, **({"swap": args.swap} if args.swap else {}),
          **({"lipsync": args.lipsync} if args.lipsync else {})}
  out = args.out or tempfile.mkdtemp(prefix="export_bench_")
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {common.cpu_threads()} threads; "
        f"bundles in {out}")

  rows, bundles = [], {}
  for dtype in ("float32", "bfloat16"):
    path = os.path.join(out, dtype)
    start = time.perf_counter()
    info = writer.export_bundle(path, dirs, dtype=dtype, overwrite=True)
    total = time.perf_counter() - start
    bundles[dtype] = path
    for stage, seconds in info["export_seconds"].items():
      files = {f: _mib(os.path.join(path, stage, f)) for f in os.listdir(os.path.join(path, stage))}
      rows.append([stage, dtype, f"{files[bundle_lib.PARAMS_FILE]:.3f}",
                   " ".join(f"{fn}={files[fn + bundle_lib.FUNCTION_SUFFIX] * 1024:.0f}k"
                            for fn in seconds),
                   " ".join(f"{fn}={s:.1f}s" for fn, s in seconds.items()), f"{total:.1f}"])
  print("\nbundle size and export time")
  common.print_table(rows, ["stage", "dtype", "params MiB", "functions (StableHLO, 3 platforms)",
                            "export per function", "whole export s"])
  f32_mib, bf16_mib = paper_params_mib()
  print(f"paper-size VQGAN (configs/vqgan.py:f16) params: {f32_mib:.1f} MiB f32, "
        f"{bf16_mib:.1f} MiB bf16 (computed from shapes)")

  # the same inputs for every function: real tokens from the f32 encoder, mel windows in range
  loaded = {d: bundle_lib.load_bundle(p) for d, p in bundles.items()}
  size = loaded["float32"].info["image_size"]
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (args.batch, size, size, 3)).astype(np.float32)
  tokens = np.asarray(loaded["float32"].function("vqgan", "encode")(images))
  functions = [(stage.name, fn) for stage in loaded["float32"].stages.values()
               for fn in stage.manifest["functions"]]

  def inputs(stage: str, fn: str) -> list:
    spec = loaded["float32"].stage(stage).manifest["functions"][fn]["inputs"]
    by_name = dict(images=images, tokens=tokens, source=np.broadcast_to(tokens[:1], tokens.shape),
                   target=tokens, reference=np.broadcast_to(tokens[:1], tokens.shape),
                   mel=rng.uniform(-4, 4, (args.batch, 16, 80)).astype(np.float32))
    return [by_name[name] for name in spec]

  args_of = {(s, f): inputs(s, f) for s, f in functions}
  rows = []
  for stage, fn in functions:
    out32, out16 = (np.asarray(loaded[d].function(stage, fn)(*args_of[stage, fn]))
                    for d in ("float32", "bfloat16"))
    err = np.abs(out16 - out32)
    if fn == "decode":
      agreement = f"MAE {err.mean():.4f} (images in [-1, 1])"
    else:   # token outputs: the same code up to bf16 rounding of the codebook
      same = np.all(np.isclose(out16, out32, rtol=2 ** -7, atol=1e-6), axis=-1)
      agreement = f"{same.mean():.4f} of tokens pick the same code"
    rows.append([f"{stage}/{fn}", agreement, f"max abs {err.max():.3g}"])
  print("\nbf16 vs f32 bundle outputs (same inputs)")
  common.print_table(rows, ["function", "agreement", "worst"])

  # latency: bundle (jax only) vs Chain (flax modules: what `generate --run` runs), at --batch
  start = time.perf_counter()
  chain = writer.load_chain(dirs)
  chain_load = time.perf_counter() - start
  start = time.perf_counter()
  bundle = bundle_lib.load_bundle(bundles["float32"])
  bundle_load = time.perf_counter() - start
  chain_fns = dict(encode=chain.encode, decode=chain.decode, swap=chain.swap_fn,
                   lipsync=chain.lipsync_fn if chain.lipsync is not None else None)
  calls = {}
  for stage, fn in functions:
    spec = bundle.stage(stage).manifest["functions"][fn]
    params = [getattr(chain, s).params for s in spec["params"]]
    x = args_of[stage, fn]
    calls[f"bundle {fn}"] = functools.partial(bundle.function(stage, fn), *x)
    calls[f"chain {fn}"] = functools.partial(chain_fns[fn], *params, *x)
  firsts = {name: _timed(call)[1] for name, call in calls.items()}
  steady = common.interleaved_times(calls, warmup=1, iters=args.iters)
  print(f"\nlatency at batch {args.batch} ({size} px); load: bundle {bundle_load:.2f} s "
        f"(read, sha256, deserialise), chain {chain_load:.2f} s (orbax restore, flax modules)")
  common.print_table(
      [[name, f"{firsts[name]:.3f}", f"{min(t) * 1e3:.1f}", f"{np.median(t) * 1e3:.1f}"]
       for name, t in steady.items()],
      ["function", "first call s (compile+run)", "steady min ms", "steady median ms"])


if __name__ == "__main__":
  main()
