"""Stage 1 trainer: the face-swap module in the token space of a frozen stage-0 VQGAN (Fig. 2c).

One parameter group, 'swap'. Per step, the frozen encoder E (stop_gradient) turns the source, the
target and Res (the exact swap on the synthetic set, the target itself on same-identity pairs)
into token embeddings in one call; the model maps (S_VQ, T_VQ) -> T~_VQ;
loss = proxy * L_proxy + id_src * L_id_src + id_res * L_id_res, the identity terms through the
frozen decoder D and the configured identity net. The frozen VQGAN (and identity net) reach every
jitted function as `params[FROZEN]` (Task.frozen_params), loaded from the run the config names.
"""
import dataclasses
import json
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from swaptalk_jax.core.task import FROZEN, TaskHooks
from swaptalk_jax.errors import UserError
from swaptalk_jax.losses import swap as swap_losses
from swaptalk_jax.metrics.image_quality import ssim
from swaptalk_jax.models.remat import without_remat
from swaptalk_jax.models.swap import quantize_to_codes, swap_model_from_config
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config


def to_unit_range(images: jax.Array) -> jax.Array:
  return jnp.clip((images.astype(jnp.float32) + 1.0) * 0.5, 0.0, 1.0)


def _as_json(tree) -> Any:
  """A config (ConfigDict or plain dict from a checkpoint) as plain JSON values (tuples -> lists)."""
  if isinstance(tree, ml_collections.ConfigDict):
    return json.loads(tree.to_json())
  return json.loads(json.dumps(tree))


# ----------------------------------------------------------------------------- frozen networks
def load_frozen_vqgan(config: ml_collections.ConfigDict) -> tuple[HalfSplitVQGAN, Any]:
  """The stage-0 VQGAN of `config.vqgan` (model, host params), checked against the config."""
  from configs import vqgan as vqgan_configs  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.core import checkpoint  # pylint: disable=g-import-not-at-top
  v = config.vqgan
  if not v.workdir:
    raise UserError("config.vqgan.workdir is not set: name the stage-0 run (`swaptalk train "
                    f"--config=configs/vqgan.py:{v.variant} --workdir=DIR`) whose VQGAN the swap "
                    "stage works in")
  if v.variant not in vqgan_configs.VARIANTS:
    raise UserError(f"config.vqgan.variant={v.variant!r}; one of {vqgan_configs.VARIANTS}")
  params, step, stored = checkpoint.load_params(v.workdir, group="generator", ema=v.ema)
  expected = _as_json(vqgan_configs.model_config(v.variant))
  # remat is how the run was trained, not its architecture: any value loads.
  if stored.get("stage") != "vqgan" or without_remat(_as_json(stored.get("model", {}))) != expected:
    raise UserError(
        f"config.vqgan.workdir={v.workdir} holds a {stored.get('stage')!r} run whose model is not "
        f"configs/vqgan.py:{v.variant}'s (stored variant {stored.get('variant')!r}); set "
        "config.vqgan.variant to the run's variant or name another run")
  stored_size = stored.get("data", {}).get("image_size")
  if stored_size != config.data.image_size:
    raise UserError(f"config.data.image_size={config.data.image_size} but the VQGAN in "
                    f"{v.workdir} was trained at {stored_size} px; set config.data.image_size="
                    f"{stored_size}")
  # The swap stage's remat policy also checkpoints the frozen decoder: L_id backpropagates
  # through it at full resolution.
  model = vqgan_from_config(ml_collections.ConfigDict(expected),
                            jnp.dtype(config.train.compute_dtype),
                            remat=config.model.get("remat", "none"))
  if config.model.token_dim != model.embed_dim:
    raise UserError(f"config.model.token_dim={config.model.token_dim} but the VQGAN's tokens have "
                    f"{model.embed_dim} dims")
  del step
  return model, params


