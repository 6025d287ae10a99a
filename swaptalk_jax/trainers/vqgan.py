"""Stage 0 trainer: the half-split VQGAN (generator) against a PatchGAN (discriminator).

Generator loss = l1 * L1 + lpips * LPIPS + identity * (1 - cos ArcFace) + codebook * VQ
  + entropy * usage entropy + [step >= disc_start] * gan_weight * adaptive * hinge_G.
The adaptive weight (taming) balances the gradient norms of the reconstruction (L1 + LPIPS) and GAN
terms at the decoder's last conv kernel. The discriminator (hinge) sees the generator's
reconstructions through the carry and is updated from `disc_start` on.
"""
import dataclasses
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from swaptalk_jax.losses import gan as gan_losses
from swaptalk_jax.losses import vq as vq_losses
from swaptalk_jax.models.conv_ops import conv2d
from swaptalk_jax.models.patchgan import PatchGANDiscriminator
from swaptalk_jax.metrics.image_quality import psnr, ssim
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config

ImagePairFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x, y) in [-1, 1] -> per-example [B]


# ----------------------------------------------------------------------------- image metrics
def to_unit_range(images: jax.Array) -> jax.Array:
  """[-1, 1] -> [0, 1], clipped."""
  return jnp.clip((images.astype(jnp.float32) + 1.0) * 0.5, 0.0, 1.0)


# ----------------------------------------------------------------------------- pretrained nets
def _pretrained_loss(kind: str, weight: float, path: Optional[str], **kwargs) -> Optional[ImagePairFn]:
  """A frozen pretrained per-example loss (x, y) -> [B], or None when its weight is 0 (OFF).

  A weight > 0 without a weights file is a configuration error: never a random network instead.
  """
  if not weight:
    return None
  field = {"lpips": "lpips_path", "identity": "arcface_path"}[kind]
  if not path:
    raise ValueError(f"config.loss.{kind}_weight={weight} needs pretrained weights but "
                     f"config.pretrained.{field} is not set; convert them with `swaptalk convert "
                     f"{'lpips' if kind == 'lpips' else 'arcface'} SRC DST` or set the weight to 0")
  if kind == "lpips":
    from swaptalk_jax.losses import perceptual  # pylint: disable=g-import-not-at-top
    return perceptual.make_lpips_loss(path)
  from swaptalk_jax.losses import identity  # pylint: disable=g-import-not-at-top
  return identity.make_identity_loss(path, **kwargs)


