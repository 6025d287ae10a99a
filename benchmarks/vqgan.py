"""Stage-0 VQGAN train step: time and MFU on this CPU (tiny, f16 at batch 1), and the paper-size
f16/f8 steps compiled sharded on 8 (fake) devices: parameters, FLOPs and memory from the HLO.

  python benchmarks/vqgan.py [--skip_cpu_f16] [--skip_paper]

The step is the core's (`swaptalk_jax.core.train_step`), with both groups active (generator with
the adaptive GAN term, then discriminator). The CPU timings have LPIPS and ArcFace OFF (VQGAN +
PatchGAN only); the paper-size compile has them ON with random stand-in weights written to a
temporary file (`--paper_pretrained=False` to leave them out), as frozen jit arguments. MFU = model FLOPs per step (XLA's
cost analysis of the compiled step) / step time / measured matmul peak. Other processes share this
machine's cores: the numbers are medians under that load.
"""
import argparse
import os
import sys
import tempfile

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from configs import vqgan as vqgan_config  # noqa: E402
from swaptalk_jax.core import optim, sharding  # noqa: E402
from swaptalk_jax.core.train_state import init_train_state  # noqa: E402
from swaptalk_jax.core.train_step import make_train_step  # noqa: E402
from swaptalk_jax.trainers.vqgan import make_task  # noqa: E402


def benchmark_config(variant: str, weights_dir: str | None = None):
  """configs/vqgan.py:<variant> with D active from step 0; LPIPS and ArcFace ON with random
  stand-in weights saved under `weights_dir`, or OFF when it is None."""
  c = vqgan_config.get_config(variant)
  c.loss.disc_start = 0
  if weights_dir is None:
    c.loss.update(lpips_weight=0.0, identity_weight=0.0)
    return c
  from swaptalk_jax import params_file  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.models import arcface, lpips  # pylint: disable=g-import-not-at-top
  variant_r = c.identity.arcface_variant
  c.pretrained.lpips_path = os.path.join(weights_dir, "lpips_random.safetensors")
  c.identity.arcface_path = os.path.join(weights_dir, f"arcface_{variant_r}_random.safetensors")
  if not os.path.exists(c.pretrained.lpips_path):
    params_file.save_params(c.pretrained.lpips_path, lpips.init_lpips_params(0), network="lpips",
                          variant="vgg16")
    params_file.save_params(c.identity.arcface_path, arcface.init_arcface_params(0, variant_r),
                          network="arcface", variant=variant_r)
  return c


def compile_train_step(config, devices, batch_size: int, mesh_shape=None):
  """(compiled step, abstract state, batch spec, param count) of the core's step for `config`."""
  mesh = sharding.make_mesh(mesh_shape or dict(config.mesh), devices)
  task = make_task(config)
  txs = {g: optim.make_optimizer(g, config.optim[g], config.train.num_steps)[0] for g in task.groups}
  schedules = {g: optim.make_optimizer(g, config.optim[g], config.train.num_steps)[1]
               for g in task.groups}
  size = config.data.image_size
  example = {"image": jnp.zeros((1, size, size, 3), jnp.float32)}
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    boxed = jax.eval_shape(lambda r: init_train_state(task, txs, r, example), jax.random.key(0))
    shardings = sharding.logical_to_shardings(boxed, mesh, min_size=config.fsdp_min_size)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          nn.unbox(boxed), shardings)  # unbox outside the mesh: no constraints
  replicated = sharding.replicated(mesh)
  frozen = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                        dict(task.frozen_params()))
  frozen_shardings = jax.tree.map(lambda _: replicated, frozen)
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    batch_sharding = sharding.batch_sharding(mesh)
    batch = {"image": jax.ShapeDtypeStruct((batch_size, size, size, 3), jnp.float32,
                                           sharding=batch_sharding)}
    step = jax.jit(make_train_step(task, txs, schedules, config.train.grad_accum_steps,
                                   config.train.ema_decay),
                   in_shardings=(shardings, {"image": batch_sharding}, frozen_shardings),
                   out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=(0,))
    compiled = step.lower(abstract, batch, frozen).compile()
  params = {g: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract.params[g]))
            for g in task.groups}
  return compiled, abstract, batch, params, mesh