def load_identity_net(config: ml_collections.ConfigDict
                      ) -> tuple[Optional[swap_losses.IdentityNet], Any]:
  """(IdentityNet, params) of `config.identity`, or (None, None) when no identity loss is on."""
  from swaptalk_jax.trainers import identity as identity_trainer  # pylint: disable=g-import-not-at-top
  return identity_trainer.identity_net_for(config.identity, {
      f"loss.{k}": config.loss[k] for k in ("id_src_weight", "id_res_weight")})


# ----------------------------------------------------------------------------- the task
@dataclasses.dataclass
class SwapTask(TaskHooks):
  """The Task of stage 1 (see swaptalk_jax/core/task.py)."""
  model: nn.Module
  vqgan: HalfSplitVQGAN
  loss_config: ml_collections.ConfigDict
  frozen_nets: dict[str, Any]                  # 'vqgan' (+ 'identity')
  identity_net: Optional[swap_losses.IdentityNet] = None
  groups: tuple[str, ...] = ("swap",)
  ema_groups: tuple[str, ...] = ("swap",)

  def frozen_params(self) -> dict[str, Any]:
    return self.frozen_nets

  def token_shape(self, image_shape) -> tuple[int, int, int]:
    f = self.vqgan.downsample_factor
    return image_shape[1] // f, image_shape[2] // f, self.vqgan.embed_dim

  def init_params(self, rng: jax.Array, batch) -> dict[str, Any]:
    tokens = jnp.zeros((1,) + self.token_shape(batch["target"].shape), jnp.float32)
    return {"swap": self.model.init(rng, tokens, tokens)["params"]}

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    return jnp.array(True)

  # --- frozen VQGAN
  def _vqgan_params(self, params):
    if "vqgan" not in params.get(FROZEN, {}):
      raise ValueError(f"SwapTask: params lack the frozen VQGAN under {FROZEN!r}; pass "
                       "{..., FROZEN: task.frozen_params()}")
    return jax.lax.stop_gradient(params[FROZEN]["vqgan"])

  def encode(self, params, *images: jax.Array) -> list[jax.Array]:
    """Images [B, S, S, 3] in [-1, 1] -> quantised token embeddings [B, h, w, D] (E frozen),
    all in one encoder call."""
    b = images[0].shape[0]
    joined = jnp.concatenate([x.astype(jnp.float32) for x in images], axis=0)
    upper, lower = self.vqgan.apply({"params": self._vqgan_params(params)}, joined,
                                    method=HalfSplitVQGAN.encode)
    tokens = jax.lax.stop_gradient(jnp.concatenate([upper.codes, lower.codes], axis=1))
    return [tokens[i * b:(i + 1) * b] for i in range(len(images))]

  def decode(self, params, tokens: jax.Array) -> jax.Array:
    return self.vqgan.apply({"params": self._vqgan_params(params)}, tokens,
                            method=HalfSplitVQGAN.decode)

  def swap_tokens(self, params, source_tokens, target_tokens) -> jax.Array:
    return self.model.apply({"params": nn.unbox(params["swap"])}, source_tokens, target_tokens)

  def swap(self, params, source: jax.Array, target: jax.Array, quantize: bool = False) -> jax.Array:
    """Source photo + target frame ([B, S, S, 3], [-1, 1]) -> the swapped face D(T~_VQ)."""
    s, t = self.encode(params, source, target)
    swapped = self.swap_tokens(params, s, t)
    if quantize:
      swapped = quantize_to_codes(self.vqgan, self._vqgan_params(params), swapped)
    return self.decode(params, swapped)

  # --- loss
  def loss(self, group, params, batch, rng, step, carry):
    del rng, step, carry
    if group != "swap":
      raise ValueError(f"SwapTask: unknown group {group!r}; groups are {self.groups}")
    cfg = self.loss_config
    source, res = batch["source"], batch["target_gt"]
    s, t, r = self.encode(params, source, batch["target"], res)
    swapped = self.swap_tokens(params, s, t)
    metrics = {"proxy": swap_losses.proxy_loss(swapped, r, batch["has_gt"])}
    total = cfg.proxy_weight * metrics["proxy"]
    if self.identity_net is not None:
      images = self.decode(params, swapped)
      id_src, id_res = swap_losses.identity_losses(
          self.identity_net, params[FROZEN]["identity"], images, source, res)
      metrics["id_src"] = jnp.mean(id_src)
      metrics["id_res"] = swap_losses.masked_mean(id_res, batch["has_gt"])
      total = total + cfg.id_src_weight * metrics["id_src"] + cfg.id_res_weight * metrics["id_res"]
    return total, (metrics, None)

  # --- evaluation
  def eval_metrics(self, params, batch, rng):
    """On cross-identity pairs with an exact ground truth (Res): the swap against trivial swaps.

    Token space: MSE of T~_VQ to E(Res), next to copying the source's or the target's tokens.
    Images: L1/SSIM to Res of D(T~_VQ) (and of its nearest-code version), next to the target
    unchanged and the source pasted as is (raw and through the VQGAN: D(T_VQ), D(S_VQ)), and the
    VQGAN's own reconstruction D(E(Res)) (the ceiling of any token-space swap). `*_lower`: the
    lower face half only, where the target's expression (mouth) must survive the swap.
    """
    del rng
    cross = jnp.logical_and(batch["has_gt"], jnp.logical_not(batch["same_identity"]))
    source, target, gt = (batch[k].astype(jnp.float32) for k in ("source", "target", "target_gt"))
    s, t, r = self.encode(params, source, target, gt)
    swapped = self.swap_tokens(params, s, t)
    snapped = quantize_to_codes(self.vqgan, self._vqgan_params(params), swapped)
    token_mse = lambda x: swap_losses.masked_mean(jnp.mean(jnp.square(x - r), axis=(1, 2, 3)), cross)
    metrics = {"token_mse_swap": token_mse(swapped), "token_mse_copy_source": token_mse(s),
               "token_mse_copy_target": token_mse(t),
               "cross_fraction": jnp.mean(cross.astype(jnp.float32))}
    decoded = self.decode(params, jnp.concatenate([swapped, snapped, t, s, r], axis=0))
    names = ("swap", "swap_quantized", "vqgan_target", "vqgan_source", "vqgan_gt")
    candidates = dict(zip(names, jnp.split(decoded, len(names), axis=0)))
    candidates.update(no_swap=target, paste_source=source)
    y = to_unit_range(gt)
    half = y.shape[1] // 2
    for name, images in candidates.items():
      x = to_unit_range(images)
      l1 = jnp.abs(x - y)
      metrics[f"l1_{name}"] = swap_losses.masked_mean(jnp.mean(l1, axis=(1, 2, 3)), cross)
      metrics[f"l1_lower_{name}"] = swap_losses.masked_mean(jnp.mean(l1[:, half:], axis=(1, 2, 3)),
                                                            cross)
      metrics[f"ssim_{name}"] = swap_losses.masked_mean(ssim(x, y), cross)
    return metrics

  def summaries(self, params, batch):
    """'swap': source | target | swapped | ground truth, one row per example."""
    source, target, gt = (batch[k].astype(jnp.float32) for k in ("source", "target", "target_gt"))
    row = jnp.concatenate([source, target, self.swap(params, source, target), gt], axis=2)
    return {"swap": to_unit_range(row)}


def make_task(config: ml_collections.ConfigDict) -> SwapTask:
  """The stage-1 Task of a `configs/swap.py` config; loads the frozen VQGAN (and identity net)."""
  vqgan, vqgan_params = load_frozen_vqgan(config)
  identity_net, identity_params = load_identity_net(config)
  frozen = {"vqgan": vqgan_params}
  if identity_net is not None:
    frozen["identity"] = identity_params
  return SwapTask(model=swap_model_from_config(config.model, jnp.dtype(config.train.compute_dtype)),
                  vqgan=vqgan, loss_config=config.loss, frozen_nets=frozen,
                  identity_net=identity_net)


# ----------------------------------------------------------------------------- data
def make_train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  """Process-local batches {source, target, target_gt, has_gt, same_identity} (grain, resumable)."""
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  return pipelines.make_train_iterator("swap", config.data, process_index, process_count)


def make_eval_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  return pipelines.make_eval_iterator("swap", config.data, process_index, process_count)
