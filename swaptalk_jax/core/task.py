"""What a training stage gives the shared core: its parameter groups, losses and evaluation.

The core (`swaptalk_jax.core.train_step`, `swaptalk_jax.core.loop`) owns everything else: sharding,
optimizers, EMA, gradient accumulation, non-finite guarding, checkpoints and metrics.
"""
from typing import Any, Mapping, Protocol

import jax

Batch = Mapping[str, jax.Array]
Params = Mapping[str, Any]  # group name -> parameter pytree (+ FROZEN -> frozen pretrained nets)

# Reserved key of the `params` mapping every Task method receives: the frozen pretrained networks
# (LPIPS, ArcFace, SyncNet, a frozen VQGAN) of `Task.frozen_params`. The core passes them to each
# jitted function as a replicated argument (not as HLO constants); they are never trained or
# checkpointed (they come from the files the config names).
FROZEN = "frozen"
# Reserved key of a group loss's metrics: a pytree of arrays (e.g. code histograms) that is averaged
# over micro-batches like the metrics, not logged, and handed to `Task.update_task_state`.
STATS = "stats"


class Task(Protocol):
  """A stage (vqgan, swap, lip_expert, lipsync, toy) as the core sees it.

  groups: parameter groups in the order their losses are evaluated within a step, e.g.
    ('generator', 'discriminator'). Each group has its own optimizer (config.optim.<group>).
    All groups are updated simultaneously from the same parameters at the end of a step.
  ema_groups: groups whose exponential moving average is kept in the train state.
  Subclass `TaskHooks` for the defaults of the optional hooks (no frozen nets, no task state).
  """
  groups: tuple[str, ...]
  ema_groups: tuple[str, ...]

  def init_params(self, rng: jax.Array, batch: Batch) -> Params:
    """Variables of every group, as logically partitioned (boxed) Flax params: group -> pytree."""

  def loss(self, group: str, params: Params, batch: Batch, rng: jax.Array, step: jax.Array,
           carry: Any) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any]]:
    """Scalar loss of `group`, differentiated only w.r.t. params[group].

    Returns (loss, (metrics, carry)): scalar metrics to log (averaged over micro-batches; an
    optional STATS entry goes to `update_task_state` instead), and a carry handed to the next
    group's loss in the same micro-batch (e.g. the generator's reconstructions for the
    discriminator; stop-gradient it). `carry` is None for the first group.
    """

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    """Whether `group` is updated at `step` (e.g. the discriminator after its start step)."""

  def eval_metrics(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
    """Scalar eval metrics of one batch (per-example means); `params` may be the EMA params."""

  def summaries(self, params: Params, batch: Batch) -> dict[str, jax.Array]:
    """Images for TensorBoard: name -> [N, H, W, C] float in [0, 1]."""

  def frozen_params(self) -> Mapping[str, Any]:
    """The frozen pretrained networks' params (loaded from files at construction), by name."""

  def init_task_state(self, params: Params) -> Mapping[str, Any]:
    """Non-trainable state kept in the train state and checkpoint (e.g. code usage EMAs)."""

  def update_task_state(self, params: Params, task_state: Mapping[str, Any],
                        stats: Mapping[str, Any], batch: Batch, rng: jax.Array, step: jax.Array
                        ) -> tuple[Params, Mapping[str, Any], dict[str, jax.Array]]:
    """Runs after the optimizer update (inside the jitted step, skipped on non-finite steps):
    may rewrite trained params outside the optimizer (e.g. restart dead codebook entries) and
    update the task state. `stats`: group -> the groups' STATS (micro-batch averages).
    Returns (params, task_state, scalar metrics to log)."""


class TaskHooks:
  """Defaults of the optional Task hooks: no frozen networks and no task state."""

  def frozen_params(self) -> Mapping[str, Any]:
    return {}

  def init_task_state(self, params: Params) -> Mapping[str, Any]:
    del params
    return {}

  def update_task_state(self, params, task_state, stats, batch, rng, step):
    del stats, batch, rng, step
    return params, task_state, {}
