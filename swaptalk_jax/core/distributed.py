"""Multi-process start-up: `jax.distributed.initialize` from flags or the environment.

On TPU pods and SLURM clusters JAX finds the coordinator itself (call with no arguments). On one
machine with several CPU processes (tests, `launch/local_multiprocess.sh`) the coordinator address,
process count and id come from SWAPTALK_COORDINATOR / SWAPTALK_NUM_PROCESSES / SWAPTALK_PROCESS_ID,
and CPU collectives go over gloo.
"""
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def maybe_initialize() -> None:
  """Initialises jax.distributed when the environment asks for several processes."""
  coordinator = os.environ.get("SWAPTALK_COORDINATOR")
  if coordinator:
    num = int(os.environ["SWAPTALK_NUM_PROCESSES"])
    pid = int(os.environ["SWAPTALK_PROCESS_ID"])
    # Only affects the CPU backend; must be set before the backend starts.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num, process_id=pid)
  elif os.environ.get("SWAPTALK_AUTO_DISTRIBUTED") == "1":   # TPU pods, SLURM
    jax.distributed.initialize()
  else:
    return
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  if jax.default_backend() == "cpu" and jax.process_count() > 1:
    _open_gloo_context()


def _open_gloo_context() -> None:
  """One reduction over every device while the processes are still in step.

  Gloo builds the context of a device group at its first collective and gives the peers only 30 s
  to meet; a process that compiles the train step 30 s later than the others (a loaded machine)
  then fails with 'Gloo context initialization failed'. Opened here, right after initialize's own
  barrier, the all-device context is reused by the data-parallel step, which then waits as long
  as its peers need."""
  mesh = Mesh(np.array(jax.devices()), ("all",))
  local = np.ones((jax.local_device_count(),), np.float32)
  x = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("all")), local)
  total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, PartitionSpec()))(x)
  assert float(total) == jax.device_count(), float(total)
