"""Multi-process start-up: `jax.distributed.initialize` from flags or the environment.

On TPU pods and SLURM clusters JAX finds the coordinator itself (call with no arguments). On one
machine with several CPU processes (tests, `launch/local_multiprocess.sh`) the coordinator address,
process count and id come from SWAPTALK_COORDINATOR / SWAPTALK_NUM_PROCESSES / SWAPTALK_PROCESS_ID,
and CPU collectives go over gloo.
"""
import logging
import os

import jax


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