# ----------------------------------------------------------------------------- the task
@dataclasses.dataclass
class VQGANTask:
  """The Task of stage 0 (see swaptalk_jax/core/task.py)."""
  model: HalfSplitVQGAN
  discriminator: PatchGANDiscriminator
  loss_config: ml_collections.ConfigDict
  lpips: Optional[ImagePairFn] = None
  identity: Optional[ImagePairFn] = None
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
  def _reconstruction_loss(self, images: jax.Array, recon: jax.Array) -> jax.Array:
    """The "NLL" term of the adaptive weight: l1 * L1 + lpips * LPIPS (scalar)."""
    cfg = self.loss_config
    loss = cfg.l1_weight * jnp.mean(jnp.abs(images - recon))
    if self.lpips is not None:
      loss = loss + cfg.lpips_weight * jnp.mean(self.lpips(recon, images))
    return loss

  def _disc_logits(self, disc_params, images: jax.Array) -> jax.Array:
    return self.discriminator.apply({"params": disc_params}, images)

  def generator_loss(self, params, batch, step):
    cfg = self.loss_config
    gen = nn.unbox(params["generator"])
    images = batch["image"].astype(jnp.float32)
    (recon, features), (upper, lower) = self.model.apply(
        {"params": gen}, images, return_features=True)
    metrics = {"l1": jnp.mean(jnp.abs(images - recon))}
    total = self._reconstruction_loss(images, recon)
    if self.lpips is not None:
      metrics["lpips"] = jnp.mean(self.lpips(recon, images))
    if self.identity is not None:
      metrics["identity"] = jnp.mean(self.identity(recon, images))
      total = total + cfg.identity_weight * metrics["identity"]
    for name, q in (("upper", upper), ("lower", lower)):
      metrics[f"codebook_{name}"] = vq_losses.codebook_loss(q)
      metrics[f"commitment_{name}"] = vq_losses.commitment_loss(q)
      total = total + cfg.codebook_weight * vq_losses.vq_loss(q, cfg.commitment_beta)
      if cfg.entropy_weight:
        metrics[f"entropy_{name}"] = vq_losses.entropy_loss(q, cfg.entropy_temperature)
        total = total + cfg.entropy_weight * metrics[f"entropy_{name}"]
      usage = vq_losses.usage_metrics(q.indices, self.model.num_codes)
      metrics.update({f"{k}_{name}": v for k, v in usage.items()})

    disc = nn.unbox(params["discriminator"])
    kernel = gen["decoder"]["conv_out"]["kernel"]
    features_sg = jax.lax.stop_gradient(features)
    last_layer = lambda w: conv2d(features_sg, w.astype(features_sg.dtype)).astype(jnp.float32)

    def gan_term(recon):
      g_loss = gan_losses.hinge_generator_loss(self._disc_logits(disc, recon))
      nll_norm = gan_losses.last_layer_grad_norm(
          lambda y: self._reconstruction_loss(images, y), recon, last_layer, kernel)
      gan_norm = gan_losses.last_layer_grad_norm(
          lambda y: gan_losses.hinge_generator_loss(self._disc_logits(disc, y)), recon, last_layer,
          kernel)
      weight = gan_losses.adaptive_weight(nll_norm, gan_norm, cfg.adaptive_weight_max)
      return cfg.gan_weight * weight * g_loss, (g_loss, weight)

    def no_gan(recon):
      zero = jnp.zeros((), jnp.float32)
      return zero, (zero, zero)

    gan_loss, (g_loss, weight) = jax.lax.cond(step >= cfg.disc_start, gan_term, no_gan, recon)
    metrics.update(g_loss=g_loss, adaptive_weight=weight)
    total = total + gan_loss
    return total, (metrics, jax.lax.stop_gradient(recon))

  def discriminator_loss(self, params, batch, step, fake):
    disc = nn.unbox(params["discriminator"])
    images = batch["image"].astype(jnp.float32)

    def hinge(disc):
      real_logits = self._disc_logits(disc, images)
      fake_logits = self._disc_logits(disc, fake)
      loss = gan_losses.hinge_discriminator_loss(real_logits, fake_logits)
      return loss, (jnp.mean(real_logits), jnp.mean(fake_logits))

    def inactive(disc):
      zero = jnp.zeros((), jnp.float32)
      return zero, (zero, zero)

    loss, (real, fake_mean) = jax.lax.cond(self.is_active("discriminator", step), hinge, inactive,
                                           disc)
    return loss, ({"logits_real": real, "logits_fake": fake_mean}, None)

  def loss(self, group, params, batch, rng, step, carry):
    del rng  # the model is deterministic (no dropout)
    if group == "generator":
      return self.generator_loss(params, batch, step)
    if group == "discriminator":
      if carry is None:
        raise ValueError("VQGANTask: the discriminator loss needs the generator's reconstructions")
      return self.discriminator_loss(params, batch, step, carry)
    raise ValueError(f"VQGANTask: unknown group {group!r}; groups are {self.groups}")

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
    if self.lpips is not None:
      metrics["lpips"] = jnp.mean(self.lpips(recon, images))
    if self.identity is not None:
      metrics["identity_similarity"] = 1.0 - jnp.mean(self.identity(recon, images))
    for name, q in (("upper", upper), ("lower", lower)):
      usage = vq_losses.usage_metrics(q.indices, self.model.num_codes)
      metrics.update({f"{k}_{name}": v for k, v in usage.items()})
    return metrics

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
  d = config.discriminator
  cfg = config.loss
  return VQGANTask(
      model=vqgan_from_config(config.model, dtype),
      discriminator=PatchGANDiscriminator(d.base_features, d.num_layers, num_groups=d.num_groups,
                                          dtype=dtype),
      loss_config=cfg,
      lpips=_pretrained_loss("lpips", cfg.lpips_weight, config.pretrained.lpips_path),
      identity=_pretrained_loss("identity", cfg.identity_weight, config.pretrained.arcface_path,
                                variant=config.pretrained.arcface_variant))


# ----------------------------------------------------------------------------- data
def make_train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  """Process-local batches {'image': [B, S, S, 3] in [-1, 1]} of `config.data` (grain, resumable)."""
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  return pipelines.make_train_iterator("vqgan", config.data, process_index, process_count)


def make_eval_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  return pipelines.make_eval_iterator("vqgan", config.data, process_index, process_count)
