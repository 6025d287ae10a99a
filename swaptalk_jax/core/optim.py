"""Optax optimizers and learning-rate schedules from config, one per parameter group."""
import ml_collections
import optax

from swaptalk_jax.errors import UserError

_OPTIMIZERS = ("adam", "adamw")
_SCHEDULES = ("cosine", "constant")


def learning_rate_schedule(cfg: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """Linear warmup to `learning_rate`, then cosine decay to `end_learning_rate_factor` or constant."""
  peak = cfg.learning_rate
  warmup = int(cfg.warmup_steps)
  if cfg.schedule == "constant":
    after = optax.constant_schedule(peak)
  else:
    after = optax.cosine_decay_schedule(peak, max(1, num_steps - warmup),
                                        alpha=cfg.get("end_learning_rate_factor", 0.0))
  if warmup <= 0:
    return after
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def validate_optimizer_config(group: str, cfg: ml_collections.ConfigDict) -> None:
  if cfg.optimizer not in _OPTIMIZERS:
    raise UserError(f"config.optim.{group}.optimizer={cfg.optimizer!r}; choose one of {_OPTIMIZERS}")
  if cfg.schedule not in _SCHEDULES:
    raise UserError(f"config.optim.{group}.schedule={cfg.schedule!r}; choose one of {_SCHEDULES}")
  if not cfg.learning_rate > 0:
    raise UserError(f"config.optim.{group}.learning_rate must be > 0, got {cfg.learning_rate}")


def make_optimizer(group: str, cfg: ml_collections.ConfigDict, num_steps: int):
  """(optax transformation, schedule) for one group: clip by global norm, then Adam/AdamW."""
  validate_optimizer_config(group, cfg)
  schedule = learning_rate_schedule(cfg, num_steps)
  if cfg.optimizer == "adamw":
    opt = optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  else:
    opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  chain = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm else []
  return optax.chain(*chain, opt), schedule
