"""Stage 0: the half-split VQGAN. Variants: `configs/vqgan.py:f16` (paper default, 256 px, 16x16
tokens), `:f8` (the 8x ablation, 32x32 tokens), `:tiny` (64 px, f4: the paper's 16x16 token grid on a
CPU; the VQGAN every tiny later stage loads), `:tiny_f8` (64 px, f8, 8x8 tokens: the old tiny, which
keeps no identity), `:micro` (32 px, f2, 16x16 tokens: the test suite's VQGAN, ~0.1 s a step),
`:micro_f4` (64 px, f4, 16x16 tokens at micro's code size and about micro's parameter count: the
paper's grid at 64 px for ~2.5x micro's step time; docs/vqgan_identity.md), `:micro_8x8` (32 px, f4,
8x8 tokens: micro with one more downsampling level, the more-compressed twin of micro for claim C1,
16x vs 8x compression; benchmarks/claims.py), `:micro_32x32` (64 px, f2, 32x32 tokens: micro_f4 with one
downsampling level less, the less-compressed twin of micro_f4: C1 at the paper's grids).

LPIPS needs user-supplied weights (`swaptalk convert lpips`); the identity loss needs the net named
by `identity` (converted ArcFace weights, or `kind='trained'` with a `configs/identity.py` run in
`identity.workdir`); a weight > 0 with neither is an error at start-up. The CPU variants switch both
OFF explicitly (weights 0); the quickstart turns the identity loss on with its own identity run.
"""
import ml_collections

from configs.common import base_config, identity_config, optimizer_config
from swaptalk_jax.data import pipelines

VARIANTS = ("f16", "f8", "tiny", "tiny_f8", "micro", "micro_f4", "micro_8x8", "micro_32x32")
CPU_VARIANTS = ("tiny", "tiny_f8", "micro", "micro_f4", "micro_8x8", "micro_32x32")
MICRO_VARIANTS = ("micro", "micro_f4", "micro_8x8", "micro_32x32")   # micro's codebook, D and optimiser recipe
MICRO_32PX = ("micro", "micro_8x8")


def model_config(variant: str) -> ml_collections.ConfigDict:
  """Encoder/decoder/codebook sizes (fields of `swaptalk_jax.models.vqgan.HalfSplitVQGAN`)."""
  if variant == "f16":
    arch = dict(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z_channels=256)
  elif variant == "f8":
    arch = dict(ch=128, ch_mult=(1, 2, 2, 4), num_res_blocks=2, z_channels=256)
  elif variant == "micro":
    return ml_collections.ConfigDict(dict(
        ch=16, ch_mult=(1, 2), num_res_blocks=1, z_channels=16, embed_dim=16, num_codes=64,
        l2_normalize_codes=False, num_groups=8))
  elif variant == "micro_8x8":
    # micro plus one more downsampling level at micro's top width: 16 ch at 32 px, 32 at 16x16,
    # 32 at 8x8. Everything else (codes, D, optimiser, budget) is micro's, so the pair differs
    # only in compression (f2 vs f4: the paper's 8x vs 16x at 32 px).
    return ml_collections.ConfigDict(dict(
        ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=16, embed_dim=16, num_codes=64,
        l2_normalize_codes=False, num_groups=8))
  elif variant == "micro_32x32":
    # micro_f4 without its last downsampling level (8 ch at 64 px, 16 at 32x32): f2 at 64 px, the
    # paper's 32x32 grid; with micro_f4 the CPU pair of the paper's f8 vs f16 (claim C1).
    return ml_collections.ConfigDict(dict(
        ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=16, embed_dim=16, num_codes=64,
        l2_normalize_codes=False, num_groups=4))
  elif variant == "micro_f4":
    # One more downsampling level than micro, half its base width: 8 ch at 64 px, 16 at 32, 32 at
    # 16x16 (micro: 16 at 32 px, 32 at 16x16). Measured G+D step at batch 8 on this CPU (loaded):
    # 0.44 s vs micro's 0.18 s. A wider f4 (ch=16, (1, 2, 2)) ran at 3.9 steps/s with D active on
    # 2026-12-07 (alone, after the GroupNorm rewrite) and kept no more identity once its D was
    # alive (docs/identity_budget.md, "The discriminator had collapsed").
    return ml_collections.ConfigDict(dict(
        ch=8, ch_mult=(1, 2, 4), num_res_blocks=1, z_channels=16, embed_dim=16, num_codes=64,
        l2_normalize_codes=False, num_groups=4))
  elif variant == "tiny_f8":
    arch = dict(ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1, z_channels=64)
  else:   # tiny: f4 at 64 px = the paper's 16x16 grid (8 rows per half)
    arch = dict(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=64)
  tiny = variant in CPU_VARIANTS
  return ml_collections.ConfigDict(dict(
      arch,
      embed_dim=64 if tiny else 256,
      num_codes=256 if tiny else 1024,   # per codebook (upper C^U and lower C^B each)
      l2_normalize_codes=False,          # True: cosine lookup on unit-norm codes (ViT-VQGAN)
      num_groups=16 if tiny else 32,
  ))


