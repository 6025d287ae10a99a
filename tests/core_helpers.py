"""Shared helpers of the core tests: toy configs, running steps in-process, reading checkpoints."""
import os
import subprocess
import sys

import jax
import numpy as np

from configs import toy
from swaptalk_jax.core.trainer import global_batch
from swaptalk_jax.trainers.registry import build_trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def apply_overrides(config, overrides: dict):
  """Sets dotted keys ('optim.model.learning_rate': 1e-3) of an ml_collections config in place."""
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def toy_config(**overrides):
  c = toy.get_config()
  c.train.eval_every = 0
  c.train.checkpoint_every = 1000
  c.fsdp_min_size = 64           # so the tiny toy kernels do get sharded under fsdp
  return apply_overrides(c, overrides)


def run_steps(config, workdir, devices, num_steps):
  """Init (or restore) and run `num_steps` steps in-process; returns (host state, losses)."""
  trainer = build_trainer(config, workdir, devices=devices)
  losses = []
  with trainer.scope():
    state = trainer.restore_or_init()
    for _ in range(num_steps):
      state, metrics = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                           trainer.batch_sharding))
      losses.append(float(metrics["model/loss"]))
  return trainer, jax.device_get(state), losses


def restore_params(config, workdir, devices=None):
  """The latest checkpoint of `workdir`, restored onto `devices` (default: 1 device), on host."""
  from swaptalk_jax.core import checkpoint
  trainer = build_trainer(config, workdir, devices=devices or jax.devices()[:1])
  step = trainer.manager.latest_step()
  assert step is not None, f"no checkpoint in {workdir}"
  with jax.set_mesh(trainer.mesh):
    state, _ = checkpoint.restore(trainer.manager, step, trainer.abstract_state, None)
  return jax.device_get(state)


def assert_trees_close(a, b, rtol, atol):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


def cli_train(args, env_extra=None, devices=1, **kwargs):
  """Runs `swaptalk train ARGS` in a fresh process with `devices` fake CPU devices."""
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  env.update(env_extra or {})
  return subprocess.Popen([sys.executable, "-m", "swaptalk_jax.cli", "train", *args], cwd=REPO,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# The toy run the multi-process tests compare with one process (test_core_multiprocess.py,
# test_launch.py). Adam's eps as in test_core_sharding: keep Adam from amplifying round-off in
# near-zero gradients.
LAUNCH_TOY_ARGS = ["--config=configs/toy.py", "--config.train.num_steps=4",
                   "--config.train.eval_every=0", "--config.train.checkpoint_every=2",
                   "--config.train.log_every=2", "--config.optim.model.eps=1e-3",
                   "--config.optim.critic.eps=1e-3"]


def assert_one_error_line(proc, expected: str, command: str = "train") -> None:
  """A finished `swaptalk <command>` process failed with exit 1 and exactly one
  `swaptalk <command>: error:` line containing `expected`, and no traceback."""
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 1, err[-2000:]
  errors = [line for line in err.splitlines() if line.startswith(f"swaptalk {command}: error:")]
  assert len(errors) == 1 and expected in errors[0], err[-2000:]
  assert "Traceback" not in err
