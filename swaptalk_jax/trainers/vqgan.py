"""Stage 0 trainer: the half-split VQGAN (generator) against a PatchGAN (discriminator).

Generator loss = l1 * L1 + lpips * LPIPS + identity_feature * F + identity * (1 - cos id)
  + codebook * VQ, where id is `config.identity`'s frozen net (converted ArcFace or a
  `configs/identity.py` run) and F an LPIPS-style distance on its feature maps
  + entropy * usage entropy + [step >= disc_start] * gan_weight * adaptive * hinge_G.
The adaptive weight (taming) balances the gradient norms of the reconstruction (L1 + LPIPS + F)
and GAN terms at the decoder's last conv kernel. The discriminator (hinge) sees the generator's
reconstructions through the carry and is updated from `disc_start` on.
"""
import dataclasses
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from swaptalk_jax.core.task import FROZEN, STATS, TaskHooks
from swaptalk_jax.errors import UserError
from swaptalk_jax.losses import gan as gan_losses
from swaptalk_jax.losses import identity_nets
from swaptalk_jax.losses import vq as vq_losses
from swaptalk_jax.models.conv_ops import conv2d
from swaptalk_jax.metrics.image_quality import psnr, ssim
from swaptalk_jax.models.patchgan import PatchGANDiscriminator, discriminator_from_config
from swaptalk_jax.models.quantizer import restart_dead_codes
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config

HALVES = ("upper", "lower")


# ----------------------------------------------------------------------------- image metrics
def to_unit_range(images: jax.Array) -> jax.Array:
  """[-1, 1] -> [0, 1], clipped."""
  return jnp.clip((images.astype(jnp.float32) + 1.0) * 0.5, 0.0, 1.0)


# ----------------------------------------------------------------------------- pretrained nets
def load_frozen_nets(config: ml_collections.ConfigDict
                     ) -> tuple[dict[str, Any], Optional[identity_nets.IdentityNet]]:
  """The frozen pretrained nets whose loss weight is > 0: ({'lpips': params, 'identity': params},
  the identity net of `config.identity` or None).

  A weight > 0 without a weights file is a configuration error: never a random network instead.
  """
  cfg = config.loss
  frozen = {}
  if cfg.lpips_weight:
    if not config.pretrained.lpips_path:
      raise UserError(f"config.loss.lpips_weight={cfg.lpips_weight} needs pretrained weights but "
                      "config.pretrained.lpips_path is not set; convert them with `swaptalk "
                      "convert lpips SRC DST` or set the weight to 0")
    from swaptalk_jax.losses import perceptual  # pylint: disable=g-import-not-at-top
    frozen["lpips"] = perceptual.load_lpips_params(config.pretrained.lpips_path)
  from swaptalk_jax.trainers import identity as identity_trainer  # pylint: disable=g-import-not-at-top
  net, params = identity_trainer.identity_net_for(
      config.identity, {"loss.identity_weight": cfg.identity_weight,
                        "loss.identity_feature_weight": cfg.get("identity_feature_weight", 0.0)})
  if net is not None:
    frozen["identity"] = params
  return frozen, net


def _lpips(frozen, x: jax.Array, y: jax.Array) -> jax.Array:
  from swaptalk_jax.losses import perceptual  # pylint: disable=g-import-not-at-top
  return perceptual.lpips_loss(frozen["lpips"], x, y)


