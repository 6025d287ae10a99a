"""Stage 3: lip-sync in token space (face warping + lip transform with audio cross-attention).

Variants (Table V's backbones): `configs/lipsync.py:unet` (paper default: LDM-style UNet with audio
cross-attention), `:plain_unet` (no attention; audio by FiLM), `:dit` (transformer over the token
grid); `:tiny` (the unet at CPU size, over `configs/vqgan.py:tiny`), `:tiny_plain_unet`,
`:tiny_dit`.

`vqgan.workdir` (required): a stage-0 run; its frozen encoder gives T^U, R^U, R^B and the ground
truth T^B inside the step, and its decoder renders the eval images. `expert.workdir` (optional): a
stage-2 lip-expert run; L_sync (weight `loss.sync_weight`, ramped in from `loss.sync_start`) and
the eval's expert score need it. `data.image_size` must be the VQGAN's.
"""
import ml_collections

from configs.common import base_config, optimizer_config
from swaptalk_jax.data import pipelines
from swaptalk_jax.errors import UserError

VARIANTS = ("unet", "plain_unet", "dit", "tiny", "tiny_plain_unet", "tiny_dit")


def model_config(backbone: str, small: bool) -> ml_collections.ConfigDict:
  """Fields of `swaptalk_jax.models.lipsync.LipSyncNet` (the token dim comes from the VQGAN)."""
  return ml_collections.ConfigDict(dict(
      backbone=backbone,                  # 'unet' | 'plain_unet' | 'dit'
      use_warp=True,                      # the Face Warping Module (False: the warping ablation)
      condition_on_upper=True,            # T^U as extra input channels of the lip transform
      warp_features=(32, 64) if small else (128, 256),
      max_offset=4.0,                     # flow = max_offset * tanh(raw), in tokens
      unet_features=(64, 128) if small else (256, 512, 512),
      num_res_blocks=1 if small else 2,
      num_heads=4 if small else 8,
      num_groups=8 if small else 32,
      dit_width=128 if small else 768,
      dit_depth=4 if small else 12,
      audio_width=128 if small else 512,
      audio_layers=1 if small else 4,
  ))


def get_config(arg: str = "unet") -> ml_collections.ConfigDict:
  variant = arg or "unet"
  if variant not in VARIANTS:
    raise UserError(f"configs/lipsync.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  small = variant.startswith("tiny")
  backbone = "unet" if variant == "tiny" else variant.removeprefix("tiny_")
  c = base_config()
  c.stage = "lipsync"
  c.variant = variant
  c.model = model_config(backbone, small)
  # activation checkpointing of the repeated blocks (swaptalk_jax/models/remat.py): 'none' |
  # 'full' | 'dots_saveable' | 'dots_with_no_batch_dims_saveable'; params are the same either way
  c.model.remat = "none"
  c.vqgan = ml_collections.ConfigDict(dict(
      workdir=ml_collections.FieldReference(None, field_type=str),   # stage-0 run dir (required)
      ema=True))
  c.expert = ml_collections.ConfigDict(dict(
      workdir=ml_collections.FieldReference(None, field_type=str),   # stage-2 run dir (optional)
      ema=True))
  c.loss = ml_collections.ConfigDict(dict(
      code_weight=1.0,
      code_type="l2",            # L_code: 'l2' | 'l1' on the lower-half embeddings
      # cross-entropy over C^B indices (logits = -distance / temperature); off by default: at 0.1
      # it dominated L_code on the micro VQGAN and raised the embedding error (train code MSE
      # 0.030 vs 0.0085 without it after 300 steps; copy baseline 0.0175)
      ce_weight=0.0,
      ce_temperature=1.0,
      # L_sync from the frozen expert, switched on once L_code has settled: weight ramps linearly
      # from 0 at sync_start to sync_weight at sync_start + sync_ramp (needs expert.workdir).
      sync_weight=0.0,
      sync_start=200 if small else 50_000,
      sync_ramp=100 if small else 10_000,
      # L1 of the decoded face's lower half against the target's (backpropagates through the
      # frozen decoder; costly, off by default).
      pixel_weight=0.0,
  ))
  # Eval: mouth box (fractions of the crop: rows, columns) for the mouth-region figures, and the
  # log-mel level (in [-4, 4]) under which a frame's audio counts as silence.
  # quantize: the predicted lower half is snapped to its nearest C^B codes before decoding
  # (T^^B as VQ tokens, as the paper's decoder receives them); False decodes the raw embeddings.
  c.eval = ml_collections.ConfigDict(dict(mouth_rows=(0.6, 0.88), mouth_cols=(0.28, 0.72),
                                          silence_level=-3.0, quantize=True))

  c.data = pipelines.default_data_config()
  c.data.image_size = 64 if small else 256
  c.data.batch_size = 8 if small else 64         # global; each example is a window of 5 frames
  c.data.lipsync.update(window=5, reference_min_distance=5)
  # The synthetic set's exact re-sync ground truth for the cross-driven eval (real data: False).
  c.data.lipsync.resync_gt = small
  if small:
    c.data.read_threads, c.data.prefetch_buffer = 1, 2

  c.optim.lipsync = optimizer_config(learning_rate=5e-4 if small else 1e-4, b1=0.9, b2=0.99,
                                     warmup_steps=20 if small else 2000, schedule="cosine",
                                     clip_norm=1.0)
  c.train.num_steps = 400 if small else 300_000
  c.train.ema_decay = 0.95 if small else 0.999
  if small:
    c.train.update(log_every=10, eval_every=100, summary_every=100, checkpoint_every=200,
                   eval_batches=4)
  else:
    c.train.compute_dtype = "bfloat16"
    c.train.update(log_every=100, eval_every=5000, summary_every=5000, checkpoint_every=5000)
  return c
