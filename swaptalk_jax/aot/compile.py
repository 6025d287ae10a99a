"""Lower and compile a stage's train step for a compile target, and report whether it fits.

The step is built as `swaptalk_jax.core.trainer.build_trainer` builds it — the same Task,
optimizers, mesh (`config.mesh` over the target's devices), logical-axis shardings, train step and
donation — but from ShapeDtypeStructs only: no data is read and no array is allocated, so a v5e-256
step compiles on a CPU host (MaxText's train_compile.py does the same). tests/test_compile.py
checks that the lowered program equals the trainer's.
"""
import dataclasses
import json
import math
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from swaptalk_jax.aot import batch_specs
from swaptalk_jax.aot.topology import GIB, Target
from swaptalk_jax.core import optim, sharding, trainer
from swaptalk_jax.core.train_state import init_train_state
from swaptalk_jax.core.train_step import make_train_step
from swaptalk_jax.errors import UserError
from swaptalk_jax.trainers import registry


@dataclasses.dataclass
class StepProgram:
  """A train step ready to lower: the jitted function and its abstract (sharded) arguments."""
  mesh: jax.sharding.Mesh
  rules: tuple                    # logical axis rules (sharding.rules_from_config)
  step_fn: Any
  abstract_state: Any
  batch: dict
  frozen: Any


@dataclasses.dataclass
class CompileReport:
  target: str
  stage: str
  variant: str
  mesh: dict
  global_batch: int
  per_device_batch: float
  num_devices: int
  device_kind: str
  hbm_bytes: int | None          # per device
  argument_bytes: int            # per device, from compiled.memory_analysis()
  output_bytes: int
  alias_bytes: int               # outputs sharing the donated state's buffers
  temp_bytes: int
  code_bytes: int
  param_bytes: dict              # per device: 'params', 'opt_state', 'ema_params', 'frozen'
  param_counts: dict             # group -> parameters (whole model)
  flops_per_device: float        # XLA's cost analysis of the partitioned program
  compiler_oom: str | None = None  # the TPU compiler's own out-of-memory line (then no figures)

  @property
  def peak_bytes(self) -> int:
    """Live bytes per device at the step's peak: arguments + outputs not aliased to them +
    temporaries + the program itself."""
    return (self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes
            + self.code_bytes)

  @property
  def fits(self) -> bool | None:
    if self.compiler_oom:
      return False
    return None if self.hbm_bytes is None else self.peak_bytes <= self.hbm_bytes

  def lines(self) -> list[str]:
    g = lambda b: f"{b / GIB:9.3f} GiB"
    hbm = "unknown (no HBM figure for this device)" if self.hbm_bytes is None else g(self.hbm_bytes)
    verdict = {None: "no memory limit known", True: "FITS", False: "DOES NOT FIT"}[self.fits]
    out = [f"{self.stage}:{self.variant} on {self.target} ({self.num_devices} x {self.device_kind}), "
           f"mesh {self.mesh}, global batch {self.global_batch} "
           f"({self.per_device_batch:g} per device)"]
    state = ["per-device state: " + ", ".join(f"{k} {v / GIB:.3f} GiB"
                                              for k, v in self.param_bytes.items()),
             "parameters: " + ", ".join(f"{k} {v / 1e6:.2f}M"
                                        for k, v in self.param_counts.items())]
    if self.compiler_oom:
      return out + [f"DOES NOT FIT: the compiler ran out of HBM: {self.compiler_oom}"] + state
    out += ["per-device memory (compiled.memory_analysis):",
           f"  arguments    {g(self.argument_bytes)}",
           f"  outputs      {g(self.output_bytes)}  ({g(self.alias_bytes).strip()} aliased to "
           "the donated state)",
           f"  temporaries  {g(self.temp_bytes)}",
           f"  program      {g(self.code_bytes)}",
           f"  peak         {g(self.peak_bytes)}  of HBM {hbm}: {verdict}"]
    out += state + [f"FLOPs per step: {self.flops_per_device / 1e12:.3f} TFLOP per device, "
           f"{self.flops_per_device * self.num_devices / 1e12:.3f} TFLOP in all "
           "(compiled.cost_analysis)"]
    return out


def _check_batch(batch: dict, mesh: jax.sharding.Mesh) -> int:
  size = next(iter(batch.values())).shape[0]
  ways = math.prod(mesh.shape[a] for a in sharding.BATCH_AXES)
  if size % ways:
    raise UserError(f"global batch {size} (config.data.batch_size) is not divisible by the "
                    f"{ways}-way data split of mesh {dict(mesh.shape)}")
  return size


