"""Test setup: 8 fake CPU devices (must precede the first jax import), a persistent compilation
cache for this session (tests and their subprocesses rebuild the same trainers: identical programs
compile once), and parsed absl flags (grain)."""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache_dir = tempfile.mkdtemp(prefix="swaptalk_jax_test_cache_")
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir   # inherited by subprocess runs

from absl import flags  # noqa: E402

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
  return REPO_ROOT

# Session fixtures shared by the stage tests (a synthetic set, a trained 16x16-grid VQGAN and a
# lip expert over it).
from stage_fixtures import stage_data, tiny_vqgan  # noqa: E402,F401
from lip_expert_fixtures import lip_expert  # noqa: E402,F401


@pytest.fixture(scope="session")
def one_process_toy_run(tmp_path_factory) -> str:
  """Workdir of `swaptalk train LAUNCH_TOY_ARGS` in one process with 4 devices: the reference
  both launcher tests (test_core_multiprocess.py, test_launch.py) compare their 2x2 runs with."""
  from core_helpers import LAUNCH_TOY_ARGS, cli_train
  workdir = str(tmp_path_factory.mktemp("toy_one_process") / "run")
  proc = cli_train(LAUNCH_TOY_ARGS + [f"--workdir={workdir}"], devices=4)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  return workdir


# Parallel runs (`pytest -n 2`, tools/test.sh): every test goes to an xdist group, so that each
# expensive shared fixture is made once. The tests that use the trained stage fixtures (the micro
# VQGAN and the lip expert over it) form one group, run first: it is the longest chain of work;
# the modules of the two launcher tests that share the one-process reference run form another;
# every other test goes with its module (its module-scoped fixtures are made once; the rest of a
# stage test's module may run on the other worker). Without xdist nothing changes.
STAGE_FIXTURES = frozenset({"tiny_vqgan", "lip_expert"})


def _xdist_group(item, toy_modules) -> str:
  module = item.nodeid.split("::")[0]
  if STAGE_FIXTURES & set(getattr(item, "fixturenames", ())):
    return "stage_chain"
  if module in toy_modules:
    return "one_process_toy_run"
  return module


def _loadgroup(config) -> bool:
  # In xdist's workers (where collection happens) `dist` reads "no" and `loadgroup` says it.
  return config.pluginmanager.hasplugin("xdist") and (
      config.getoption("dist", "no") == "loadgroup" or config.getoption("loadgroup", False))


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
  """Marks every test with its xdist group before xdist's own hook (in the workers) reads them."""
  if not _loadgroup(config):
    return (yield)
  toy_modules = {i.nodeid.split("::")[0] for i in items
                 if "one_process_toy_run" in getattr(i, "fixturenames", ())}
  groups = {}
  for item in items:
    groups[item.nodeid] = _xdist_group(item, toy_modules)
    item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
  items.sort(key=lambda i: groups[i.nodeid] != "stage_chain")   # stable: file order otherwise
  return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
  """xdist must have put each test in its group (it appends '@group' to the node id; with pytest
  9.2 it silently did not, and every shared fixture was made once per test instead of once)."""
  lost = [i for i in ids if "@" not in i]
  if _loadgroup(node.config) and lost:
    raise pytest.UsageError(f"pytest-xdist did not group {len(lost)} tests (e.g. {lost[0]}): "
                            "check the pytest / pytest-xdist pins in requirements-test.txt")
