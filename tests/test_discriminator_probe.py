"""benchmarks/discriminator_probe.py and vqgan_strip.py: the collapse readings on a D that is
constant by construction and on one that separates, the fresh D learning a separable pair, and
the strip's layout."""
import types

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import discriminator_probe, vqgan_strip
from swaptalk_jax.models.patchgan import PatchGANDiscriminator


def _images(sign: float, n: int = 8, size: int = 16, seed: int = 0) -> jax.Array:
  """Smooth-ish images around +-0.5: 'real' (+) and 'reconstructions' (-) a D can tell apart."""
  noise = 0.1 * jax.random.normal(jax.random.key(seed), (n, size, size, 3))
  return sign * 0.5 + noise


def test_a_constant_discriminator_reads_collapsed():
  disc = PatchGANDiscriminator(base_features=4, num_layers=1, num_groups=2)
  real, fake = _images(1.0), _images(-1.0, seed=1)
  params = disc.init(jax.random.key(0), real[:1])["params"]
  # every kernel zero: the output is conv_out's bias whatever the input
  constant = jax.tree_util.tree_map_with_path(
      lambda path, x: jnp.zeros_like(x) if "kernel" in jax.tree_util.keystr(path) else x + 0.3,
      params)
  noise = jax.random.uniform(jax.random.key(2), real.shape, minval=-1.0, maxval=1.0)
  row = discriminator_probe.logit_row("constant", disc, constant, real, fake, noise)
  assert float(row["spread across images"]) == 0.0 and float(row["|real - noise|"]) == 0.0
  assert float(row["hinge loss"]) == 1.0 and float(row["paired acc."]) == 0.0   # ties count as no


def test_a_fresh_discriminator_learns_a_separable_pair():
  disc = PatchGANDiscriminator(base_features=4, num_layers=1, num_groups=2)
  real, fake = _images(1.0, n=16), _images(-1.0, n=16, seed=1)
  optim = types.SimpleNamespace(learning_rate=1e-2, b1=0.5, b2=0.9)
  params, history = discriminator_probe.train_fresh(disc, optim, real, fake, steps=60, batch=8)
  assert history[-1][0] == 60 and history[-1][1] < 0.2   # an untrained D reads ~1.0
  noise = jnp.zeros_like(real)
  row = discriminator_probe.logit_row("fresh", disc, params, real, fake, noise)
  assert float(row["paired acc."]) > 0.9


def test_strip_stacks_rows_of_upscaled_frames():
  rows = [np.full((3, 4, 5, 3), i, np.uint8) for i in range(2)]
  image = vqgan_strip.strip(rows, scale=2)
  assert image.shape == (2 * 4 * 2, 3 * 5 * 2, 3)
  assert (image[:8] == 0).all() and (image[8:] == 1).all()