def build_step_program(config: ml_collections.ConfigDict, devices) -> StepProgram:
  """The jitted train step of `config` on `devices`, with abstract sharded arguments."""
  task = registry.make_task(config)
  trainer.validate_config(config, task)
  mesh = sharding.make_mesh(config.mesh, devices)
  rules = sharding.rules_from_config(config)
  num_steps = int(config.train.num_steps)
  txs, schedules = {}, {}
  for group in task.groups:
    txs[group], schedules[group] = optim.make_optimizer(group, config.optim[group], num_steps)
  spec = batch_specs.batch_spec(config)
  _check_batch(spec, mesh)

  # Abstract example and key (a concrete array would be placed on the target's devices).
  example = {k: jax.ShapeDtypeStruct((1,) + s.shape[1:], s.dtype) for k, s in spec.items()}
  key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    boxed = jax.eval_shape(lambda rng, ex: init_train_state(task, txs, rng, ex), key, example)
    state_shardings = sharding.logical_to_shardings(boxed, mesh, rules,
                                                    min_size=config.fsdp_min_size)
  abstract_state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                sharding.strip_boxes(boxed), state_shardings)
  batch_sharding = sharding.batch_sharding(mesh)
  replicated = sharding.replicated(mesh)
  batch = {k: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=batch_sharding)
           for k, s in spec.items()}
  frozen = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                        dict(task.frozen_params()))
  step_fn = jax.jit(
      make_train_step(task, txs, schedules, config.train.grad_accum_steps, config.train.ema_decay,
                      config.train.unroll_accumulation),
      in_shardings=(state_shardings, {k: batch_sharding for k in spec},
                    jax.tree.map(lambda _: replicated, frozen)),
      out_shardings=(state_shardings, replicated), donate_argnums=(0,))
  return StepProgram(mesh, rules, step_fn, abstract_state, batch, frozen)


def lower(program: StepProgram):
  with jax.set_mesh(program.mesh), nn.logical_axis_rules(program.rules):
    return program.step_fn.lower(program.abstract_state, program.batch, program.frozen)


def _bytes_per_device(tree) -> int:
  total = 0
  for x in jax.tree.leaves(tree):
    shape = x.sharding.shard_shape(x.shape) if x.sharding is not None else x.shape
    total += math.prod(shape) * jnp.dtype(x.dtype).itemsize
  return total


def compile_for_target(config: ml_collections.ConfigDict, target: Target,
                       dump_dir: str | None = None) -> CompileReport:
  """Compiles `config`'s train step for `target` and measures it (see CompileReport)."""
  program = build_step_program(config, target.devices)
  lowered = lower(program)
  try:
    compiled = lowered.compile()
  except jax.errors.JaxRuntimeError as e:   # the TPU compiler refuses programs that cannot fit
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    return _report(config, target, program, None, str(e).strip().splitlines()[0])
  report = _report(config, target, program, compiled, None)
  if dump_dir:
    dump(dump_dir, compiled, program, report)
  return report


def _report(config, target: Target, program: StepProgram, compiled, oom: str | None
            ) -> CompileReport:
  mem = compiled.memory_analysis() if compiled is not None else None
  cost = compiled.cost_analysis() if compiled is not None else {}
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  state = program.abstract_state
  size = next(iter(program.batch.values())).shape[0]
  return CompileReport(
      target=target.name, stage=config.stage, variant=str(config.get("variant", "")),
      mesh=dict(program.mesh.shape), global_batch=size,
      per_device_batch=size / target.num_devices, num_devices=target.num_devices,
      device_kind=target.device_kind, hbm_bytes=target.hbm_per_device,
      argument_bytes=int(mem.argument_size_in_bytes) if mem else 0,
      output_bytes=int(mem.output_size_in_bytes) if mem else 0,
      alias_bytes=int(mem.alias_size_in_bytes) if mem else 0,
      temp_bytes=int(mem.temp_size_in_bytes) if mem else 0,
      code_bytes=int(mem.generated_code_size_in_bytes) if mem else 0,
      param_bytes={"params": _bytes_per_device(state.params),
                   "opt_state": _bytes_per_device(state.opt_state),
                   "ema_params": _bytes_per_device(state.ema_params),
                   "frozen": _bytes_per_device(program.frozen)},
      param_counts={g: sum(math.prod(x.shape) for x in jax.tree.leaves(p))
                    for g, p in state.params.items()},
      flops_per_device=float(cost.get("flops", 0.0)), compiler_oom=oom)


def dump(dump_dir: str, compiled, program: StepProgram, report: CompileReport) -> None:
  """Writes the compiled HLO, every state leaf's sharding, and the report, for review."""
  os.makedirs(dump_dir, exist_ok=True)
  with open(os.path.join(dump_dir, "train_step.hlo.txt"), "w") as f:
    f.write(compiled.as_text())
  shardings = {jax.tree_util.keystr(path): {"shape": list(x.shape), "dtype": str(x.dtype),
                                            "spec": str(x.sharding.spec)}
               for path, x in jax.tree_util.tree_leaves_with_path(program.abstract_state)}
  with open(os.path.join(dump_dir, "state_shardings.json"), "w") as f:
    json.dump(shardings, f, indent=1)
  with open(os.path.join(dump_dir, "report.json"), "w") as f:
    json.dump({**dataclasses.asdict(report), "peak_bytes": report.peak_bytes,
               "fits": report.fits}, f, indent=1)
