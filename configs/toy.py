"""The core's toy stage (conv+attention autoencoder + critic). Variants: 'default', 'bench'."""
from configs.common import base_config, optimizer_config
from swaptalk_jax.errors import UserError


def get_config(arg: str = "default"):
  c = base_config()
  c.stage = "toy"
  c.model.channels = 16
  c.model.critic_channels = 8
  c.model.critic_start = 3
  c.data.image_size = 16
  c.data.batch_size = 8
  c.data.num_examples = 256
  c.data.num_eval_examples = 16
  c.data.shuffle_seed = 0
  c.optim.model = optimizer_config(learning_rate=3e-3, warmup_steps=2)
  c.optim.critic = optimizer_config(learning_rate=1e-3, optimizer="adam")
  c.train.num_steps = 20
  c.train.log_every = 5
  c.train.eval_every = 10
  c.train.eval_batches = 2
  c.train.checkpoint_every = 5
  c.train.ema_decay = 0.9
  if arg == "bench":
    c.model.channels = 64
    c.model.critic_channels = 32
    c.data.image_size = 64
    c.data.batch_size = 8
  elif arg != "default":
    raise UserError(f"unknown variant {arg!r} of configs/toy.py; use 'default' or 'bench'")
  return c
