"""lipsync resync report from per-frame stats (host numpy): the mouth opening is read against the
reference frame, silence figures average only silent frames, per-frame figures are means."""
import numpy as np
import pytest

from swaptalk_jax.trainers.lipsync import CANDIDATES, mouth_openings, report_from_stats


def _stats(n=40, seed=0):
  rng = np.random.default_rng(seed)
  reference = rng.uniform(0.0, 0.02, n)
  gt_open = rng.uniform(0.0, 0.05, n)
  stats = {"reference_darkness": reference, "gt_darkness": reference + gt_open,
           "silent": (np.arange(n) % 4 == 0).astype(np.float32)}
  for k, name in enumerate(CANDIDATES):
    # output follows the truth's opening, copy is the reference (no opening), the others noise
    opening = {"output": 2.0 * gt_open, "copy": np.zeros(n)}.get(name, rng.uniform(0, .05, n))
    stats[f"{name}_darkness"] = reference + opening
    stats[f"{name}_mouth_l1"] = np.full(n, 0.1 * (k + 1))
  return stats, gt_open


def test_openings_subtract_the_reference_frame():
  stats, gt_open = _stats()
  openings = mouth_openings(stats)
  np.testing.assert_allclose(openings["gt"], gt_open)
  np.testing.assert_allclose(openings["output"], 2.0 * gt_open)
  np.testing.assert_allclose(openings["copy"], 0.0)


def test_report_correlation_silence_and_means():
  stats, gt_open = _stats()
  report = report_from_stats(stats)
  silent = stats["silent"] > 0.5
  assert report["frames"] == 40 and report["silent_frames"] == int(silent.sum()) == 10
  assert report["output_mouth_corr"] == pytest.approx(1.0)
  assert report["copy_mouth_corr"] == 0.0          # constant opening: no correlation
  assert abs(report["shuffled_mouth_corr"]) < 0.6
  assert report["gt_silent_opening"] == pytest.approx(gt_open[silent].mean())
  assert report["output_silent_opening"] == pytest.approx(2.0 * gt_open[silent].mean())
  assert report["copy_mouth_l1"] == pytest.approx(0.2)