# ----------------------------------------------------------------------------- the task
@dataclasses.dataclass
class VQGANTask(TaskHooks):
  """The Task of stage 0 (see swaptalk_jax/core/task.py)."""
  model: HalfSplitVQGAN
  discriminator: PatchGANDiscriminator
  loss_config: ml_collections.ConfigDict
  restart_config: ml_collections.ConfigDict
  frozen_nets: dict[str, Any] = dataclasses.field(default_factory=dict)  # 'lpips', 'identity'
  identity_net: Optional[identity_nets.IdentityNet] = None   # set with frozen_nets['identity']
  groups: tuple[str, ...] = ("generator", "discriminator")
  ema_groups: tuple[str, ...] = ("generator",)

  # --- parameters
  def init_params(self, rng: jax.Array, batch) -> dict[str, Any]:
    gen_rng, disc_rng = jax.random.split(rng)
    images = batch["image"]
    return {"generator": self.model.init(gen_rng, images)["params"],
            "discriminator": self.discriminator.init(disc_rng, images)["params"]}

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    if group == "discriminator":
      return step >= self.loss_config.disc_start
    return jnp.array(True)

  # --- losses
  def frozen_params(self) -> dict[str, Any]:
    return self.frozen_nets

  def _frozen(self, params) -> dict[str, Any]:
    """The frozen nets handed in with `params` (the core passes them under FROZEN)."""
    frozen = params.get(FROZEN, {})
    missing = set(self.frozen_nets) - set(frozen)
    if missing:
      raise ValueError(f"VQGANTask: params lack the frozen nets {sorted(missing)} under {FROZEN!r}; "
                       "pass {..., FROZEN: task.frozen_params()}")
    return frozen

  def _reconstruction_loss(self, frozen, images: jax.Array, recon: jax.Array) -> jax.Array:
    """The "NLL" term of the adaptive weight: l1 * L1 + lpips * LPIPS + identity_feature *
    (LPIPS-style distance on the identity net's feature maps) (scalar)."""
    cfg = self.loss_config
    loss = cfg.l1_weight * jnp.mean(jnp.abs(images - recon))
    if "lpips" in frozen:
      loss = loss + cfg.lpips_weight * jnp.mean(_lpips(frozen, recon, images))
    if self._identity_feature_weight:
      loss = loss + self._identity_feature_weight * jnp.mean(
          self._identity_features(frozen, recon, images))
    return loss

  @property
  def _identity_feature_weight(self) -> float:
    return float(self.loss_config.get("identity_feature_weight", 0.0)) if self.identity_net else 0.0

  def _identity_features(self, frozen, recon: jax.Array, images: jax.Array) -> jax.Array:
    """Per-example feature-map distance [N] through the frozen identity net (the face-trained
    perceptual term: losses/identity_nets.feature_distance)."""
    return identity_nets.feature_distance(self.identity_net, frozen["identity"], recon, images)

  def _identity(self, frozen, recon: jax.Array, images: jax.Array) -> jax.Array:
    """Per-example 1 - cos(id(recon), id(images)) [N] through the frozen identity net."""
    return identity_nets.identity_distance(self.identity_net, frozen["identity"], recon, images)

  def _disc_logits(self, disc_params, images: jax.Array) -> jax.Array:
    return self.discriminator.apply({"params": disc_params}, images)

  def generator_loss(self, params, batch, step):
    cfg = self.loss_config
    gen = nn.unbox(params["generator"])
    images = batch["image"].astype(jnp.float32)
    (recon, features), (upper, lower) = self.model.apply(
        {"params": gen}, images, return_features=True)
    frozen = self._frozen(params)
    metrics = {"l1": jnp.mean(jnp.abs(images - recon))}
    total = self._reconstruction_loss(frozen, images, recon)
    if "lpips" in frozen:
      metrics["lpips"] = jnp.mean(_lpips(frozen, recon, images))
    if self.identity_net is not None:
      metrics["identity"] = jnp.mean(self._identity(frozen, recon, images))
      total = total + cfg.identity_weight * metrics["identity"]
    if self._identity_feature_weight:
      metrics["identity_features"] = jnp.mean(self._identity_features(frozen, recon, images))
    metrics[STATS] = {name: vq_losses.code_histogram(q.indices, self.model.num_codes)
                      for name, q in zip(HALVES, (upper, lower))}   # also the usage metrics
    for name, q in zip(HALVES, (upper, lower)):
      metrics[f"codebook_{name}"] = vq_losses.codebook_loss(q)
      metrics[f"commitment_{name}"] = vq_losses.commitment_loss(q)
      total = total + cfg.codebook_weight * vq_losses.vq_loss(q, cfg.commitment_beta)
      if cfg.entropy_weight:
        metrics[f"entropy_{name}"] = vq_losses.entropy_loss(q, cfg.entropy_temperature)
        total = total + cfg.entropy_weight * metrics[f"entropy_{name}"]
      usage = vq_losses.usage_metrics(metrics[STATS][name])
      metrics.update({f"{k}_{name}": v for k, v in usage.items()})

    disc = nn.unbox(params["discriminator"])
    kernel = gen["decoder"]["conv_out"]["kernel"]
    features_sg = jax.lax.stop_gradient(features)
    last_layer = lambda w: conv2d(features_sg, w.astype(features_sg.dtype)).astype(jnp.float32)

    # The GAN term is computed at every step and gated by multiplication, not lax.cond: XLA:CPU
    # runs gradient convolutions inside a conditional several times slower (measured: tiny config,
    # D-active step 1.07 s with cond vs 0.78 s gated; a conv weight gradient alone ~30x), and on
    # TPU/GPU the waste is only D's cost during the first disc_start steps.
    gate = jnp.asarray(step >= cfg.disc_start, jnp.float32)
    g_loss = gan_losses.hinge_generator_loss(self._disc_logits(disc, recon))
    nll_norm = gan_losses.last_layer_grad_norm(
        lambda y: self._reconstruction_loss(frozen, images, y), recon, last_layer, kernel)
    gan_norm = gan_losses.last_layer_grad_norm(
        lambda y: gan_losses.hinge_generator_loss(self._disc_logits(disc, y)), recon, last_layer,
        kernel)
    weight = gate * gan_losses.adaptive_weight(nll_norm, gan_norm, cfg.adaptive_weight_max)
    metrics.update(g_loss=g_loss, adaptive_weight=weight)
    total = total + cfg.gan_weight * weight * g_loss
    return total, (metrics, jax.lax.stop_gradient(recon))

  def discriminator_loss(self, params, batch, step, fake):
    disc = nn.unbox(params["discriminator"])
    images = batch["image"].astype(jnp.float32)

    # Gated by multiplication (see generator_loss); the core also skips D's update while inactive.
    gate = jnp.asarray(self.is_active("discriminator", step), jnp.float32)
    real_logits = self._disc_logits(disc, images)
    fake_logits = self._disc_logits(disc, fake)
    loss = gate * gan_losses.hinge_discriminator_loss(real_logits, fake_logits)
    real, fake_mean = jnp.mean(real_logits), jnp.mean(fake_logits)
    return loss, ({"logits_real": real, "logits_fake": fake_mean,
                   "paired_accuracy": gan_losses.paired_accuracy(real_logits, fake_logits)}, None)

  def loss(self, group, params, batch, rng, step, carry):
    del rng  # the model is deterministic (no dropout)
    if group == "generator":
      return self.generator_loss(params, batch, step)
    if group == "discriminator":
      if carry is None:
        raise ValueError("VQGANTask: the discriminator loss needs the generator's reconstructions")
      return self.discriminator_loss(params, batch, step, carry)
    raise ValueError(f"VQGANTask: unknown group {group!r}; groups are {self.groups}")

  # --- dead-code restart (the post-update hook)
  def init_task_state(self, params) -> dict[str, Any]:
    """Running code usage of each codebook (fraction of tokens per code), starting uniform."""
    del params
    k = self.model.num_codes
    return {f"usage_{h}": jnp.full((k,), 1.0 / k, jnp.float32) for h in HALVES}

  def update_task_state(self, params, task_state, stats, batch, rng, step):
    """Updates the usage EMAs from this step's code histograms; every `restart.every` steps,
    re-initialises the dead codes (usage < dead_threshold / K) to encoder outputs of this batch."""
    r = self.restart_config
    k = self.model.num_codes
    usage = {h: r.usage_decay * task_state[f"usage_{h}"]
             + (1.0 - r.usage_decay) * stats["generator"][h] for h in HALVES}
    dead = {h: usage[h] < r.dead_threshold / k for h in HALVES}
    metrics = {f"generator/dead_codes_{h}": jnp.mean(dead[h].astype(jnp.float32)) for h in HALVES}
    if not r.enabled:
      return params, {f"usage_{h}": usage[h] for h in HALVES}, metrics

    def restart(operand):
      gen, usage = operand
      upper, lower = self.model.apply({"params": nn.unbox(gen)}, batch["image"].astype(jnp.float32),
                                      method=HalfSplitVQGAN.encode)
      gen, usage = dict(gen), dict(usage)
      for i, (h, q) in enumerate(zip(HALVES, (upper, lower))):
        name = f"quantizer_{h}"
        codebook = gen[name]["codebook"]
        candidates = jax.lax.stop_gradient(q.inputs).reshape(-1, q.inputs.shape[-1])
        gen[name] = {**gen[name], "codebook": restart_dead_codes(
            codebook, dead[h], candidates, jax.random.fold_in(rng, i))}
        usage[h] = jnp.where(dead[h], 1.0 / k, usage[h])
      return gen, usage

    now = jnp.logical_and((step + 1) % r.every == 0, step + 1 >= r.start)
    gen, usage = jax.lax.cond(now, restart, lambda operand: operand, (params["generator"], usage))
    metrics.update({f"generator/restarted_codes_{h}": jnp.where(now, jnp.sum(dead[h]), 0)
                    .astype(jnp.float32) for h in HALVES})
    return {**params, "generator": gen}, {f"usage_{h}": usage[h] for h in HALVES}, metrics

  # --- evaluation
  def reconstruct(self, params, images: jax.Array):
    gen = nn.unbox(params["generator"])
    return self.model.apply({"params": gen}, images.astype(jnp.float32))

  def eval_metrics(self, params, batch, rng):
    del rng
    images = batch["image"].astype(jnp.float32)
    recon, (upper, lower) = self.reconstruct(params, images)
    x, y = to_unit_range(recon), to_unit_range(images)
    metrics = {"l1": jnp.mean(jnp.abs(recon - images)), "psnr": jnp.mean(psnr(x, y)),
               "ssim": jnp.mean(ssim(x, y))}
    frozen = self._frozen(params)
    if "lpips" in frozen:
      metrics["lpips"] = jnp.mean(_lpips(frozen, recon, images))
    if self.identity_net is not None:
      metrics["identity_similarity"] = 1.0 - jnp.mean(self._identity(frozen, recon, images))
    for name, q in zip(HALVES, (upper, lower)):
      usage = vq_losses.usage_metrics(vq_losses.code_histogram(q.indices, self.model.num_codes))
      metrics.update({f"{k}_{name}": v for k, v in usage.items()})
    return metrics

  def token_indices(self, params, batch) -> jax.Array:
    """Token indices int [B, h, w] of the batch's images (rows [0, h/2) index C^U, the rest C^B):
    what the `codebook_usage` evaluator counts over the eval split."""
    gen = nn.unbox(params["generator"])
    return self.model.apply({"params": gen}, batch["image"].astype(jnp.float32),
                            method=HalfSplitVQGAN.encode_to_indices)

  def summaries(self, params, batch):
    """'reconstruction': input | reconstruction | halves mixed (upper tokens of example i with
    lower tokens of example i+1 — shows that the halves decode independently)."""
    gen = nn.unbox(params["generator"])
    images = batch["image"].astype(jnp.float32)
    recon, (upper, lower) = self.model.apply({"params": gen}, images)
    mixed_tokens = jnp.concatenate([upper.codes, jnp.roll(lower.codes, 1, axis=0)], axis=1)
    mixed = self.model.apply({"params": gen}, mixed_tokens, method=HalfSplitVQGAN.decode)
    row = jnp.concatenate([images, recon, mixed], axis=2)
    return {"reconstruction": to_unit_range(row)}


def make_task(config: ml_collections.ConfigDict) -> VQGANTask:
  """The stage-0 Task of a `configs/vqgan.py` config; loads the frozen pretrained nets it names."""
  dtype = jnp.dtype(config.train.compute_dtype)
  cfg = config.loss
  frozen_nets, identity_net = load_frozen_nets(config)
  return VQGANTask(
      model=vqgan_from_config(config.model, dtype),
      discriminator=discriminator_from_config(config.discriminator, dtype),
      loss_config=cfg,
      restart_config=config.codebook_restart,
      frozen_nets=frozen_nets, identity_net=identity_net)


# ----------------------------------------------------------------------------- data
def make_train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  """Process-local batches {'image': [B, S, S, 3] in [-1, 1]} of `config.data` (grain, resumable)."""
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  return pipelines.make_train_iterator("vqgan", config.data, process_index, process_count)


def make_eval_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  return pipelines.make_eval_iterator("vqgan", config.data, process_index, process_count)
