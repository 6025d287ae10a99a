"""Convolution forward / input-gradient / weight-gradient GFLOP/s: XLA (lax), ours, PyTorch.

The shapes are a taming VQGAN f16's (3x3 convs at 256..16 px, stride-2 downsamples, 1x1 shortcuts
and attention projections) and its PatchGAN's (4x4 stride 2). Each op is jitted alone; jax and
torch runs are interleaved and the best of `--iters` is reported (other processes share the CPU).

  python benchmarks/conv.py                 # f32, all shapes
  python benchmarks/conv.py --dtype bfloat16 --quick
Without torch (e.g. the py312 venv) only the jax columns are printed.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from swaptalk_jax.models import conv_ops  # noqa: E402

# (name, batch, size, in_ch, out_ch, kernel, stride, padding)
SHAPES = [
    ("conv_in", 1, 256, 3, 128, 3, 1, "SAME"),
    ("conv_out", 1, 256, 128, 3, 3, 1, "SAME"),
    ("res256_c64", 1, 256, 64, 64, 3, 1, "SAME"),
    ("res128_c64", 1, 128, 64, 64, 3, 1, "SAME"),
    ("res256", 1, 256, 128, 128, 3, 1, "SAME"),
    ("res256_b2", 2, 256, 128, 128, 3, 1, "SAME"),
    ("res128", 1, 128, 128, 128, 3, 1, "SAME"),
    ("res64", 1, 64, 256, 256, 3, 1, "SAME"),
    ("res32", 2, 32, 256, 256, 3, 1, "SAME"),
    ("res16", 2, 16, 512, 512, 3, 1, "SAME"),
    ("down256", 1, 256, 128, 128, 3, 2, ((0, 1), (0, 1))),
    ("down64", 1, 64, 256, 256, 3, 2, ((0, 1), (0, 1))),
    ("nin64_1x1", 1, 64, 128, 256, 1, 1, "SAME"),
    ("attn16_1x1", 2, 16, 512, 512, 1, 1, "SAME"),
    ("disc256_4x4s2", 1, 256, 3, 64, 4, 2, ((1, 1), (1, 1))),
    ("disc128_4x4s2", 1, 128, 64, 128, 4, 2, ((1, 1), (1, 1))),
    ("disc64_4x4s2", 1, 64, 128, 256, 4, 2, ((1, 1), (1, 1))),
]
QUICK = ("conv_in", "conv_out", "res256_c64", "res256", "res64", "res16", "down256", "nin64_1x1",
         "disc128_4x4s2")


def jax_ops(conv, x, w, strides, padding):
  """Jitted (forward, input-grad, weight-grad) of `conv`; the grads take the output cotangent."""
  fwd = jax.jit(lambda x, w: conv(x, w, strides, padding))
  grad_x = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w, strides, padding), x)[1](g)[0])
  grad_w = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w, strides, padding), w)[1](g)[0])
  g = jnp.ones_like(fwd(x, w))
  return {"fwd": lambda: fwd(x, w), "dx": lambda: grad_x(x, w, g), "dw": lambda: grad_w(x, w, g)}


def torch_ops(x, w, strides, padding, dtype):
  """Torch (forward, input-grad, weight-grad) on NCHW copies; the backward ops are called directly."""
  import torch  # pylint: disable=g-import-not-at-top
  tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
  xt = torch.from_numpy(np.asarray(x, np.float32)).permute(0, 3, 1, 2).contiguous().to(tdtype)
  wt = torch.from_numpy(np.asarray(w, np.float32)).permute(3, 2, 0, 1).contiguous().to(tdtype)
  (top, bottom), (left, right) = padding
  if top == bottom and left == right:
    pad_first, torch_pad = None, (top, left)
  else:  # torch pads symmetrically; asymmetric pads (taming's downsample) go through F.pad first.
    pad_first, torch_pad = (left, right, top, bottom), (0, 0)
  xt_padded = torch.nn.functional.pad(xt, pad_first) if pad_first else xt
  with torch.no_grad():
    y = torch.nn.functional.conv2d(xt_padded, wt, stride=strides, padding=torch_pad)
  g = torch.ones_like(y)

  def fwd():
    with torch.no_grad():
      return torch.nn.functional.conv2d(xt_padded, wt, stride=strides, padding=torch_pad)

  def backward(mask):
    return torch.ops.aten.convolution_backward(
        g, xt_padded, wt, None, list(strides), list(torch_pad), [1, 1], False, [0, 0], 1, mask)

  return {"fwd": fwd, "dx": lambda: backward([True, False, False])[0],
          "dw": lambda: backward([False, True, False])[1]}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--quick", action="store_true", help=f"only {QUICK}")
  parser.add_argument("--no-torch", action="store_true")
  parser.add_argument("--shapes", default="", help="comma-separated shape names")
  args = parser.parse_args()
  try:
    if args.no_torch:
      raise ImportError
    threads = common.torch_threads_like_jax()
    have_torch = True
  except ImportError:
    threads, have_torch = common.cpu_threads(), False
  dtype = jnp.dtype(args.dtype)
  peak = common.measure_matmul_peak(dtype)
  print(f"jax {jax.__version__}, {threads} threads, {args.dtype}, matmul peak {peak:.0f} GFLOP/s "
        f"(best of {args.iters}, interleaved; other processes share this CPU)")
  wanted = set(args.shapes.split(",")) if args.shapes else (set(QUICK) if args.quick else None)
  rows = []
  for name, batch, size, cin, cout, k, stride, padding in SHAPES:
    if wanted is not None and name not in wanted:
      continue
    strides = (stride, stride)
    x = jax.random.normal(jax.random.key(0), (batch, size, size, cin), dtype)
    w = (jax.random.normal(jax.random.key(1), (k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(dtype)
    pads = conv_ops.explicit_padding(padding, x.shape, w.shape, strides)
    out_h, out_w = jax.eval_shape(lambda: conv_ops.lax_conv2d(x, w, strides, pads)).shape[1:3]
    flops = 2 * batch * out_h * out_w * k * k * cin * cout
    fns = {}
    for impl, conv in (("lax", conv_ops.lax_conv2d), ("ours", conv_ops.conv2d)):
      for op, fn in jax_ops(conv, x, w, strides, pads).items():
        if impl == "ours" and op == "fwd":
          continue  # Same lax forward.
        fns[f"{impl}_{op}"] = fn
    if have_torch:
      for op, fn in torch_ops(x, w, strides, pads, args.dtype).items():
        fns[f"torch_{op}"] = fn
    times = common.interleaved_times(fns, warmup=1, iters=args.iters)
    rate = {key: flops / min(ts) / 1e9 for key, ts in times.items()}
    spread = max(max(ts) / min(ts) for ts in times.values())
    row = [name, f"{batch}x{size}x{size}x{cin}->{cout} k{k}s{stride}",
           rate["lax_fwd"], rate["lax_dx"], rate["lax_dw"], rate["ours_dx"], rate["ours_dw"],
           rate["ours_dw"] / rate["lax_dw"], 100 * rate["ours_dw"] / peak]
    if have_torch:
      row += [rate["torch_fwd"], rate["torch_dx"], rate["torch_dw"], rate["ours_dw"] / rate["torch_dw"]]
    rows.append(row + [spread])
    print(f"  {name} done", file=sys.stderr, flush=True)
  columns = ["shape", "NHWC->O", "lax fwd", "lax dx", "lax dw", "ours dx", "ours dw",
             "dw ours/lax", "dw %peak"]
  if have_torch:
    columns += ["torch fwd", "torch dx", "torch dw", "dw ours/torch"]
  print("GFLOP/s per op (ratios > 1: ours faster)")
  common.print_table(rows, columns + ["max/min time"])


if __name__ == "__main__":
  main()
