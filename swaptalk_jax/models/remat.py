"""Activation checkpointing (remat) of a model's repeated blocks, chosen by name from config.

`config.model.remat` names a policy ('none' by default; configs written before the field existed
read as 'none'). Each model wraps its repeated blocks (transformer blocks, res blocks, the lip
expert's conv streams) with `remat_block(BlockClass, policy)` and instantiates the result under the
SAME name, so the parameter tree is identical with remat on or off and checkpoints load either way.
Only the backward pass changes: the wrapped block's intermediate activations are not kept from the
forward pass but recomputed (all of them for 'full'; all but the matmul outputs for the 'dots_*'
policies), trading compute for the activation memory that limits the per-chip batch.

  'none'                              no checkpointing (the module class is returned unchanged)
  'full'                              save nothing inside a block: only its inputs are kept
  'dots_saveable'                     keep every dot_general output (matmuls, attention)
  'dots_with_no_batch_dims_saveable'  keep only the matmuls without batch dims (the weight matmuls;
                                      attention's batched einsums are recomputed)
Convolutions are not dots to jax's policies, so on the conv stages the 'dots_*' policies save
(almost) nothing more than 'full'.
"""
from typing import Callable, Optional

import flax.linen as nn
import jax

POLICIES: dict[str, Optional[Callable[..., bool]]] = {
    "full": None,   # nn.remat's policy=None: nothing saveable
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
NAMES = ("none",) + tuple(POLICIES)


def without_remat(model_config: dict) -> dict:
  """A model config (plain dict) less its `remat` field: what two runs' architectures are compared
  on (remat changes how a run trained, never its parameters)."""
  return {k: v for k, v in model_config.items() if k != "remat"}


def check_policy(policy: str) -> str:
  """The policy name, or a ValueError naming the allowed ones."""
  if policy not in NAMES:
    raise ValueError(f"config.model.remat={policy!r}; use one of {NAMES}")
  return policy


def remat_block(module_cls: type[nn.Module], policy: str, static_argnums: tuple[int, ...] = ()):
  """`module_cls` itself for 'none', else flax's lifted `nn.remat` of it with the named policy.

  static_argnums count `self` as 0 (flax's convention): a `__call__(self, x, train)` block passes
  (2,) so the bool stays a Python value. Instantiate the result with the block's usual name.
  """
  if check_policy(policy) == "none":
    return module_cls
  return nn.remat(module_cls, policy=POLICIES[policy], static_argnums=static_argnums)
