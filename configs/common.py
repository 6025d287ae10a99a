"""Fields every stage's config shares: seed, mesh, training loop, optimizers, checkpointing.

Stage configs (`configs/<stage>.py`) start from `base_config()` and add `stage`, `model`, `data`,
`optim.<group>` and loss weights. Variants are chosen by the arg string: `configs/vqgan.py:tiny`.
"""
import ml_collections


def optimizer_config(learning_rate: float = 1e-4, b1: float = 0.9, b2: float = 0.999,
                     weight_decay: float = 0.0, warmup_steps: int = 0, schedule: str = "cosine",
                     clip_norm: float = 1.0, optimizer: str = "adamw") -> ml_collections.ConfigDict:
  """One parameter group's optimizer: AdamW/Adam with warmup + cosine/constant and global-norm clip."""
  return ml_collections.ConfigDict(dict(
      optimizer=optimizer, learning_rate=learning_rate, b1=b1, b2=b2, eps=1e-8,
      weight_decay=weight_decay, warmup_steps=warmup_steps, schedule=schedule,
      end_learning_rate_factor=0.0, clip_norm=clip_norm))


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.stage = ""                      # registry key in swaptalk_jax/trainers/registry.py
  c.seed = 0

  # Device mesh: axis name -> size; one -1 takes the remaining devices.
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1))
  # Parameters whose every dimension is smaller than this stay replicated under fsdp.
  c.fsdp_min_size = 2 ** 14
  # (logical name, mesh axes) pairs that replace or extend swaptalk_jax/core/sharding.LOGICAL_RULES
  # for this run, e.g. (("mlp", "fsdp"), ("length", None)).
  c.logical_axis_rules = ()

  c.train = ml_collections.ConfigDict(dict(
      num_steps=1000,
      grad_accum_steps=1,           # micro-batches per step; the global batch is split evenly
      unroll_accumulation=True,     # unrolled micro-batch loop (XLA:CPU runs convs in loops slowly)
      compute_dtype="float32",      # 'float32' | 'bfloat16' (params and optimizer state stay f32)
      log_every=50,
      eval_every=500,               # periodic eval: every evaluator of c.evals + image summaries
      eval_batches=4,               # batches of the batch_mean evaluator
      summary_every=0,              # TensorBoard images of an eval batch also at these steps
                                    # (0: only with each eval)
      checkpoint_every=500,
      keep_checkpoints=3,
      async_checkpointing=True,
      ema_decay=0.999,
  ))
  # Split-level evaluators by name (swaptalk_jax/evaluators/): each `type` names one; its figures
  # are written as eval/<prefix><metric> (prefix default '<name>/'). batch_mean averages the Task's
  # per-batch eval_metrics over train.eval_batches; a stage adds its own (c.evals.<name> = ...).
  c.evals = ml_collections.ConfigDict(dict(batch_mean=dict(type="batch_mean", prefix="")))
  c.optim = ml_collections.ConfigDict()   # group name -> optimizer_config(...)
  c.model = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict()
  return c


def identity_config(kind: str = "none") -> ml_collections.ConfigDict:
  """Which frozen identity net an identity loss uses (`trainers/identity.identity_net_for`): 'none',
  'arcface' (converted weights: `swaptalk convert arcface SRC DST`) or 'trained' (a run of
  `configs/identity.py`). Shared by the VQGAN (L_id) and the swap (L_id_src / L_id_res)."""
  return ml_collections.ConfigDict(dict(
      kind=kind,
      arcface_path=ml_collections.FieldReference(None, field_type=str),
      arcface_variant="r50",
      workdir=ml_collections.FieldReference(None, field_type=str),   # kind 'trained'
  ))
