"""The one jitted train step shared by every stage.

Inside the step: micro-batch gradient accumulation (lax.scan), each group's loss and gradient in the
Task's order (with a carry from one group's loss to the next), a non-finite guard that skips the
whole update and counts it, per-group optimizer updates gated by `Task.is_active`, the Task's
post-update hook (`update_task_state`), and EMA. Frozen pretrained nets come in as an argument.
Compute dtype (bf16) is the models' business; params, gradients and optimizer state stay f32.
"""
import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from swaptalk_jax.core.sharding import BATCH_AXES
from swaptalk_jax.core.task import FROZEN, STATS
from swaptalk_jax.core.train_state import TrainState

P = jax.sharding.PartitionSpec


def _tree_where(pred, new, old):
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def split_microbatches(batch: Mapping[str, jax.Array], num: int) -> Mapping[str, jax.Array]:
  """[B, ...] -> [num, B/num, ...], micro-batch i = rows i, i+num, ... so that every device's
  local rows stay local (the batch dim is sharded contiguously over devices)."""
  def split(x):
    if x.shape[0] % num:
      raise ValueError(f"batch dim {x.shape[0]} is not divisible by grad_accum_steps={num}")
    y = x.reshape((x.shape[0] // num, num) + x.shape[1:]).swapaxes(0, 1)
    return jax.lax.with_sharding_constraint(y, P(None, BATCH_AXES))
  return jax.tree.map(split, batch)


def group_gradients(task, params, batch, rng, step):
  """Loss, metrics and gradient of each group on one (micro-)batch, in the Task's group order.

  `params` holds every group (and FROZEN); returns (grads, metrics, stats: group -> STATS)."""
  carry = None
  grads, metrics, stats = {}, {}, {}
  for i, group in enumerate(task.groups):
    def loss_of(group_params, group=group, carry=carry):
      return task.loss(group, {**params, group: group_params}, batch, jax.random.fold_in(rng, i),
                       step, carry)
    (loss, (group_metrics, carry)), grads[group] = jax.value_and_grad(loss_of, has_aux=True)(
        params[group])
    group_metrics = dict(group_metrics)
    if STATS in group_metrics:
      stats[group] = group_metrics.pop(STATS)
    metrics[f"{group}/loss"] = loss
    metrics.update({f"{group}/{k}": v for k, v in group_metrics.items()})
  return grads, metrics, stats


def make_train_step(task, txs: Mapping[str, optax.GradientTransformation],
                    schedules: Mapping[str, Callable], grad_accum_steps: int, ema_decay: float,
                    unroll_accumulation: bool = True
                    ) -> Callable[[TrainState, Any, Any], tuple[TrainState, dict]]:
  """Returns train_step(state, batch, frozen) -> (state, metrics); jit it with shardings (see
  trainer.py). `frozen`: the Task's frozen_params() ({} when it has none).

  unroll_accumulation: unroll the micro-batch loop. XLA:CPU runs convolutions inside a while loop
  about 12x slower than the same convolutions unrolled (measured: toy model, 4 micro-batches);
  a rolled loop (False) compiles faster and may use less memory for many micro-batches.
  """

  def train_step(state: TrainState, batch, frozen):
    rng = jax.random.fold_in(state.rng, state.step)
    params_in = {**state.params, FROZEN: frozen}
    if grad_accum_steps == 1:
      grads, metrics, stats = group_gradients(task, params_in, batch, rng, state.step)
    else:
      micro = split_microbatches(batch, grad_accum_steps)

      def accumulate(acc, xs):
        index, mb = xs
        out = group_gradients(task, params_in, mb, jax.random.fold_in(rng, index), state.step)
        return jax.tree.map(jnp.add, acc, out), None

      zeros = jax.eval_shape(functools.partial(group_gradients, task, params_in,
                                               jax.tree.map(lambda x: x[0], micro), rng, state.step))
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zeros)
      (grads, metrics, stats), _ = jax.lax.scan(
          accumulate, zeros, (jnp.arange(grad_accum_steps), micro),
          unroll=True if unroll_accumulation else 1)
      grads, metrics, stats = jax.tree.map(lambda x: x / grad_accum_steps, (grads, metrics, stats))

    # Non-finite loss or gradient in any group being updated skips the whole step (inactive groups
    # change nothing, so theirs are ignored). Finiteness is read off the gradient's global norm (a
    # NaN/Inf anywhere makes it non-finite; so would |g| > 1e19): one reduction per group instead of
    # an isfinite per leaf, which made XLA compile the tiny VQGAN step in 105 s instead of 24 s.
    active = {g: jnp.asarray(task.is_active(g, state.step)) for g in task.groups}
    grad_norms = {g: optax.global_norm(grads[g]) for g in task.groups}
    finite = jnp.all(jnp.stack([
        jnp.logical_or(jnp.logical_not(active[g]), jnp.logical_and(
            jnp.isfinite(grad_norms[g]), jnp.isfinite(metrics[f"{g}/loss"])))
        for g in task.groups]))
    new_params, new_opt_state = {}, {}
    for group in task.groups:
      updates, opt_state = txs[group].update(grads[group], state.opt_state[group], state.params[group])
      params = optax.apply_updates(state.params[group], updates)
      keep = jnp.logical_and(finite, active[group])
      new_params[group] = _tree_where(keep, params, state.params[group])
      new_opt_state[group] = _tree_where(keep, opt_state, state.opt_state[group])
      metrics[f"{group}/grad_norm"] = grad_norms[group]
      metrics[f"{group}/learning_rate"] = schedules[group](state.step)
      metrics[f"{group}/active"] = keep.astype(jnp.float32)
    hooked_params, hooked_task_state, hook_metrics = task.update_task_state(
        {**new_params, FROZEN: frozen}, state.task_state, stats, batch,
        jax.random.fold_in(rng, len(task.groups)), state.step)
    hooked_params = {g: hooked_params[g] for g in task.groups}
    new_params = _tree_where(finite, hooked_params, new_params)
    new_task_state = _tree_where(finite, hooked_task_state, state.task_state)
    metrics.update(hook_metrics)
    new_ema = {
        g: _tree_where(finite, jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p,
                                            state.ema_params[g], new_params[g]), state.ema_params[g])
        for g in state.ema_params}
    metrics["nonfinite"] = 1.0 - finite.astype(jnp.float32)
    new_state = state.replace(
        step=state.step + 1, params=new_params, opt_state=new_opt_state, ema_params=new_ema,
        task_state=new_task_state,
        nonfinite_steps=state.nonfinite_steps + (1 - finite.astype(jnp.int32)))
    return new_state, metrics

  return train_step
