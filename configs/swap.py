"""Stage 1: one-shot face swap in the token space of a frozen stage-0 VQGAN (Fig. 2c).

Variants: `configs/swap.py:transformer` (the paper: cross-attention transformer over the f16
VQGAN's 16x16 tokens, both identity losses through ArcFace), `:unet` (Table IV's UNet backbone,
same losses), `:tiny` (CPU: a small transformer over `configs/vqgan.py:tiny`'s 16x16 tokens at
64 px, L_proxy only), `:tiny_unet` (the tiny UNet ablation).

`vqgan.workdir` names the stage-0 run (`swaptalk train --config=configs/vqgan.py:<variant>`); its
stored config must be `configs/vqgan.py:<vqgan.variant>`'s model, else the run stops in one line.
Identity losses (`loss.id_src_weight`, `loss.id_res_weight`) go through the network chosen by
`identity.kind`: 'arcface' (converted weights: `swaptalk convert arcface SRC DST`) or 'trained' (a
run of `configs/identity.py`); a weight > 0 with kind 'none' is an error at start-up.
"""
import ml_collections

from configs import vqgan as vqgan_configs
from configs.common import base_config, identity_config, optimizer_config
from swaptalk_jax.data import pipelines

VARIANTS = ("transformer", "unet", "tiny", "tiny_unet")
CPU_VARIANTS = ("tiny", "tiny_unet")


def model_config(variant: str, token_dim: int) -> ml_collections.ConfigDict:
  """Fields of `models.swap.SwapTransformer` / `SwapUNet` (unused fields of the other are kept so
  one override switches the backbone)."""
  tiny = variant in CPU_VARIANTS
  return ml_collections.ConfigDict(dict(
      backbone="unet" if variant in ("unet", "tiny_unet") else "transformer",
      token_dim=token_dim,            # D of the frozen VQGAN's tokens (checked against it)
      # transformer
      width=128 if tiny else 512,
      num_layers=2 if tiny else 8,
      num_heads=4 if tiny else 8,
      head_dim=32 if tiny else 64,
      mlp_dim=256 if tiny else 2048,
      max_tokens=256,                 # 16 x 16 token grid
      self_attention=False,           # Fig. 2c: cross-attention only (a flag for the ablation)
      # Init scale of the learned position table, shared by both streams: large, the source token
      # at a target token's face position is what its query matches first (copy-by-position
      # generalises to unseen identities; matching by content alone memorises the training ones).
      position_stddev=0.02,
      # Ours, not Fig. 2c: T~_VQ = S_VQ + the final Linear (the blocks learn the change from the
      # aligned source; measured on CPU budgets: without it the tiny module memorises the 8
      # training identities and stays far from the ground truth on unseen ones).
      source_skip=tiny,
      # unet
      width_mult=(1, 2, 2),
      num_res_blocks=1 if tiny else 2,
      num_groups=16 if tiny else 32,
  ))


def get_config(arg: str = "transformer") -> ml_collections.ConfigDict:
  variant = arg or "transformer"
  if variant not in VARIANTS:
    raise ValueError(f"configs/swap.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  tiny = variant in CPU_VARIANTS
  c = base_config()
  c.stage = "swap"
  c.variant = variant

  # The frozen stage-0 VQGAN: a `swaptalk train` run directory and the variant it was trained as.
  vqgan_variant = "tiny" if tiny else "f16"
  c.vqgan = ml_collections.ConfigDict(dict(
      workdir=ml_collections.FieldReference(None, field_type=str),
      variant=vqgan_variant,
      ema=True,                       # load its EMA generator params
  ))
  c.model = model_config(variant, vqgan_configs.model_config(vqgan_variant).embed_dim)
  # activation checkpointing of the repeated blocks (swaptalk_jax/models/remat.py): 'none' |
  # 'full' | 'dots_saveable' | 'dots_with_no_batch_dims_saveable'; params are the same either way
  c.model.remat = "none"
  if tiny and variant == "tiny_unet":
    c.model.width = 64

  c.loss = ml_collections.ConfigDict(dict(
      proxy_weight=1.0,               # L_proxy: |T~_VQ - E(Res)|^2 on examples with a ground truth
      id_src_weight=0.0 if tiny else 0.1,   # L_id_src: 1 - cos(id(D(T~_VQ)), id(source))
      id_res_weight=0.0 if tiny else 0.1,   # L_id_res: 1 - cos(id(D(T~_VQ)), id(Res))
  ))
  c.identity = identity_config("none" if tiny else "arcface")   # 'none' | 'arcface' | 'trained'

  c.data = pipelines.default_data_config()
  c.data.image_size = 64 if tiny else 256        # must be the frozen VQGAN's
  c.data.batch_size = 16 if tiny else 64
  c.data.swap.same_identity_fraction = 0.25      # Res = target; cross pairs use the exact render
  if tiny:
    c.data.read_threads, c.data.prefetch_buffer = 1, 2

  c.optim.swap = optimizer_config(learning_rate=1e-3 if tiny else 2e-4, b1=0.9, b2=0.99,
                                  weight_decay=0.0 if tiny else 0.01,
                                  warmup_steps=20 if tiny else 2000, schedule="cosine")
  c.train.num_steps = 400 if tiny else 200_000
  c.train.ema_decay = 0.9 if tiny else 0.999
  if tiny:
    c.train.update(log_every=10, eval_every=100, summary_every=100, checkpoint_every=100,
                   eval_batches=2)
  else:
    c.train.compute_dtype = "bfloat16"
    c.train.update(log_every=100, eval_every=5000, summary_every=2000, checkpoint_every=5000)
  return c
