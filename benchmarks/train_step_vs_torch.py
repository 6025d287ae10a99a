"""One Adam train step of a taming-style conv+attention autoencoder: jax (ours / plain lax) vs PyTorch.

The jax network is the project's own VQGAN Encoder -> Decoder (swaptalk_jax/models/vqgan.py, every
conv through `layers.Conv` -> `conv_ops.conv2d`) without the quantiser; the torch network below is
a straightforward PyTorch (NCHW, eager) transcription of the same architecture (the parameter
counts are checked equal; ours upsamples-then-convolves in the sub-pixel form of
`conv_ops.upsample2x_conv2d`, the transcription in the plain form). Loss: L1 + MSE reconstruction.
Same CPU, same thread count, runs interleaved; best and median of `--iters` steps (other processes
share this CPU). Profile and history: docs/cpu_train_step.md.
"jax lax" is the same jax step with `conv_ops.conv2d` swapped for the plain `lax` convolution, i.e.
XLA's own weight gradient: the before/after of conv_ops.

  python benchmarks/train_step_vs_torch.py                  # 128 and 256 px, batch 1 and 2
  python benchmarks/train_step_vs_torch.py --sizes 128 --batches 1 --iters 3
To time another network, add a (jax builder, torch builder) pair to NETWORKS.
"""
import argparse
import contextlib
import os
import statistics
import sys
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks import common  # noqa: E402
from swaptalk_jax.models import conv_ops, layers, vqgan  # noqa: E402

# A VQGAN f16 (4 downsamples, attention at 16 px) with fewer channels and blocks than the paper's.
ARCH = dict(ch=64, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, z_channels=64, embed_dim=64)


class JaxAutoencoder(nn.Module):
  """The project's VQGAN encoder and decoder back to back (no quantiser)."""
  arch: dict

  @nn.compact
  def __call__(self, images):
    a = self.arch
    z = vqgan.Encoder(a["ch"], a["ch_mult"], a["num_res_blocks"], a["z_channels"], a["embed_dim"],
                      name="encoder")(images)
    return vqgan.Decoder(a["ch"], a["ch_mult"], a["num_res_blocks"], a["z_channels"],
                         name="decoder")(z)


