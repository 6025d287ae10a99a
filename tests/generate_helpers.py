"""Helpers of the generate tests: stage run directories made without training (random params in
the layout `swaptalk train` writes), and a geometry-only chain that returns its input crop with a
marker drawn on the template's nose tip (so a test can see where the crop was pasted)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.core import checkpoint
from swaptalk_jax.face import align
from swaptalk_jax.inference import stages

MARK = np.array([0, 255, 0], np.uint8)


def save_run(workdir, config, groups: dict, step: int = 1) -> str:
  """A run directory as `swaptalk train` writes it (core/checkpoint's manager and save: the
  same layout load_params reads, checkpoints/<step>/{state,config})."""
  state = dict(params=groups, ema_params=groups)
  manager = checkpoint.make_manager(str(workdir), keep=1, async_save=False)
  checkpoint.save(manager, step, jax.device_get(state), None, config, force=True)
  manager.wait_until_finished()
  manager.close()
  return str(workdir)


def random_params(model, seed: int, *inputs) -> dict:
  """Params of `model` drawn in numpy from the shapes alone (no init compile: seconds, not a
  minute on a busy 2-core CI box): scales 1, biases 0, weights N(0, 1/fan_in)."""
  shapes = nn.unbox(jax.eval_shape(model.init, jax.random.key(0), *inputs))["params"]
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if "scale" in name:
      return np.ones(leaf.shape, np.float32)
    if "bias" in name:
      return np.zeros(leaf.shape, np.float32)
    fan_in = int(np.prod(leaf.shape[:-1])) or 1
    return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(np.float32)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def random_vqgan_run(workdir, variant: str = "micro", seed: int = 0) -> str:
  from configs import vqgan as vqgan_config
  from swaptalk_jax.models.vqgan import vqgan_from_config
  config = vqgan_config.get_config(variant)
  size = config.data.image_size
  model = vqgan_from_config(config.model)
  params = random_params(model, seed, jnp.zeros((1, size, size, 3)))
  return save_run(workdir, config, dict(generator=params))


def random_swap_run(workdir, vqgan_workdir: str, token_dim: int = 16, seed: int = 1) -> str:
  from configs import swap as swap_config
  from swaptalk_jax.models.swap import swap_model_from_config
  config = swap_config.get_config("tiny")
  config.model.token_dim = token_dim
  config.vqgan.workdir = vqgan_workdir
  config.vqgan.variant = "micro"
  model = swap_model_from_config(config.model)
  tokens = jnp.zeros((1, 16, 16, token_dim))
  params = random_params(model, seed, tokens, tokens)
  return save_run(workdir, config, dict(swap=params))


class MarkerChain(stages.Chain):
  """E then D = the identity on crops of `size` px, plus a green 7x7 mark on the crop template's
  nose tip: where the mark lands in the output frame is where the crop was pasted."""

  def __init__(self, size: int = 128):
    super().__init__(vqgan=None)
    self._size = size

  @property
  def image_size(self) -> int:
    return self._size

  def encode_images(self, crops):
    return np.array(crops)

  def decode_tokens(self, tokens):
    out = np.array(tokens, np.uint8)
    x, y = np.round(align.template(align.AlignConfig(size=self._size))[2]).astype(int)
    out[:, y - 3:y + 4, x - 3:x + 4] = MARK
    return out


def mark_centre(frame: np.ndarray):
  """(x, y) centroid of the marker-green pixels of a decoded frame, or None."""
  f = frame.astype(np.int32)
  green = (f[..., 1] > 170) & (f[..., 0] < 90) & (f[..., 2] < 90)
  if not green.any():
    return None
  ys, xs = np.nonzero(green)
  return np.array([xs.mean(), ys.mean()])


def memory_probe(vqgan_workdir: str, targets, out_dir: str) -> list:
  """Runs the VQGAN-only path on each target in turn in THIS process; after each, the peak of
  traced (numpy + Python) memory during that run and the process's peak RSS so far (kB)."""
  import resource
  import tracemalloc
  from swaptalk_jax.inference import pipeline
  chain = stages.Chain(stages.load_vqgan(vqgan_workdir))
  results = []
  for i, target in enumerate(targets):
    tracemalloc.start()
    pipeline.generate(chain, None, target, f"{out_dir}/probe_{i}.mp4", None,
                      pipeline.Options(preset="ultrafast", progress=False))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results.append(dict(traced_peak=peak, rss_peak_kb=resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss))
  return results


def random_lipsync_run(workdir, vqgan_workdir: str, token_dim: int = 16, seed: int = 2) -> str:
  from configs import lipsync as lipsync_config
  from swaptalk_jax.models.lipsync import lipsync_from_config
  config = lipsync_config.get_config("tiny")
  config.vqgan.workdir = vqgan_workdir
  model = lipsync_from_config(config.model, token_dim)
  half = jnp.zeros((1, 8, 16, token_dim))
  params = random_params(model, seed, half, half, half, jnp.zeros((1, 16, 80)))
  return save_run(workdir, config, dict(lipsync=params))
