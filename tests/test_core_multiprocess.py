"""A real 2-process run (jax.distributed over 127.0.0.1, gloo, 2 fake devices each) trains exactly
like one process with 4 devices on the same global batches."""
import os
import subprocess
import sys

import pytest

from core_helpers import LAUNCH_TOY_ARGS, REPO, assert_trees_close, restore_params, toy_config

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

ARGS = LAUNCH_TOY_ARGS


def test_two_processes_match_one(one_process_toy_run, tmp_path):
  one = one_process_toy_run
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


LATE_PEER = """
import time
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from swaptalk_jax.core import distributed
distributed.maybe_initialize()
mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("data", "fsdp"))
x = jax.make_array_from_process_local_data(NamedSharding(mesh, P(("data", "fsdp"))),
                                           np.ones(2, np.float32))
if jax.process_index() == 1:
  time.sleep(40)   # gloo gives a new device group's peers 30 s to meet
total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))(x)
print("total", float(total))
"""


def test_a_peer_40s_late_to_the_first_collective_is_waited_for(tmp_path):
  """A process that reaches the first train-step all-reduce long after the others (it compiled on
  a loaded machine) is waited for: core/distributed.py opens the all-device gloo context at start-up
  (without it this fails with 'Gloo context initialization failed')."""
  env = dict(os.environ, PYTHONPATH=REPO, SWAPTALK_LOGDIR=str(tmp_path))
  result = subprocess.run(["bash", "launch/local_multiprocess.sh", "2", "2", "--", sys.executable,
                           "-c", LATE_PEER], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=150)
  logs = [open(tmp_path / f"process_{i}.log").read() for i in range(2)]
  assert result.returncode == 0, result.stderr + "".join(log[-2000:] for log in logs)
  assert all("total 4.0" in log for log in logs)
