"""Launchers without the hardware: `launch/slurm.sbatch` under a faked SLURM environment (a fake
`srun` starts the tasks as local CPU processes) trains to the same params as one process; the TPU
pod script hands every worker the same command (a fake `gcloud` records it); usage errors exit 2."""
import os
import random
import shlex
import subprocess
import sys

import pytest

from core_helpers import LAUNCH_TOY_ARGS, REPO, assert_trees_close, restore_params, toy_config

ARGS = LAUNCH_TOY_ARGS

# srun as far as the launcher needs it: skip srun's own flags, start SLURM_NTASKS copies of the
# command with SLURM_PROCID / SLURM_LOCALID set, fail if any fails.
FAKE_SRUN = """#!/usr/bin/env bash
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i "$@" > "$FAKE_SRUN_LOGS/task_$i.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
"""

FAKE_GCLOUD = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$FAKE_GCLOUD_ARGS"
"""


def _fake_bin(tmp_path, name, text):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  (bin_dir / name).write_text(text)
  (bin_dir / name).chmod(0o755)
  return str(bin_dir)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_slurm_two_tasks_match_one_process(one_process_toy_run, tmp_path):
  one = one_process_toy_run
  two = str(tmp_path / "slurm")
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2",
             PATH=_fake_bin(tmp_path, "srun", FAKE_SRUN) + os.pathsep + os.environ["PATH"],
             FAKE_SRUN_LOGS=str(tmp_path), SWAPTALK=f"{sys.executable} -m swaptalk_jax.cli",
             SLURM_JOB_ID=str(random.randrange(1, 4000)), SLURM_NTASKS="2",
             SLURM_STEP_NODELIST="localhost", SLURM_JOB_NODELIST="localhost",
             SLURM_STEP_NUM_NODES="1")
  result = subprocess.run(["bash", "launch/slurm.sbatch", *ARGS, f"--workdir={two}"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
  logs = [(tmp_path / f"task_{i}.log").read_text() for i in range(2)]
  assert result.returncode == 0, result.stderr + "".join(log[-2000:] for log in logs)
  assert "process 1 of 2, 2 local / 4 global devices" in logs[1]

  config = toy_config(**{"train.num_steps": 4})
  a, b = restore_params(config, one), restore_params(config, two)
  assert int(a.step) == int(b.step) == 4
  assert_trees_close(b.params, a.params, rtol=1e-4, atol=1e-5)


def test_slurm_dry_run_and_usage(tmp_path):
  env = dict(os.environ, SLURM_JOB_ID="7", SWAPTALK_DRY_RUN="1", SRUN_ARGS="--mpi=none")
  out = subprocess.run(["bash", "launch/slurm.sbatch", "--config=configs/vqgan.py:f16",
                        "--workdir=/shared/run a"], cwd=REPO, env=env, capture_output=True,
                       text=True, check=True).stdout
  assert shlex.split(out) == ["srun", "--kill-on-bad-exit=1", "--mpi=none", "swaptalk", "train",
                              "--config=configs/vqgan.py:f16", "--workdir=/shared/run a"]
  bad = subprocess.run(["bash", "launch/slurm.sbatch"], cwd=REPO, capture_output=True, text=True)
  assert bad.returncode == 2 and "usage:" in bad.stderr
  env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
  outside = subprocess.run(["bash", "launch/slurm.sbatch", "--config=c", "--workdir=w"], cwd=REPO,
                           env=env, capture_output=True, text=True)
  assert outside.returncode != 0 and "not inside a SLURM allocation" in outside.stderr


def test_tpu_pod_runs_one_command_on_every_worker(tmp_path):
  train = ["--config=configs/vqgan.py:f16", "--workdir=gs://bucket/run 1",
           "--config.data.batch_size=256"]
  args_file = tmp_path / "gcloud_args"
  env = dict(os.environ, PATH=_fake_bin(tmp_path, "gcloud", FAKE_GCLOUD) + os.pathsep
             + os.environ["PATH"], FAKE_GCLOUD_ARGS=str(args_file))
  dry = subprocess.run(["bash", "launch/tpu_pod.sh", "my-v5e", "us-west4-a", "--project=p", "--",
                        *train], cwd=REPO, env=dict(env, SWAPTALK_DRY_RUN="1"),
                       capture_output=True, text=True, check=True).stdout
  assert not args_file.exists()   # a dry run runs nothing
  subprocess.run(["bash", "launch/tpu_pod.sh", "my-v5e", "us-west4-a", "--project=p", "--",
                  *train], cwd=REPO, env=env, check=True)
  argv = args_file.read_text().splitlines()
  assert argv[:6] == ["compute", "tpus", "tpu-vm", "ssh", "my-v5e", "--zone=us-west4-a"]
  assert "--project=p" in argv and "--worker=all" in argv
  command = next(a for a in argv if a.startswith("--command=")).split("=", 1)[1]
  assert f"every worker of my-v5e runs: {command}" in dry
  words = shlex.split(command)
  assert words[:3] == ["cd", "~/swaptalk_jax", "&&"]
  assert words[3:7] == ["SWAPTALK_AUTO_DISTRIBUTED=1", "python3", "-m", "swaptalk_jax.cli"]
  assert words[7:] == ["train", *train]
  bad = subprocess.run(["bash", "launch/tpu_pod.sh", "my-v5e", "zone", "--config=x"], cwd=REPO,
                       capture_output=True, text=True)
  assert bad.returncode == 2 and "usage:" in bad.stderr
