"""benchmarks/fit.py's batch search and table, without compiling anything.

The search is driven by a fake compile whose peak grows with the batch, so each test knows the
answer: it must climb while the step fits and stop at the first batch that does not, walk down
from a start that does not fit but no lower than --min_per_chip, and treat a crashed compile
(libtpu aborting the child process) as a finding that ends the search and shows in the table.
One test runs a real child (`fit.py --compile_one`) that fails, to check that its error line comes
back instead of the search dying with it.
"""
import types

from benchmarks import fit
from swaptalk_jax.aot import compile as aot_compile

GIB = 2 ** 30
TARGET = types.SimpleNamespace(name="v5e-8", chips=8)


def _report(per_chip, gib_per_sample=3.0, hbm_gib=16):
  """A CompileReport of a step whose peak is 1 GiB + gib_per_sample per sample per chip."""
  return aot_compile.CompileReport(
      target="v5e-8", stage="s", variant="v", mesh={"data": 8, "fsdp": 1},
      global_batch=per_chip * 8, per_device_batch=per_chip, num_devices=8, device_kind="TPU v5e",
      hbm_bytes=hbm_gib * GIB, argument_bytes=GIB, output_bytes=0, alias_bytes=0,
      temp_bytes=int(gib_per_sample * per_chip * GIB), code_bytes=0,
      param_bytes={"params": 1, "opt_state": 2, "ema_params": 1, "frozen": 0},
      param_counts={"g": 1}, flops_per_device=1e12 * per_chip)


def _fake(crash_at=None):
  calls = []

  def compile_fn(per_chip):
    calls.append(per_chip)
    if per_chip == crash_at:
      return None, 5.0, "rc -6: F1203 fusion_util.cc:5194] Check failed: window.pad_low[i] == 0"
    return _report(per_chip), 7.0, None
  return compile_fn, calls


def _search(compile_fn, start=1, max_per_chip=64, min_per_chip=1):
  return fit.search("s", "v", TARGET, "/nowhere", {"data": -1}, max_per_chip, lambda s: None,
                    start, "none", min_per_chip, compile_fn)


def test_climbs_until_it_does_not_fit():
  compile_fn, calls = _fake()
  row = _search(compile_fn)        # peaks 4, 7, 13, 25 GiB: 4 per chip is the answer on 16 GiB
  assert calls == [1, 2, 4, 8]
  assert row["max_per_chip"] == 4 and not row["capped"]
  assert row["peak_gib"] == 13.0


def test_search_cap_and_min_per_chip():
  compile_fn, calls = _fake()
  row = _search(compile_fn, start=2, max_per_chip=2)
  assert calls == [2] and row["max_per_chip"] == 2 and row["capped"]
  compile_fn, calls = _fake()
  row = _search(compile_fn, start=16, min_per_chip=8)   # 16 and 8 do not fit; 4 is not compiled
  assert calls == [16, 8] and row["max_per_chip"] == 0
  assert "none (< 8)" in fit.markdown({"s:v@v5e-8": dict(row, chips=8)})


def test_a_crash_is_recorded_and_ends_the_search():
  compile_fn, calls = _fake(crash_at=4)
  row = _search(compile_fn)
  assert calls == [1, 2, 4]
  assert row["max_per_chip"] == 2 and not row["capped"]   # 4 was tried: it crashed
  assert row["tried"][-1][0] == 4 and "Check failed" in row["tried"][-1][4]
  table = fit.markdown({"s:v@v5e-8#remat=full": dict(row, chips=8)})
  assert "| full | 2 | 7.00 of 16 |" in table
  assert "4: compile crashed: rc -6: F1203 fusion_util.cc:5194] Check failed" in table
  compile_fn, _ = _fake(crash_at=1)
  row = _search(compile_fn)
  assert "none known (compile crashed at 1)" in fit.markdown({"s:v@v5e-8": dict(row, chips=8)})


def test_crash_line_picks_the_fatal_line():
  stderr = ("WARNING: could not determine TPU accelerator type\n"
            "E1203 12:49:54.785 coredump_hook.cc:309] RAW: Remote crash data gathering\n"
            "F1203 12:49:54.148 fusion_util.cc:5194] Check failed: window.pad_low[i] == 0\n"
            "E1203 12:49:56.517 process_state.cc:794] RAW: Raising signal 6\n")
  assert fit.crash_line(stderr).startswith("F1203 12:49:54.148 fusion_util.cc:5194] Check failed")
  assert fit.crash_line("Traceback ...\n  File x\nValueError: bad\n") == "ValueError: bad"
  assert fit.crash_line("") == "no output"


def test_a_failing_child_comes_back_as_its_error_line():
  report, seconds, crash = fit.fit_isolated("no_such_stage", "v", "cpu:2", "/nowhere", "none", 1,
                                            {"data": -1, "fsdp": 1})
  assert report is None and seconds > 0
  assert crash.startswith("rc 1: ModuleNotFoundError") and "configs.no_such_stage" in crash