def get_config(arg: str = "f16") -> ml_collections.ConfigDict:
  variant = arg or "f16"
  if variant not in VARIANTS:
    raise ValueError(f"configs/vqgan.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  tiny = variant in CPU_VARIANTS
  micro = variant in MICRO_VARIANTS
  c = base_config()
  c.stage = "vqgan"
  c.variant = variant
  c.model = model_config(variant)
  # activation checkpointing of the repeated blocks (swaptalk_jax/models/remat.py): 'none' |
  # 'full' | 'dots_saveable' | 'dots_with_no_batch_dims_saveable'; params are the same either way
  c.model.remat = "none"
  c.discriminator = ml_collections.ConfigDict(dict(
      base_features=16 if tiny else 64, num_layers=2 if tiny else 3, num_groups=16 if tiny else 32))
  if micro:
    c.discriminator.update(base_features=8, num_groups=4)

  c.loss = ml_collections.ConfigDict(dict(
      l1_weight=1.0,
      lpips_weight=0.0 if tiny else 1.0,      # tiny: OFF (no VGG16/LPIPS weights configured)
      identity_weight=0.0 if tiny else 0.1,   # tiny: OFF (no identity net configured)
      # LPIPS-style distance on the identity net's feature maps, inside the reconstruction term:
      # a face-trained perceptual loss where the VGG/LPIPS weights are absent (not in the paper)
      identity_feature_weight=0.0,
      codebook_weight=1.0,
      commitment_beta=0.25,
      # Dead-code fix: per-token minus batch assignment entropy (losses/vq.py `entropy_loss`).
      entropy_weight=0.01,
      entropy_temperature=0.01,
      gan_weight=0.8,                          # times the adaptive weight (taming's disc_weight)
      adaptive_weight_max=1e4,
      disc_start=200 if tiny else 30001,       # step at which D trains and the G GAN term starts
  ))
  # Dead-code restart (models/quantizer.py `restart_dead_codes`, run after each optimizer update):
  # a code whose running usage (EMA of its token share) fell below dead_threshold / num_codes is
  # re-initialised to an encoder output of the batch, every `every` steps from step `start` on.
  c.codebook_restart = ml_collections.ConfigDict(dict(
      enabled=True,
      usage_decay=0.9 if tiny else 0.99,
      dead_threshold=0.03,
      every=20 if tiny else 500,
      start=20 if tiny else 1000,
  ))
  # Frozen LPIPS weights, converted with `swaptalk convert lpips SRC DST`.
  c.pretrained = ml_collections.ConfigDict(dict(
      lpips_path=ml_collections.FieldReference(None, field_type=str),
  ))
  # The identity loss's frozen net (configs/common.identity_config): converted ArcFace at paper
  # size; on CPU a `configs/identity.py:tiny` run (kind 'trained') when identity_weight > 0.
  c.identity = identity_config("none" if tiny else "arcface")

  # Periodic eval also counts codebook usage over the whole eval split (swaptalk_jax/evaluators/).
  c.evals.codebook_usage = dict(type="codebook_usage", num_batches=0)   # 0: every eval batch

  c.data = pipelines.default_data_config()   # the synthetic set; HDTF/VoxCeleb2/mixes via sources
  c.data.image_size = 32 if variant in MICRO_32PX else (64 if tiny else 256)
  c.data.batch_size = 8 if tiny else 32        # global
  if tiny:
    c.data.read_threads, c.data.prefetch_buffer = 1, 2

  c.optim.generator = optimizer_config(learning_rate=1e-3 if micro else (2e-4 if tiny else 1e-4),
                                       b1=0.5, b2=0.9,
                                       warmup_steps=20 if tiny else 1000, schedule="constant")
  c.optim.discriminator = optimizer_config(learning_rate=2e-4 if tiny else 1e-4, b1=0.5, b2=0.9,
                                           warmup_steps=0, schedule="constant")
  if micro and variant not in MICRO_32PX:
    # 64-px micro faces: keep the discriminator alive. With taming's cap (1e4) and D at 1/5 of
    # G's learning rate, D collapsed to an input-independent output (hinge loss 1.000, the same
    # logit for a real frame and for noise) by step 500 in two ch-16 runs and by step 2000-3000
    # in the ch-8 runs; the adaptive weight then reads |grad nll| / ~0 (hundreds), G chases every
    # trace of D's sensitivity, and reconstructions blur. Cap 1 and D at G's rate keep D ahead
    # (paired accuracy 0.6-0.9): eyes and mouths come back (docs/identity_budget.md). At 32 px
    # the same change measured no identity gain; those variants keep the old recipe.
    c.loss.adaptive_weight_max = 1.0
    c.optim.discriminator.learning_rate = c.optim.generator.learning_rate
  c.train.num_steps = 1000 if micro else (400 if tiny else 400_000)
  c.train.ema_decay = 0.9 if micro else (0.99 if tiny else 0.999)
  if tiny:
    c.train.update(log_every=10, eval_every=100, summary_every=100, checkpoint_every=100,
                   eval_batches=2)
  else:
    c.train.compute_dtype = "bfloat16"
    c.train.update(log_every=100, eval_every=5000, summary_every=2000, checkpoint_every=5000)
  return c
