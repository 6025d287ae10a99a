"""A real 2-process run (jax.distributed over 127.0.0.1, gloo, 2 fake devices each) trains exactly
like one process with 4 devices on the same global batches."""
import os
import subprocess
import sys

import pytest

from core_helpers import REPO, assert_trees_close, cli_train, restore_params, toy_config

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

ARGS = ["--config=configs/toy.py", "--config.train.num_steps=4", "--config.train.eval_every=0",
        "--config.train.checkpoint_every=2", "--config.train.log_every=2",
        # As in test_core_sharding: keep Adam from amplifying round-off in near-zero gradients.
        "--config.optim.model.eps=1e-3", "--config.optim.critic.eps=1e-3"]


def test_two_processes_match_one(tmp_path):
  one = str(tmp_path / "one_process")
  proc = cli_train(ARGS + [f"--workdir={one}"], devices=4)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]

  two = str(tmp_path / "two_processes")
  env = dict(os.environ, PYTHONPATH=REPO, SWAPTALK_LOGDIR=str(tmp_path))
  result = subprocess.run(
      ["bash", "launch/local_multiprocess.sh", "2", "2", "--", sys.executable, "-m",
       "swaptalk_jax.cli", "train", *ARGS, f"--workdir={two}"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  logs = "".join(open(tmp_path / f"process_{i}.log").read()[-2000:] for i in range(2))
  assert result.returncode == 0, result.stderr + logs
  assert "process 1 of 2" in open(tmp_path / "process_1.log").read()

  config = toy_config(**{"train.num_steps": 4})
  a, b = restore_params(config, one), restore_params(config, two)
  assert int(a.step) == int(b.step) == 4
  # Same per-device computation; only the all-reduce (in-process vs gloo) may sum in another order.
  assert_trees_close(b.params, a.params, rtol=1e-4, atol=1e-5)
