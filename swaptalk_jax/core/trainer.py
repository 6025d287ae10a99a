"""Builds everything a run needs from its config and its stage, before anything is compiled.

Mesh, optimizers, data iterators, the abstract train state with its shardings, the checkpoint
manager (and its compatibility check), the evaluators, and the jitted init / train / eval / summary
functions with explicit in/out shardings. `loop.py` drives it. The core does not know the stages:
the caller hands in the stage's Task and data module (`trainers/registry.py` does it by
config.stage).
"""
import contextlib
import dataclasses
import functools
import logging
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from swaptalk_jax.core import checkpoint, optim, sharding
from swaptalk_jax.core.task import FROZEN
from swaptalk_jax.core.train_state import TrainState, init_train_state
from swaptalk_jax.core.train_step import make_train_step
from swaptalk_jax.errors import UserError
from swaptalk_jax.evaluators import common as evaluators


def validate_config(config: ml_collections.ConfigDict, task) -> None:
  """Fails with a one-line message on configs that cannot run, before compiling."""
  groups = set(task.groups)
  if FROZEN in groups:
    raise UserError(f"stage {config.stage!r}: a parameter group may not be called {FROZEN!r} "
                     "(reserved for the frozen pretrained networks)")
  configured = set(config.optim.keys())
  if groups != configured:
    raise UserError(f"config.optim must configure exactly the groups of stage {config.stage!r}: "
                     f"{sorted(groups)}; got {sorted(configured)}")
  t = config.train
  if t.compute_dtype not in ("float32", "bfloat16"):
    raise UserError(f"config.train.compute_dtype={t.compute_dtype!r}; use 'float32' or 'bfloat16'")
  for key in ("num_steps", "grad_accum_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
    if int(t[key]) < 1:
      raise UserError(f"config.train.{key} must be >= 1, got {t[key]}")
  if not 0.0 <= t.ema_decay < 1.0:
    raise UserError(f"config.train.ema_decay must be in [0, 1), got {t.ema_decay}")
  evaluators.check_configs(config)


def global_batch(local_batch: dict, batch_sharding) -> dict:
  """Process-local numpy batch -> global jax.Arrays sharded over the mesh (works on many hosts)."""
  return {k: jax.make_array_from_process_local_data(batch_sharding, np.asarray(v))
          for k, v in local_batch.items()}


def _with_shardings(abstract_tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      abstract_tree, shardings)


@dataclasses.dataclass
class Trainer:
  config: ml_collections.ConfigDict
  workdir: str
  mesh: jax.sharding.Mesh
  task: Any
  txs: dict
  schedules: dict
  train_iter: Any
  make_eval_iter: Callable[[], Any]
  batch_spec: dict                     # global ShapeDtypeStructs of one batch
  state_shardings: Any
  abstract_state: Any                  # ShapeDtypeStructs with target shardings
  manager: Any
  frozen: Any                          # Task.frozen_params(), replicated device arrays
  init_fn: Callable
  step_fn: Callable                    # (state, batch, frozen) -> (state, metrics)
  eval_fn: Callable                    # (eval_params, batch, rng) -> metrics
  summary_fn: Callable                 # (eval_params, batch) -> images
  rules: tuple                         # logical axis rules (sharding.rules_from_config)
  eval_context: evaluators.EvalContext

  @property
  def batch_sharding(self):
    return sharding.batch_sharding(self.mesh)

  @contextlib.contextmanager
  def scope(self):
    """The mesh and the logical axis rules every use of the jitted functions runs under."""
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      yield

  @functools.cached_property
  def evaluators(self) -> list:
    """config.evals, built on first use (see swaptalk_jax/evaluators/common.py)."""
    return evaluators.make_evaluators(self.config, self.eval_context)

  def restore_or_init(self) -> TrainState:
    latest = self.manager.latest_step()
    if latest is None:
      logging.info("no checkpoint in %s: initialising", self.workdir)
      return self.init_fn(jax.random.PRNGKey(self.config.seed))
    state, self.train_iter = checkpoint.restore(self.manager, latest, self.abstract_state,
                                                self.train_iter)
    return state

  def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """One optimizer step on a global batch (see `global_batch`)."""
    return self.step_fn(state, batch, self.frozen)

  def eval_params(self, state: TrainState) -> dict:
    """Params for evaluation: EMA where kept, raw elsewhere, and the frozen nets."""
    return {**state.params, **state.ema_params, FROZEN: self.frozen}


def build_trainer(config: ml_collections.ConfigDict, workdir: str, task: Any = None,
                  data: Any = None, devices: Optional[list] = None) -> Trainer:
  """The Trainer of `config` for `task` (a Task) on `data` (a module or object with
  make_train_iterator / make_eval_iterator(config, process_index, process_count)).

  For a config's own stage use `swaptalk_jax.trainers.registry.build_trainer(config, workdir,
  devices=...)`, which looks both up by config.stage and calls this."""
  if task is None or data is None:
    raise TypeError("core.trainer.build_trainer needs task= and data=; "
                    "swaptalk_jax.trainers.registry.build_trainer(config, workdir, devices=...) "
                    "finds them from config.stage")
  validate_config(config, task)
  mesh = sharding.make_mesh(config.mesh, devices)
  rules = sharding.rules_from_config(config)
  num_steps = int(config.train.num_steps)
  txs, schedules = {}, {}
  for group in task.groups:
    txs[group], schedules[group] = optim.make_optimizer(group, config.optim[group], num_steps)

  pid, count = jax.process_index(), jax.process_count()
  train_iter = data.make_train_iterator(config, pid, count)
  probe = next(iter(data.make_train_iterator(config, pid, count)))
  batch_spec = {k: jax.ShapeDtypeStruct((v.shape[0] * count,) + v.shape[1:], v.dtype)
                for k, v in probe.items()}
  global_size = next(iter(batch_spec.values())).shape[0]
  if global_size % mesh.size:
    raise UserError(f"global batch {global_size} is not divisible by the {mesh.size} devices of the mesh")

  def example_batch():
    return {k: jnp.zeros((1,) + s.shape[1:], s.dtype) for k, s in batch_spec.items()}

  def boxed_init(rng):
    return init_train_state(task, txs, rng, example_batch())

  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    abstract_boxed = jax.eval_shape(boxed_init, jax.random.PRNGKey(0))
    state_shardings = sharding.logical_to_shardings(abstract_boxed, mesh, rules,
                                                    min_size=config.fsdp_min_size)
  abstract_state = _with_shardings(sharding.strip_boxes(abstract_boxed), state_shardings)

  # A workdir of another config is refused through a read-only manager, before the writing one
  # starts Orbax's background cleanup: exiting on the error then leaves no thread mid-work (which
  # printed a traceback after the one-line error).
  with contextlib.closing(checkpoint.make_manager(workdir, config.train.keep_checkpoints,
                                                  read_only=True)) as existing:
    latest = existing.latest_step()
    if latest is not None:
      checkpoint.check_compatible(existing, latest, config, abstract_state)
  manager = checkpoint.make_manager(workdir, config.train.keep_checkpoints,
                                    config.train.async_checkpointing)

  batch_sharding = sharding.batch_sharding(mesh)
  batch_shardings = {k: batch_sharding for k in batch_spec}
  replicated = sharding.replicated(mesh)
  frozen = jax.device_put(dict(task.frozen_params()), replicated)
  frozen_shardings = jax.tree.map(lambda _: replicated, frozen)
  init_fn = jax.jit(lambda rng: nn.unbox(boxed_init(rng)), out_shardings=state_shardings)
  step_fn = jax.jit(
      make_train_step(task, txs, schedules, config.train.grad_accum_steps, config.train.ema_decay,
                      config.train.unroll_accumulation),
      in_shardings=(state_shardings, batch_shardings, frozen_shardings),
      out_shardings=(state_shardings, replicated), donate_argnums=(0,))
  params_shardings = {**state_shardings.params, **state_shardings.ema_params,
                      FROZEN: frozen_shardings}
  eval_fn = jax.jit(task.eval_metrics, in_shardings=(params_shardings, batch_shardings, replicated),
                    out_shardings=replicated)
  summary_fn = jax.jit(task.summaries, in_shardings=(params_shardings, batch_shardings),
                       out_shardings=replicated)

  def make_eval_iter():
    return data.make_eval_iterator(config, pid, count)

  def jit_predict(fn):
    return jax.jit(fn, in_shardings=(params_shardings, batch_shardings), out_shardings=replicated)

  eval_context = evaluators.EvalContext(
      task=task, config=config, make_eval_iter=make_eval_iter,
      to_global=lambda local: global_batch(local, batch_sharding), jit_predict=jit_predict,
      eval_fn=eval_fn)
  return Trainer(
      config=config, workdir=workdir, mesh=mesh, task=task, txs=txs, schedules=schedules,
      train_iter=train_iter, make_eval_iter=make_eval_iter, batch_spec=batch_spec,
      state_shardings=state_shardings, abstract_state=abstract_state, manager=manager,
      frozen=frozen, init_fn=init_fn, step_fn=step_fn, eval_fn=eval_fn, summary_fn=summary_fn,
      rules=rules, eval_context=eval_context)
