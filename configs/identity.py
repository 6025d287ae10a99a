"""An identity network the project trains itself: the ArcFace IResNet port + an additive-angular-
margin softmax head over a prepared dataset's identity labels (`trainers/identity.py`).

Why: the paper's ArcFace weights are research-only and absent offline; users training on their own
people need their own identity net. What the swap stage loads (`configs/swap.py`,
identity.kind='trained', identity.workdir=<this run>) is the embedder alone; the head is a
training-only parameter group.

Variants: `configs/identity.py:r50` (arcface_torch's IResNet-50 at 112 px, 512-d, s=64, m=0.5),
`:tiny` (CPU: a one-block-per-stage IResNet of widths 16..128 at 64 px, 128-d, on the synthetic
set). Input: the records' face crops resized to `model.input_size` (`data.image_size` follows it).
Eval (held-out identities): `evaluators/verification.py` (same/different pairs of test-split
frames, threshold chosen on the train split's pairs; raw-pixel cosine as the baseline).
"""
import ml_collections

from configs.common import base_config, optimizer_config
from swaptalk_jax.data import pipelines
from swaptalk_jax.errors import UserError
from swaptalk_jax.models import arcface

VARIANTS = ("r50", "tiny")


def model_config(variant: str) -> ml_collections.ConfigDict:
  """Fields of `models.arcface.IResNet` (+ the head's scale and margin)."""
  if variant == "r50":
    sizes = dict(blocks=arcface.VARIANTS["r50"], widths=arcface.STAGE_WIDTHS,
                 input_size=arcface.INPUT_SIZE, embedding_dim=arcface.EMBEDDING_DIM, scale=64.0)
  else:  # tiny
    # s=30: with 36 classes, s=64 saturates the softmax from the first steps (arcface_torch's s
    # is for ~10^4-10^5 classes).
    sizes = dict(blocks=(1, 1, 1, 1), widths=(16, 32, 64, 128), input_size=64,
                 embedding_dim=128, scale=30.0)
  return ml_collections.ConfigDict(dict(sizes, margin=0.5))


def get_config(arg: str = "r50") -> ml_collections.ConfigDict:
  variant = arg or "r50"
  if variant not in VARIANTS:
    raise UserError(f"configs/identity.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  tiny = variant == "tiny"
  c = base_config()
  c.stage = "identity"
  c.variant = variant
  c.model = model_config(variant)
  # The head's classes: 0 = the identities of data.train_split (read at start-up); set it to
  # compile without the data (`swaptalk compile`).
  c.num_classes = 0

  c.data = pipelines.default_data_config()
  c.data.image_size = c.model.input_size     # checked equal at start-up
  c.data.batch_size = 64 if tiny else 512         # global
  if tiny:
    c.data.read_threads, c.data.prefetch_buffer = 1, 2

  # Both groups AdamW; the head's class centres without weight decay (they are normalised).
  c.optim.embedder = optimizer_config(learning_rate=2e-3 if tiny else 1e-3, weight_decay=5e-4 if
                                      tiny else 0.05, warmup_steps=20 if tiny else 2000,
                                      schedule="cosine", clip_norm=5.0)
  c.optim.head = optimizer_config(learning_rate=2e-3 if tiny else 1e-3, weight_decay=0.0,
                                  warmup_steps=20 if tiny else 2000, schedule="cosine",
                                  clip_norm=5.0)
  c.batch_norm_momentum = 0.9 if tiny else 0.99   # running mean/var <- m * old + (1 - m) * batch
  c.train.num_steps = 600 if tiny else 200_000
  c.train.ema_decay = 0.9 if tiny else 0.999
  if tiny:
    c.train.update(log_every=20, eval_every=200, summary_every=200, checkpoint_every=200,
                   eval_batches=2)
  else:
    c.train.compute_dtype = "bfloat16"
    c.train.update(log_every=100, eval_every=5000, summary_every=5000, checkpoint_every=5000)
  # Verification on held-out identities (evaluators/verification.py): pairs of frames of the eval
  # split; the threshold is the best one on the same kind of pairs of the train split.
  c.evals.verification = dict(type="verification", frames_per_clip=8 if tiny else 4,
                              max_pairs=4000, seed=0)
  return c
