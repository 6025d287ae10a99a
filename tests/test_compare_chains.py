"""benchmarks/compare_chains.py: two chains' eval JSONs paired over the same clips (the long recipe
against the quickstart's, claim C1's compressions). No training: hand-made eval documents."""
import numpy as np
import pytest

from benchmarks import compare_chains
from swaptalk_jax.errors import UserError

CLIPS = [f"clip{i}" for i in range(8)]


def _cell(values):
  return {"skipped": "", "value": float(np.mean(values)), "low": float(np.min(values)),
          "high": float(np.max(values)), "per_clip": dict(zip(CLIPS, map(float, values)))}


def _doc(l1, mouth):
  cells = {"gt_ssim": _cell(np.full(8, 0.5)), "gt_l1": _cell(l1), "mouth_corr": _cell(mouth),
           "id_retrieve": {"skipped": "no dlib", "value": 0.0, "low": 0.0, "high": 0.0,
                           "per_clip": {}}}
  return {"setting": "cross", "rows": {compare_chains.CHAIN: cells},
          "meta": {"cases": [{"target_clip": c, "frames": 25} for c in CLIPS]}}


def _rows(text):
  return {line.split(" |")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}


def test_verdicts_name_the_better_chain_by_each_metric_direction():
  quick = _doc(np.linspace(0.10, 0.12, 8), np.full(8, 0.6))
  long = _doc(np.linspace(0.08, 0.10, 8), np.linspace(0.55, 0.65, 8))
  rows = _rows(compare_chains.paired_table(quick, long, ("quick", "long"), "long vs quick",
                                           resamples=200))
  assert rows["L1 to exact GT ↓"].endswith("| long better |")       # lower L1 on every clip
  assert "-0.020 [-0.020, -0.020]" in rows["L1 to exact GT ↓"]       # paired: exactly 0.02 apart
  assert "not resolved" in rows["mouth corr. with GT ↑"]             # spread around the same mean
  assert "not resolved" in rows["SSIM to exact GT ↑"]                # identical: 0 [0, 0]
  assert "skipped: no dlib" in rows["ID retrieve % ↑"]
  flipped = _rows(compare_chains.paired_table(long, quick, ("long", "quick"), "x", resamples=200))
  assert flipped["L1 to exact GT ↓"].endswith("| long better |")


def test_refuses_chains_scored_on_different_clips():
  a, b = _doc(np.ones(8), np.ones(8)), _doc(np.ones(8), np.ones(8))
  b["meta"]["cases"][3]["target_clip"] = "other"
  with pytest.raises(UserError, match="different clips or frame counts"):
    compare_chains.paired_table(a, b, ("a", "b"), "x")


def test_chain_folder_without_data_is_one_error(tmp_path, monkeypatch):
  monkeypatch.setattr("sys.argv", ["compare_chains.py", str(tmp_path), str(tmp_path)])
  with pytest.raises(SystemExit, match="with chain folders needs --data and --out"):
    compare_chains.main()


def test_missing_json_is_one_error(tmp_path, monkeypatch):
  monkeypatch.setattr("sys.argv", ["compare_chains.py", str(tmp_path / "a.json"),
                                   str(tmp_path / "b.json")])
  with pytest.raises(SystemExit, match="a.json does not exist"):
    compare_chains.main()
