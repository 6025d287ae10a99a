"""The `swaptalk` command line as users type it: `--help`/`-h` on every command and subcommand
(stdout, exit 0, its flags and an example), `swaptalk --help` listing only working commands, a bad
config value as one line, and a bug inside a task with its full traceback."""
import os
import subprocess
import sys

import pytest

from core_helpers import REPO, assert_one_error_line

# (arguments, flags the help page must name)
HELP_CASES = [
    (["train"], ["--config", "--workdir"]),
    (["encode"], ["--checkpoint", "--data", "--out", "--splits"]),
    (["convert"], ["--variant", "--heads", "--overwrite"]),
    (["convert", "arcface"], ["--variant", "--overwrite"]),
    (["prepare"], ["synthetic", "verify", "hdtf"]),
    (["prepare", "synthetic"], ["--out", "--identities", "--test_identities", "--workers"]),
    (["prepare", "verify"], ["--dataset", "decode"]),
    (["prepare", "hdtf"], ["--in", "--out", "--workers", "--crop_size"]),
    (["prepare", "voxceleb2"], ["--in", "--out"]),
    (["prepare", "folder"], ["--in", "--out", "--identity_regex", "--manifest"]),
]
OPTIONAL = {"compile": ["--config", "--target"], "export": ["--run", "--out"],
            "generate": ["--source", "--target", "--out"],
            "eval": ["--run", "--bundle", "--data", "--setting", "--out", "--max_clips"]}


def _env():
  return dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")


def _start(args):
  return subprocess.Popen([sys.executable, "-m", "swaptalk_jax.cli", *args], cwd=REPO, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cases():
  from swaptalk_jax import cli  # pylint: disable=import-outside-toplevel
  cases = list(HELP_CASES)
  cases += [([name], names) for name, names in OPTIONAL.items() if cli.available(name)]
  return cases


def test_help_on_every_command_and_subcommand():
  """All at once (each is a fresh process): --help, then -h, exit 0 with the flags on stdout."""
  cases = [(args + [flag], names) for args, names in _cases() for flag in ("--help", "-h")]
  procs = [(args, names, _start(args)) for args, names in cases]
  problems = []
  for args, names, proc in procs:
    out, err = proc.communicate(timeout=300)
    missing = [n for n in names if n not in out]
    if proc.returncode != 0 or missing or "example" not in out.lower():
      problems.append(f"swaptalk {' '.join(args)}: exit {proc.returncode}, missing {missing} "
                      f"in stdout {out[:300]!r}, stderr {err[-300:]!r}")
  assert not problems, "\n".join(problems)


def test_top_level_help_lists_only_working_commands():
  from swaptalk_jax import cli  # pylint: disable=import-outside-toplevel
  proc = _start(["--help"])
  out, _ = proc.communicate(timeout=60)
  assert proc.returncode == 0
  listed, coming = out.split("coming")[0] if "coming" in out else out, out.split("coming")[-1]
  for name in cli.COMMANDS:
    if cli.available(name):
      assert f"  {name} " in listed, name
    else:
      assert f"  {name} " not in listed and name in coming, name
  proc = _start(["no_such_command"])
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 2 and "unknown command 'no_such_command'" in err


def test_bad_config_value_is_one_line(tmp_path):
  assert_one_error_line(_start(["train", "--config=configs/toy.py",
                                 "--config.train.grad_accum_steps=0", f"--workdir={tmp_path}"]),
                        "grad_accum_steps must be >= 1")


def test_internal_error_in_a_task_keeps_its_traceback(tmp_path):
  """A ValueError raised inside the Task (a bug, not a user mistake) is not turned into one line."""
  code = ("import sys\n"
          "from swaptalk_jax.trainers import toy\n"
          "def broken(self, rng, batch):\n"
          "  raise ValueError('deliberate internal error')\n"
          "toy.ToyTask.init_params = broken\n"
          "from swaptalk_jax.cli import main\n"
          f"main(['swaptalk', 'train', '--config=configs/toy.py', '--workdir={tmp_path}'])\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 1
  assert "Traceback" in proc.stderr and "deliberate internal error" in proc.stderr
  assert "in broken" in proc.stderr                      # the frame where it was raised
  assert "swaptalk train: error:" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["encode", "--data=x", "--out=y"], "--checkpoint is required"),
    (["train", "--workdir=x"], "--config is required"),
])
def test_missing_required_flag_is_one_line(args, message):
  assert_one_error_line(_start(args), message, command=args[0])
