"""The train state: every parameter group with its optimizer state and EMA, the Task's own
non-trainable state, the step, the RNG.

A plain pytree (flax.struct.dataclass) so it is jitted, sharded and checkpointed as one unit.
Optimizers are not in the state (they are static functions of the config).
"""
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array                # int32 scalar: completed optimizer steps
  params: dict[str, Any]         # group -> params
  opt_state: dict[str, Any]      # group -> optax state
  ema_params: dict[str, Any]     # group -> EMA of params (only Task.ema_groups)
  task_state: dict[str, Any]     # the Task's non-trainable state (Task.init_task_state)
  rng: jax.Array                 # uint32[2] base key; step keys are fold_in(rng, step)
  nonfinite_steps: jax.Array     # int32 scalar: steps skipped for a non-finite loss or gradient


def init_train_state(task, txs: Mapping[str, optax.GradientTransformation], rng: jax.Array,
                     example_batch: Mapping[str, jax.Array]) -> TrainState:
  """Boxed (logically partitioned) state; `nn.unbox` it, or derive shardings from it first."""
  init_rng, state_rng = jax.random.split(rng)
  params = task.init_params(init_rng, example_batch)
  missing = set(task.groups) - set(params)
  if missing:
    raise ValueError(f"{type(task).__name__}.init_params returned no params for groups {sorted(missing)}")
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params={g: params[g] for g in task.groups},
      opt_state={g: txs[g].init(params[g]) for g in task.groups},
      ema_params={g: params[g] for g in task.ema_groups},
      task_state=dict(task.init_task_state(params)),
      rng=state_rng,
      nonfinite_steps=jnp.zeros((), jnp.int32))
