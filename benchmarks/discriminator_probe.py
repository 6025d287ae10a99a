"""Is a VQGAN run's discriminator alive? Its own D on real frames, their reconstructions and noise,
next to a fresh D of the same architecture trained alone against the run's fixed reconstructions.

  python benchmarks/discriminator_probe.py --workdir RUN --data DATA_DIR/synthetic \
      [--step N] [--frames_per_clip 2] [--fresh_steps 600]

A collapsed D (the failure docs/identity_budget.md describes) gives every input nearly the same
patch logits: spread across images ~0, real and noise alike, paired accuracy ~0.5. If the fresh D
separates the same frames quickly, the architecture can see the difference and the collapse
comes from the training game (adaptive weight, learning rates), not from a blind network.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.vqgan_identity import reconstruct_fn  # noqa: E402
from swaptalk_jax.core import checkpoint  # noqa: E402
from swaptalk_jax.data import dataset, encode_tokens  # noqa: E402
from swaptalk_jax.errors import UserError  # noqa: E402
from swaptalk_jax.losses import gan  # noqa: E402
from swaptalk_jax.models.patchgan import discriminator_from_config  # noqa: E402


def logit_row(name: str, disc, params, real, fake, noise) -> dict:
  """How much one D's patch logits depend on its input (all on the same frames)."""
  apply = jax.jit(lambda x: disc.apply({"params": params}, x))
  lr, lf, ln = (np.asarray(apply(x)) for x in (real, fake, noise))
  return {"discriminator": name,
          "spread across images": f"{lr.std(axis=0).mean():.4f}",
          "mean real / recon / noise": f"{lr.mean():+.3f} / {lf.mean():+.3f} / {ln.mean():+.3f}",
          "|real - noise|": f"{np.abs(lr - ln).mean():.4f}",
          "hinge loss": f"{float(gan.hinge_discriminator_loss(lr, lf)):.3f}",
          "paired acc.": f"{float(gan.paired_accuracy(lr, lf)):.3f}"}


def train_fresh(disc, optim_config, real, fake, steps: int, batch: int, seed: int = 0):
  """A new D trained on hinge alone against fixed reconstructions (the run's D optimiser's Adam
  settings, no schedule); returns its params and [(step, hinge loss on the batch)]."""
  params = disc.init(jax.random.key(seed), real[:1])["params"]
  tx = optax.adam(float(optim_config.learning_rate), b1=float(optim_config.b1),
                  b2=float(optim_config.b2))
  opt_state = tx.init(params)

  def loss_fn(p, r, f):
    return gan.hinge_discriminator_loss(disc.apply({"params": p}, r), disc.apply({"params": p}, f))

  @jax.jit
  def update(p, s, r, f):
    loss, grads = jax.value_and_grad(loss_fn)(p, r, f)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  rng, history = np.random.default_rng(seed), []
  for step in range(1, steps + 1):
    idx = rng.choice(len(real), min(batch, len(real)), replace=False)
    params, opt_state, loss = update(params, opt_state, real[idx], fake[idx])
    if step % max(1, steps // 6) == 0 or step == steps:
      history.append((step, float(loss)))
  return params, history


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="`swaptalk train` VQGAN workdir")
  parser.add_argument("--data", required=True, help="prepared dataset: DATA_DIR/synthetic[/1.0.0]")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  parser.add_argument("--frames_per_clip", type=int, default=2, help="training-split frames")
  parser.add_argument("--fresh_steps", type=int, default=600, help="0: skip the fresh D")
  args = parser.parse_args()
  try:
    dataset_dir = str(encode_tokens.resolve_dataset_dir(args.data))
    gen, step, config = checkpoint.load_params(args.workdir, step=args.step)
    own, _, _ = checkpoint.load_params(args.workdir, "discriminator", ema=False, step=args.step)
  except UserError as e:
    sys.exit(f"discriminator_probe: {e}")
  size = int(config.data.image_size)
  frames = dataset.labelled_frames(dataset_dir, "train", args.frames_per_clip, size)[0]
  real = jnp.asarray(frames.astype(np.float32) / 127.5 - 1.0)
  fake = jnp.asarray(reconstruct_fn(config, gen)(frames))
  noise = jax.random.uniform(jax.random.key(1), real.shape, minval=-1.0, maxval=1.0)
  disc = discriminator_from_config(config.discriminator)
  rows = [logit_row(f"the run's own (step {step})", disc, own, real, fake, noise)]
  history = []
  if args.fresh_steps:
    fresh, history = train_fresh(disc, config.optim.discriminator, real, fake, args.fresh_steps,
                                 int(config.data.batch_size))
    rows.append(logit_row(f"fresh, {args.fresh_steps} steps alone", disc, fresh, real, fake,
                          noise))
  print(f"{args.workdir} step {step}: {len(frames)} training frames at {size} px, their "
        f"reconstructions, uniform noise; hinge loss 1.0 and paired accuracy 0.5 = cannot tell")
  common.print_table([list(r.values()) for r in rows], tuple(rows[0]))
  if history:
    print("fresh D hinge loss by step: " + ", ".join(f"{s}: {l:.3f}" for s, l in history))


if __name__ == "__main__":
  main()
