"""Stage 2: the VQ-lip expert (SyncNet over lower-half VQ embeddings and log-mel windows).

Variants: `configs/lip_expert.py:paper` (256 px crops, the f16 VQGAN's 8x16 lower grid of 256-d
codes), `:tiny` (64 px, over the `configs/vqgan.py:tiny` VQGAN), `:micro` (32 px, over the test
suite's `configs/vqgan.py:micro` VQGAN; what the tests train).

`vqgan.workdir` (required): a `swaptalk train` run of stage 0; its frozen encoder and codebook C^B
give the lower-half token embeddings inside the step. `data.image_size` must be the VQGAN's.
"""
import ml_collections

from configs.common import base_config, optimizer_config
from swaptalk_jax.data import pipelines
from swaptalk_jax.errors import UserError

VARIANTS = ("paper", "tiny", "micro")


def model_config(variant: str) -> ml_collections.ConfigDict:
  """Fields of `swaptalk_jax.models.lip_expert.LipExpert` (see its docstring for the switches)."""
  if variant == "paper":
    sizes = dict(visual_features=(256, 512, 512), audio_features=(64, 128, 256, 512),
                 embed_dim=512, num_groups=32)
  elif variant == "tiny":
    sizes = dict(visual_features=(64, 128, 128), audio_features=(32, 64, 128, 128),
                 embed_dim=128, num_groups=8)
  else:  # micro
    sizes = dict(visual_features=(32, 64, 64), audio_features=(16, 32, 64, 64),
                 embed_dim=64, num_groups=8)
  return ml_collections.ConfigDict(dict(
      sizes,
      visual_strides=((1, 1), (2, 2), (2, 2)),            # 8x16 lower grid -> 2x4
      audio_strides=((1, 2), (2, 2), (2, 2), (2, 2)),     # 16x80 mel -> 2x5
      stream_norm="group",        # 'group' | 'none': GroupNorm after every conv of both streams
      pool="flatten",             # 'flatten' | 'mean' of each stream's final grid
      token_norm=True,            # LayerNorm of each input token embedding (codebook scale varies)
      # Subtract each token position's mean over the window (identity is static, sync is motion).
      # The fix that takes the expert off 0.69: measured in-memory on the quickstart's micro tokens
      # (2000 steps, batch 32): without it train and held-out accuracy stay at 0.50; with it
      # held-out accuracy 0.78 (0.72 by step 400).
      center_window=True,
      score="scaled",             # 'scaled': scale * cos + bias | 'wav2lip': p = cos(relu, relu)
      temperature="learnable",    # 'learnable' | 'fixed' scale of the cosine
      # Measured on fixed micro features, 400 steps, batch 32, lr 1e-3: init scale 1 (learnable)
      # -> train BCE 0.548 (below 0.65 by step ~200); init 10 -> 0.647 (starts at BCE ~1.4: random
      # embeddings are correlated, so a big scale begins overconfident); mean pooling -> 0.692.
      init_scale=1.0,
  ))


def get_config(arg: str = "paper") -> ml_collections.ConfigDict:
  variant = arg or "paper"
  if variant not in VARIANTS:
    raise UserError(f"configs/lip_expert.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  small = variant != "paper"
  c = base_config()
  c.stage = "lip_expert"
  c.variant = variant
  c.model = model_config(variant)
  # activation checkpointing of the repeated blocks (swaptalk_jax/models/remat.py): 'none' |
  # 'full' | 'dots_saveable' | 'dots_with_no_batch_dims_saveable'; params are the same either way
  c.model.remat = "none"
  c.vqgan = ml_collections.ConfigDict(dict(
      workdir=ml_collections.FieldReference(None, field_type=str),   # stage-0 run dir (required)
      ema=True,                   # the VQGAN's EMA generator params (as its eval used)
  ))

  c.data = pipelines.default_data_config()
  c.data.image_size = {"paper": 256, "tiny": 64, "micro": 32}[variant]
  c.data.batch_size = 32 if small else 64       # global
  # Negatives: the same clip's audio shifted by >= min_offset_frames (same voice: the hard kind),
  # or another clip's when the clip is too short.
  c.data.lip_expert.update(window=5, positive_fraction=0.5, min_offset_frames=5)
  if small:
    c.data.read_threads, c.data.prefetch_buffer = 1, 2

  # Warm-up then constant. Measured on fixed micro features (400 steps, batch 32): lr 1e-3 reached
  # train BCE 0.647, 3e-3 only 0.670; compare more with benchmarks/lip_expert.py.
  c.optim.expert = optimizer_config(learning_rate=1e-3 if small else 3e-4, b1=0.9, b2=0.999,
                                    warmup_steps=20 if small else 2000, schedule="constant",
                                    clip_norm=1.0, optimizer="adam")
  c.train.num_steps = 400 if small else 200_000
  c.train.ema_decay = 0.9 if small else 0.999
  if small:
    c.train.update(log_every=10, eval_every=100, summary_every=100, checkpoint_every=200,
                   eval_batches=4)
  else:
    c.train.compute_dtype = "bfloat16"
    c.train.update(log_every=100, eval_every=5000, summary_every=5000, checkpoint_every=5000)
  # Offset detection (SyncNet's AV-offset procedure) on the eval split, after training and by
  # `trainers.lip_expert.offset_evaluation`: offsets in [-max_offset, +max_offset] frames.
  c.offset_eval = ml_collections.ConfigDict(dict(max_offset=15, window_stride=2, max_clips=0))
  return c
