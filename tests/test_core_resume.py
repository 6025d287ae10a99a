"""Preempted and killed runs resume exactly: kill -9 at a random step or SIGTERM, restart, and the
finished run's parameters equal an uninterrupted run's. Runs the real `swaptalk train` CLI."""
import os
import random
import signal
import time

import pytest

from core_helpers import assert_trees_close, cli_train, restore_params, toy_config

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

NUM_STEPS = 12
ARGS = ["--config=configs/toy.py", f"--config.train.num_steps={NUM_STEPS}",
        "--config.train.checkpoint_every=1", "--config.train.eval_every=0",
        "--config.train.log_every=4"]


def _config():
  return toy_config(**{"train.num_steps": NUM_STEPS})


def _finished_steps(workdir):
  ckpt = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt):
    return []
  return sorted(int(d) for d in os.listdir(ckpt) if d.isdigit())


def _run_to_end(workdir):
  proc = cli_train(ARGS + [f"--workdir={workdir}"])
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]


def _start_and_interrupt(workdir, sig, min_step):
  proc = cli_train(ARGS + [f"--workdir={workdir}"])
  deadline = time.time() + 600
  while not _finished_steps(workdir) or _finished_steps(workdir)[-1] < min_step:
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() < deadline
    time.sleep(0.05)
  os.kill(proc.pid, sig)
  _, err = proc.communicate(timeout=300)
  return proc.returncode, err


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  _run_to_end(workdir)
  return restore_params(_config(), workdir)


def test_kill9_at_random_step_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
  workdir = str(tmp_path)
  kill_after = random.Random(os.getpid()).randint(2, NUM_STEPS - 4)
  returncode, _ = _start_and_interrupt(workdir, signal.SIGKILL, kill_after)
  assert returncode == -signal.SIGKILL
  assert _finished_steps(workdir)[-1] < NUM_STEPS
  _run_to_end(workdir)
  resumed = restore_params(_config(), workdir)
  assert int(resumed.step) == NUM_STEPS
  assert_trees_close(resumed.params, uninterrupted.params, rtol=0, atol=0)
  assert_trees_close(resumed.opt_state, uninterrupted.opt_state, rtol=0, atol=0)


def test_sigterm_saves_and_exits_cleanly_then_resumes(uninterrupted, tmp_path):
  workdir = str(tmp_path)
  returncode, err = _start_and_interrupt(workdir, signal.SIGTERM, 3)
  assert returncode == 0, err[-3000:]
  stopped_at = _finished_steps(workdir)[-1]
  assert 3 <= stopped_at < NUM_STEPS
  assert "SIGTERM" in err
  _run_to_end(workdir)
  resumed = restore_params(_config(), workdir)
  assert_trees_close(resumed.params, uninterrupted.params, rtol=0, atol=0)


def test_unfinished_checkpoint_directory_is_never_restored(uninterrupted, tmp_path):
  """A save cut off mid-write leaves only a temporary directory, which restore ignores."""
  import shutil
  workdir = str(tmp_path)
  _run_to_end(workdir)
  ckpt = os.path.join(workdir, "checkpoints")
  last = _finished_steps(workdir)[-1]
  partial = os.path.join(ckpt, f"{last + 5}.orbax-checkpoint-tmp-1234")
  shutil.copytree(os.path.join(ckpt, str(last)), partial)
  shutil.rmtree(os.path.join(partial, "state"))           # as if killed mid-write
  restored = restore_params(_config(), workdir)
  assert int(restored.step) == last