def build_torch_autoencoder(arch):
  """The same architecture in plain PyTorch (NCHW)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn as tnn  # pylint: disable=g-import-not-at-top
  F = torch.nn.functional

  def norm(c):
    return tnn.GroupNorm(32, c, eps=1e-6)

  class ResnetBlock(tnn.Module):

    def __init__(self, cin, cout):
      super().__init__()
      self.norm1, self.conv1 = norm(cin), tnn.Conv2d(cin, cout, 3, padding=1)
      self.norm2, self.conv2 = norm(cout), tnn.Conv2d(cout, cout, 3, padding=1)
      self.shortcut = tnn.Conv2d(cin, cout, 1) if cin != cout else tnn.Identity()

    def forward(self, x):
      h = self.conv1(F.silu(self.norm1(x)))
      h = self.conv2(F.silu(self.norm2(h)))
      return self.shortcut(x) + h

  class AttnBlock(tnn.Module):

    def __init__(self, c):
      super().__init__()
      self.norm = norm(c)
      self.q, self.k, self.v, self.proj_out = (tnn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
      b, c, h, w = x.shape
      n = self.norm(x)
      q = self.q(n).reshape(b, c, h * w).transpose(1, 2)
      k = self.k(n).reshape(b, c, h * w)
      v = self.v(n).reshape(b, c, h * w).transpose(1, 2)
      weights = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=-1)
      out = torch.bmm(weights, v).transpose(1, 2).reshape(b, c, h, w)
      return x + self.proj_out(out)

  class Downsample(tnn.Module):

    def __init__(self, c):
      super().__init__()
      self.conv = tnn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
      return self.conv(F.pad(x, (0, 1, 0, 1)))

  class Upsample(tnn.Module):

    def __init__(self, c):
      super().__init__()
      self.conv = tnn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
      return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

  ch, mult, blocks, last = arch["ch"], arch["ch_mult"], arch["num_res_blocks"], len(arch["ch_mult"]) - 1
  enc = [tnn.Conv2d(3, ch, 3, padding=1)]
  c = ch
  for level, m in enumerate(mult):
    for _ in range(blocks):
      enc.append(ResnetBlock(c, ch * m))
      c = ch * m
      if level == last:
        enc.append(AttnBlock(c))
    if level != last:
      enc.append(Downsample(c))
  enc += [ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c), norm(c), tnn.SiLU(),
          tnn.Conv2d(c, arch["z_channels"], 3, padding=1), tnn.Conv2d(arch["z_channels"], arch["embed_dim"], 1)]
  c = ch * mult[-1]
  dec = [tnn.Conv2d(arch["embed_dim"], arch["z_channels"], 1), tnn.Conv2d(arch["z_channels"], c, 3, padding=1),
         ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)]
  for level in reversed(range(len(mult))):
    for _ in range(blocks + 1):
      dec.append(ResnetBlock(c, ch * mult[level]))
      c = ch * mult[level]
      if level == last:
        dec.append(AttnBlock(c))
    if level != 0:
      dec.append(Upsample(c))
  dec += [norm(c), tnn.SiLU(), tnn.Conv2d(c, 3, 3, padding=1)]
  return tnn.Sequential(*enc, *dec)


NETWORKS = {"autoencoder": (JaxAutoencoder, build_torch_autoencoder)}


def reconstruction_loss(out, target):
  return jnp.mean(jnp.abs(out - target)) + jnp.mean(jnp.square(out - target))


def jax_train_step(model, images, plain_lax_conv=False):
  """(compiled step, state, step flops of the forward) for an Adam step on the L1+MSE loss."""
  params = model.init(jax.random.key(0), images)["params"]
  optimizer = optax.adam(1e-4)

  def step(params, opt_state, images):
    loss, grads = jax.value_and_grad(
        lambda p: reconstruction_loss(model.apply({"params": p}, images), images))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  state = (params, optimizer.init(params))
  plain = lambda x, k, strides=(1, 1), padding="SAME": conv_ops.lax_conv2d(
      x, k, strides, conv_ops.explicit_padding(padding, x.shape, k.shape, strides))
  with mock.patch.object(layers, "conv2d", plain) if plain_lax_conv else contextlib.nullcontext():
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(*state, images).compile()
    forward = jax.jit(lambda p, x: model.apply({"params": p}, x)).lower(params, images).compile()
  cost = forward.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return compiled, state, float(cost["flops"])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--network", default="autoencoder", choices=sorted(NETWORKS))
  parser.add_argument("--sizes", default="128,256")
  parser.add_argument("--batches", default="1,2")
  parser.add_argument("--iters", type=int, default=4)
  parser.add_argument("--no-lax", action="store_true", help="skip the plain-lax (before) jax step")
  args = parser.parse_args()
  import torch  # pylint: disable=g-import-not-at-top
  threads = common.torch_threads_like_jax()
  peak = common.measure_matmul_peak(jnp.float32)
  jax_builder, torch_builder = NETWORKS[args.network]
  model = jax_builder(ARCH)
  torch_model = torch_builder(ARCH)
  torch_opt = torch.optim.Adam(torch_model.parameters(), lr=1e-4)
  print(f"jax {jax.__version__}, torch {torch.__version__}, {threads} threads, f32, network "
        f"{args.network} {ARCH}; jax matmul peak {peak:.0f} GFLOP/s; best/median of {args.iters} "
        f"interleaved steps (other processes share this CPU)")
  rows = []
  for size in map(int, args.sizes.split(",")):
    for batch in map(int, args.batches.split(",")):
      images = jax.random.uniform(jax.random.key(1), (batch, size, size, 3), minval=-1, maxval=1)
      variants = {"ours": False} if args.no_lax else {"ours": False, "lax": True}
      steps = {}
      for name, plain in variants.items():
        compiled, state, fwd_flops = jax_train_step(model, images, plain)
        holder = {"state": state}

        def run(compiled=compiled, holder=holder):
          params, opt_state, loss = compiled(*holder["state"], images)
          holder["state"] = (params, opt_state)
          return loss
        steps[f"jax {name}"] = run
      n_jax = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(state[0]))
      n_torch = sum(p.numel() for p in torch_model.parameters())
      if n_jax != n_torch:
        raise RuntimeError(f"jax and torch networks differ: {n_jax} vs {n_torch} parameters")
      images_t = torch.from_numpy(np.array(images).transpose(0, 3, 1, 2).copy())

      def torch_step():
        torch_opt.zero_grad(set_to_none=True)
        out = torch_model(images_t)
        loss = (out - images_t).abs().mean() + (out - images_t).square().mean()
        loss.backward()
        torch_opt.step()
        return loss.detach()
      steps["torch"] = torch_step
      times = common.interleaved_times(steps, warmup=1, iters=args.iters)
      best = {k: min(v) for k, v in times.items()}
      median = {k: statistics.median(v) for k, v in times.items()}
      row = [f"{batch}x{size}x{size}", f"{n_jax / 1e6:.2f}M", best["torch"], median["torch"],
             best["jax ours"], median["jax ours"], best["jax ours"] / best["torch"],
             median["jax ours"] / median["torch"]]
      if not args.no_lax:
        row += [best["jax lax"], best["jax lax"] / best["torch"], best["jax lax"] / best["jax ours"]]
      row += [100 * 3 * fwd_flops / best["jax ours"] / 1e9 / peak,
              100 * 3 * fwd_flops / best["torch"] / 1e9 / peak,
              max(max(v) / min(v) for v in times.values())]
      rows.append(row)
      print(f"  {batch}x{size} done", file=sys.stderr, flush=True)
  columns = ["batch", "params", "torch s best", "torch s med", "jax s best", "jax s med",
             "jax/torch best", "jax/torch med"]
  if not args.no_lax:
    columns += ["jax-lax s best", "jax-lax/torch", "lax/ours"]
  columns += ["jax MFU %", "torch MFU %", "max/min time"]
  print("step seconds; ratios < 1: jax faster; MFU = 3 x forward FLOPs (XLA cost analysis) / time / "
        "matmul peak")
  common.print_table(rows, columns)


if __name__ == "__main__":
  main()
