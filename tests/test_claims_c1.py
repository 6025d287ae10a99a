"""Claim C1's table (benchmarks/claims_c1.py) from two chains' eval JSONs, and benchmarks/claims.py's
--c1 wiring. No training: hand-made eval documents."""
import json

import numpy as np
import pytest

from benchmarks import claims, claims_c1, compare_chains
from swaptalk_jax.errors import UserError

CLIPS = [f"clip{i}" for i in range(8)]


def _cell(values):
  return {"skipped": "", "value": float(np.mean(values)), "low": float(np.min(values)),
          "high": float(np.max(values)), "per_clip": dict(zip(CLIPS, map(float, values)))}


def _doc(mouth, id_retrieve, seed):
  rng = np.random.default_rng(seed)
  cells = {"gt_ssim": _cell(0.5 + 0.01 * rng.standard_normal(8)),
           "gt_l1": _cell(0.1 + 0.01 * rng.standard_normal(8)),
           "mouth_corr": _cell(mouth), "id_retrieve": _cell(id_retrieve)}
  return {"setting": "cross", "rows": {compare_chains.CHAIN: cells},
          "meta": {"cases": [{"target_clip": c, "frames": 25} for c in CLIPS]}}


def test_c1_verdicts_name_the_side_the_paired_interval_favours():
  less = _doc(np.full(8, 0.7), np.full(8, 10.0), seed=0)
  more = _doc(np.linspace(0.2, 0.4, 8), np.full(8, 10.0), seed=1)
  text = claims_c1.c1_table(less, more, ("micro", "micro_8x8"), resamples=200)
  rows = {line.split(" |")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
  assert "less compressed better" in rows["mouth corr. with GT ↑"]
  assert "-0.400 [" in rows["mouth corr. with GT ↑"]          # 0.3 - 0.7, paired
  assert "not resolved" in rows["ID retrieve % ↑"]             # identical on every clip: 0 [0, 0]
  assert "8 held-out clips x 25 frames" in text and "micro_8x8" in text
  flipped = claims_c1.c1_table(more, less, ("a", "b"), resamples=200)
  assert "more compressed better" in flipped


def test_c1_refuses_unpaired_or_wrong_inputs():
  less, more = _doc(np.ones(8), np.ones(8), 0), _doc(np.ones(8), np.ones(8), 1)
  more["meta"]["cases"][0]["frames"] = 10
  with pytest.raises(UserError, match="different clips or frame counts"):
    claims_c1.c1_table(less, more, ("a", "b"))
  more = _doc(np.ones(8), np.ones(8), 1)
  more["setting"] = "self"
  with pytest.raises(UserError, match="cross-driven"):
    claims_c1.c1_table(less, more, ("a", "b"))


def test_report_prints_c1_and_marks_the_others_not_run():
  c1 = (_doc(np.full(8, 0.7), np.ones(8), 0), _doc(np.full(8, 0.6), np.ones(8), 1), ("a", "b"))
  text = claims.report(None, 0, 200, None, c1)
  assert "### C1: more vs less VQGAN compression" in text and "### C1: not run" not in text
  assert "### C2: not run" in text and "### C3: not run" in text


def test_c1_with_a_chain_folder_needs_data_and_out(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr("sys.argv", ["claims.py", "--c1", str(tmp_path), str(tmp_path)])
  with pytest.raises(SystemExit, match="--c1 with chain folders needs --data and --out"):
    claims.main()


def test_compression_label_names_grid_and_steps_of_the_latest_vqgan_checkpoint(tmp_path):
  for step in (1000, 9000):
    (tmp_path / "vqgan" / "checkpoints" / str(step) / "state").mkdir(parents=True)
    config = tmp_path / "vqgan" / "checkpoints" / str(step) / "config"
    config.mkdir()
    (config / "metadata").write_text(json.dumps(
        {"variant": "micro_f4", "model": {"ch_mult": [1, 2, 2]}, "data": {"image_size": 64}}))
  assert claims_c1.compression_label(str(tmp_path)) == (
      "micro_f4: f4, 64 px -> 16x16 tokens, 9000 steps")
  (config / "metadata").write_text("{not json")
  with pytest.raises(UserError, match="no readable VQGAN config"):
    claims_c1.compression_label(str(tmp_path))
