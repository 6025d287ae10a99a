"""The toy stage: a conv+attention autoencoder ('model', with EMA) and a critic ('critic', started
late) on procedural images. It exercises every feature of the core (several groups, a carry between
group losses, a gated group, EMA, eval and image summaries) in seconds on a CPU."""
import dataclasses

import grain
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.core.task import TaskHooks
from swaptalk_jax.errors import UserError
from swaptalk_jax.models.toy import ToyAutoencoder, ToyCritic


@dataclasses.dataclass(frozen=True)
class ToyTask(TaskHooks):
  """The toy Task; its modules are built once from the config (`make_task`), like every stage's."""
  model: ToyAutoencoder
  critic: ToyCritic
  critic_start: int
  groups: tuple = ("model", "critic")
  ema_groups: tuple = ("model",)

  def init_params(self, rng, batch):
    r1, r2 = jax.random.split(rng)
    return {"model": self.model.init(r1, batch["image"])["params"],
            "critic": self.critic.init(r2, batch["image"])["params"]}

  def loss(self, group, params, batch, rng, step, carry):
    x = batch["image"]
    if group == "model":
      recon = self.model.apply({"params": params["model"]}, x)
      per_example = jnp.mean((recon - x) ** 2, axis=(1, 2, 3))
      return per_example.mean(), ({"mse": per_example.mean()},
                                  jax.lax.stop_gradient((recon, per_example)))
    recon, per_example = carry
    pred = self.critic.apply({"params": params["critic"]}, recon)
    return jnp.mean((pred - per_example) ** 2), ({}, None)

  def is_active(self, group, step):
    if group == "critic":
      return step >= self.critic_start
    return jnp.array(True)

  def eval_metrics(self, params, batch, rng):
    recon = self.model.apply({"params": params["model"]}, batch["image"])
    mse = jnp.mean((recon - batch["image"]) ** 2, axis=(1, 2, 3))
    return {"mse": mse.mean(), "psnr": jnp.mean(10 * jnp.log10(4.0 / mse))}

  def summaries(self, params, batch):
    x = batch["image"][:4]
    recon = self.model.apply({"params": params["model"]}, x)
    return {"input_recon": (jnp.concatenate([x, recon], axis=2) + 1) / 2}


def make_task(config) -> ToyTask:
  dtype = jnp.dtype(config.train.compute_dtype)
  return ToyTask(model=ToyAutoencoder(config.model.channels, dtype),
                 critic=ToyCritic(config.model.critic_channels, dtype),
                 critic_start=int(config.model.critic_start))


class _RenderImage:
  """Index -> a smooth procedural image in [-1, 1] (deterministic per index)."""

  def __init__(self, size: int):
    self.size = size

  def __call__(self, index: int) -> np.ndarray:
    rng = np.random.default_rng(int(index))
    yy, xx = np.mgrid[0:self.size, 0:self.size] / self.size
    img = np.zeros((self.size, self.size, 3), np.float32)
    for _ in range(3):
      cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
      blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
      img += blob[..., None] * rng.uniform(-1, 1, 3)
    return np.tanh(img).astype(np.float32)


class _LocalRows:
  """Global batch of indices -> this process's rows, rendered (global row order across processes)."""

  def __init__(self, size: int, process_index: int, process_count: int):
    self.render = _RenderImage(size)
    self.process_index, self.process_count = process_index, process_count

  def __call__(self, indices: np.ndarray) -> dict:
    local = np.array_split(indices, self.process_count)[self.process_index]
    return {"image": np.stack([self.render(i) for i in local])}


def _iterator(config, process_index, process_count, seed, num_examples):
  d = config.data
  if d.batch_size % process_count:
    raise UserError(f"config.data.batch_size={d.batch_size} is not divisible by {process_count} processes")
  ds = grain.MapDataset.range(num_examples).shuffle(seed=seed).repeat(None)
  ds = ds.batch(d.batch_size, drop_remainder=True)
  ds = ds.map(_LocalRows(d.image_size, process_index, process_count))
  return ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2)).__iter__()


def make_train_iterator(config, process_index, process_count):
  return _iterator(config, process_index, process_count, config.data.shuffle_seed,
                   config.data.num_examples)


def make_eval_iterator(config, process_index, process_count):
  return _iterator(config, process_index, process_count, config.data.shuffle_seed + 1,
                   config.data.num_eval_examples)