def step_cost(compiled) -> dict:
  """FLOPs (all devices) and per-device memory (GiB) of a compiled step."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  mem = compiled.memory_analysis()
  gib = 1 / 2 ** 30
  return dict(flops=float(cost.get("flops", 0.0)),
              argument_gib=mem.argument_size_in_bytes * gib, output_gib=mem.output_size_in_bytes * gib,
              temp_gib=mem.temp_size_in_bytes * gib,
              generated_code_gib=mem.generated_code_size_in_bytes * gib)


def time_step(config, batch_size: int, iters: int = 3):
  """Median seconds per step on one device, and the step's FLOPs, with random params and images."""
  compiled, abstract, batch_spec, params, mesh = compile_train_step(
      config, jax.devices()[:1], batch_size, dict(data=1, fsdp=1))
  task = make_task(config)
  txs = {g: optim.make_optimizer(g, config.optim[g], config.train.num_steps)[0] for g in task.groups}
  size = config.data.image_size
  state_shardings = jax.tree.map(lambda x: x.sharding, abstract)
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    state = jax.jit(lambda r: nn.unbox(init_train_state(
        task, txs, r, {"image": jnp.zeros((1, size, size, 3))})),
        out_shardings=state_shardings)(jax.random.key(0))
    images = jax.random.uniform(jax.random.key(1), batch_spec["image"].shape, minval=-1, maxval=1)
    holder = [state]

    def run():
      holder[0], metrics = compiled(holder[0], {"image": images}, {})
      return metrics
    seconds = common.time_fn(run, warmup=1, iters=iters)
  return seconds, step_cost(compiled)["flops"], params


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--skip_cpu_f16", action="store_true")
  parser.add_argument("--skip_paper", action="store_true")
  parser.add_argument("--skip_cpu", action="store_true")
  parser.add_argument("--paper_variants", default="f16,f8")
  parser.add_argument("--paper_batch", type=int, default=8)
  parser.add_argument("--paper_pretrained", default="True", choices=["True", "False"],
                      help="include LPIPS + ArcFace (random stand-in weights) in the paper-size step")
  args = parser.parse_args()
  print(f"jax {jax.__version__}, {jax.default_backend()}, {common.cpu_threads()} cpu threads, "
        f"{len(jax.devices())} devices")
  peak = common.measure_matmul_peak(jnp.float32)
  print(f"f32 matmul peak {peak:.1f} GFLOP/s (the MFU denominator)\n")

  rows = []
  cases = [] if args.skip_cpu else [("tiny", 8, "float32")]
  if not (args.skip_cpu_f16 or args.skip_cpu):
    cases += [("f16", 1, "float32")]
  for variant, batch, dtype in cases:
    c = benchmark_config(variant)
    c.train.compute_dtype = dtype
    seconds, flops, params = time_step(c, batch)
    rows.append([variant, c.data.image_size, batch, dtype, f"{params['generator'] / 1e6:.2f}M",
                 seconds, flops / 1e9, flops / seconds / 1e9, f"{100 * flops / seconds / 1e9 / peak:.1f}%"])
  if rows:
    print("CPU train step (one device, G + D, both active)")
    common.print_table(rows, ["variant", "px", "batch", "dtype", "G params", "s/step",
                              "GFLOP/step", "GFLOP/s", "MFU"])

  if args.skip_paper:
    return
  rows = []
  weights_dir = tempfile.mkdtemp() if args.paper_pretrained == "True" else None
  for variant in args.paper_variants.split(","):
    c = benchmark_config(variant, weights_dir)
    compiled, _, _, params, mesh = compile_train_step(c, jax.devices(), args.paper_batch,
                                                      dict(data=4, fsdp=2))
    cost = step_cost(compiled)
    print(variant, cost, params, flush=True)
    rows.append([variant, "on" if weights_dir else "off", dict(mesh.shape), args.paper_batch,
                 c.train.compute_dtype,
                 f"{params['generator'] / 1e6:.1f}M", f"{params['discriminator'] / 1e6:.2f}M",
                 cost["flops"] / 1e12, cost["argument_gib"], cost["temp_gib"]])
  print(f"\nPaper-size (256 px) step compiled for {len(jax.devices())} devices (XLA cost analysis "
        "of the partitioned per-device program: FLOPs and memory are per device)")
  common.print_table(rows, ["variant", "LPIPS+ArcFace", "mesh", "global batch", "compute", "G params", "D params",
                            "TFLOP/dev/step", "args GiB", "temp GiB"])


if __name__ == "__main__":
  main()
