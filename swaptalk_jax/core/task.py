"""What a training stage gives the shared core: its parameter groups, losses and evaluation.

The core (`swaptalk_jax.core.train_step`, `swaptalk_jax.core.loop`) owns everything else: sharding,
optimizers, EMA, gradient accumulation, non-finite guarding, checkpoints and metrics.
"""
from typing import Any, Mapping, Protocol

import jax

Batch = Mapping[str, jax.Array]
Params = Mapping[str, Any]  # group name -> parameter pytree


class Task(Protocol):
  """A stage (vqgan, swap, lip_expert, lipsync, toy) as the core sees it.

  groups: parameter groups in the order their losses are evaluated within a step, e.g.
    ('generator', 'discriminator'). Each group has its own optimizer (config.optim.<group>).
    All groups are updated simultaneously from the same parameters at the end of a step.
  ema_groups: groups whose exponential moving average is kept in the train state.
  """
  groups: tuple[str, ...]
  ema_groups: tuple[str, ...]

  def init_params(self, rng: jax.Array, batch: Batch) -> Params:
    """Variables of every group, as logically partitioned (boxed) Flax params: group -> pytree."""

  def loss(self, group: str, params: Params, batch: Batch, rng: jax.Array, step: jax.Array,
           carry: Any) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any]]:
    """Scalar loss of `group`, differentiated only w.r.t. params[group].

    Returns (loss, (metrics, carry)): scalar metrics to log (averaged over micro-batches), and a
    carry handed to the next group's loss in the same micro-batch (e.g. the generator's
    reconstructions for the discriminator; stop-gradient it). `carry` is None for the first group.
    """

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    """Whether `group` is updated at `step` (e.g. the discriminator after its start step)."""

  def eval_metrics(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
    """Scalar eval metrics of one batch (per-example means); `params` may be the EMA params."""

  def summaries(self, params: Params, batch: Batch) -> dict[str, jax.Array]:
    """Images for TensorBoard: name -> [N, H, W, C] float in [0, 1]."""
