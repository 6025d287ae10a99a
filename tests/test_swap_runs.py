"""benchmarks/swap_runs.py's tables from hand-made per-pair values (no training, no dlib)."""
import numpy as np
import pytest

from benchmarks import swap_runs
from swaptalk_jax.errors import UserError

CLIPS = np.repeat([f"clip{i}" for i in range(6)], 4)   # 6 target clips x 4 pairs


def _values(l1, seed):
  rng = np.random.default_rng(seed)
  noise = 0.001 * rng.standard_normal(len(CLIPS))
  return {"l1": l1 + noise, "l1_lower": l1 + noise, "ssim": 0.6 + noise}


def _result(swap_l1, step, seed=0):
  values = {"swap": _values(swap_l1, seed), "no_swap": _values(0.16, 1),
            "paste_source": _values(0.03, 2), "vqgan_source": _values(0.054, 3),
            "vqgan_gt": _values(0.041, 4)}
  return {"values": values, "target_clip": CLIPS, "chance": {"id_top1": 1 / 12}, "step": step}


def _row(text, label):
  return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def _interval(text, label):
  """(value, low, high) of the first column of a paired row."""
  cell = _row(text, label).split(" | ")[1]
  return tuple(float(x) for x in cell.replace("[", "").replace("]", "").replace(",", "").split())


def test_paired_rows_show_the_swap_against_the_source_copy_and_the_first_run():
  short, long = _result(0.055, 300, seed=5), _result(0.050, 3000, seed=6)
  text = swap_runs.report(["short", "long"], [short, long], resamples=200)
  assert "6 held-out target clips, 24 pairs; ID top-1 chance 8.3 %" in text
  long_l1 = np.mean(long["values"]["swap"]["l1"])
  assert _row(text, "long (step 3000)").split(" | ")[1] == f"{long_l1:.4f}"
  # the long run is 0.004 below the source copy on every clip: the interval excludes 0
  value, low, high = _interval(text, "long - D(S_VQ)")
  assert value == pytest.approx(-0.004, abs=0.001) and low < value < high < 0
  assert _interval(text, "short - D(S_VQ)")[0] == pytest.approx(0.001, abs=0.001)
  assert _interval(text, "long - short")[0] == pytest.approx(-0.005, abs=0.001)
  assert _row(text, "long - short").endswith("| - | - |")        # no dlib columns given


def test_runs_scored_on_different_pairs_are_refused():
  other = _result(0.05, 10)
  other["target_clip"] = np.repeat([f"x{i}" for i in range(6)], 4)
  with pytest.raises(UserError, match="scored on other pairs"):
    swap_runs.report(["a", "b"], [_result(0.05, 10), other])


def test_a_run_of_another_stage_is_refused(tmp_path, monkeypatch):
  asked = []
  monkeypatch.setattr(swap_runs.checkpoint, "load_params",
                      lambda workdir, **k: asked.append((workdir, k["step"])) or
                      ({}, 5, {"stage": "lipsync"}))
  with pytest.raises(UserError, match="is a 'lipsync' run, not a swap run"):
    swap_runs.score_run(f"{tmp_path}@1000", str(tmp_path), 4)
  assert asked == [(str(tmp_path), 1000)]


def test_run_at_step():
  assert swap_runs.run_and_step("/runs/swap@1500") == ("/runs/swap", 1500)
  assert swap_runs.run_and_step("/runs/swap") == ("/runs/swap", None)
  assert swap_runs.run_and_step("/runs/a@b/swap") == ("/runs/a@b/swap", None)
