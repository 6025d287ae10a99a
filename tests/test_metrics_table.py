"""Bootstrap intervals (parity with scipy.stats.bootstrap), SSIM (parity with skimage), the Table 1
writer (markdown + CSV + JSON, skipped cells labelled) and every column of one method end to end on
small synthetic clips, next to a copy-the-target baseline."""
import csv
import json

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats

from metrics_clips import synthetic_clip
from swaptalk_jax.metrics import bootstrap, clip_metrics, identity_preservation, image_quality, table


def test_bootstrap_parity_with_scipy():
  values = np.random.default_rng(0).gamma(2.0, 1.5, size=40)
  ours = bootstrap.mean_interval(values, resamples=5000, seed=0)
  ref = scipy.stats.bootstrap((values,), np.mean, n_resamples=5000, method="percentile",
                              confidence_level=0.95, random_state=1).confidence_interval
  width = ref.high - ref.low
  print(f"bootstrap: ours [{ours.low:.4f}, {ours.high:.4f}] scipy [{ref.low:.4f}, {ref.high:.4f}]")
  assert abs(ours.low - ref.low) < 0.05 * width and abs(ours.high - ref.high) < 0.05 * width
  assert ours.value == pytest.approx(values.mean())
  # Seeded: the same draws give the same interval, through either entry point.
  again = bootstrap.bootstrap(lambda i: values[i].mean(), len(values), resamples=5000, seed=0)
  assert (again.low, again.high) == pytest.approx((ours.low, ours.high), abs=1e-12)
  with pytest.raises(ValueError, match="at least 2 clips"):
    bootstrap.mean_interval([1.0])
  with pytest.raises(ValueError, match="NaN"):
    bootstrap.mean_interval([1.0, np.nan])


def test_ssim_parity_with_skimage():
  metrics = pytest.importorskip("skimage.metrics")
  clip = synthetic_clip(1)
  x = clip.frames[:4].astype(np.float64) / 255.0
  y = np.clip(scipy.ndimage.gaussian_filter(x, (0, 1, 1, 0))
              + np.random.default_rng(0).normal(0, 0.03, x.shape), 0, 1)
  ours = np.asarray(image_quality.ssim(x, y))
  ref = [metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, data_range=1.0,
                                       use_sample_covariance=False, channel_axis=-1)
         for a, b in zip(x, y)]
  print(f"SSIM parity: max |ours - skimage| {np.max(np.abs(ours - ref)):.2e} (values {ours})")
  np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_writer(tmp_path):
  rows = {"ours": {"ssim": table.from_clips({"c0": 0.9, "c1": 0.8, "c2": 0.85}),
                   "fid": table.skipped("no Inception weights")},
          "copy": {"ssim": table.from_clips({"c0": 1.0, "c1": 1.0, "c2": 1.0}),
                   "fid": table.skipped("no Inception weights")}}
  paths = table.write(tmp_path, "self", rows, meta=dict(data="synthetic"))
  md = paths["md"].read_text()
  assert "| ours | skipped | 0.85 [" in md
  assert "- FID skipped (ours, copy): no Inception weights" in md
  with open(paths["csv"]) as f:
    lines = list(csv.DictReader(f))
  assert {(r["method"], r["metric"], r["status"][:7]) for r in lines} == {
      ("ours", "ssim", "ok"), ("ours", "fid", "skipped"), ("copy", "ssim", "ok"),
      ("copy", "fid", "skipped")}
  doc = json.loads(paths["json"].read_text())
  assert doc["rows"]["ours"]["ssim"]["per_clip"] == {"c0": 0.9, "c1": 0.8, "c2": 0.85}
  assert doc["rows"]["ours"]["fid"]["skipped"] == "no Inception weights"
  with pytest.raises(ValueError, match="unknown metric columns"):
    table.write(tmp_path, "self", {"x": {"psnr": table.skipped("-")}})
  with pytest.raises(ValueError, match="setting"):
    table.write(tmp_path, "both", rows)


def _eval_clips(generated_key):
  clips = []
  for identity in (1, 2):
    c = synthetic_clip(identity)
    exact = c.extras["resync_gt_frames"][:6]
    generated = exact if generated_key == "exact" else c.frames[:6]
    clips.append(clip_metrics.EvalClip(c.clip_id, generated, c.frames[:6], c.identity,
                                       exact=exact))
  return clips


def test_every_column_on_synthetic_clips(tmp_path):
  """Generated = the exact re-synced frames vs the copy-the-target baseline (self-driven; the
  exact frames are the re-sync ground truth). Skipped columns carry their reasons."""
  gallery_clips = [synthetic_clip(i, 1) for i in (1, 2)]
  gallery = (np.concatenate([identity_preservation.embed_crops(c.frames[::10])
                             for c in gallery_clips]),
             np.repeat([c.identity for c in gallery_clips], 3))
  options = clip_metrics.Options(setting="self", gallery=gallery, resamples=200, set_resamples=20)
  rows = {"exact": clip_metrics.compute(_eval_clips("exact"), options),
          "copy target": clip_metrics.compute(_eval_clips("copy"), options)}
  exact, copy = rows["exact"], rows["copy target"]
  assert copy["ssim"].value == pytest.approx(1.0) and copy["lmd"].value == 0.0
  assert exact["gt_l1"].value == 0.0 and exact["gt_ssim"].value == pytest.approx(1.0)
  assert exact["mouth_corr"].value == pytest.approx(1.0)
  assert copy["mouth_corr"].value < 0.9 and copy["gt_l1"].value > 0
  assert exact["id_retrieve"].value == 100.0
  for key in ("fid", "lse_c", "lse_d"):
    assert exact[key].skipped and exact[key].value is None
  assert 0.0 <= exact["cpbd"].value <= 1.0 and exact["consistency"].value > 90
  assert "FID substitute" in exact["fd_dlib"].note
  md = table.markdown("self", rows)
  print(md)
  assert "FID skipped (exact, copy target): no Inception weights" in md
  # Cross-driven; the FID path with a stand-in extractor (plumbing only: pixel statistics).
  pixels = lambda images: images.reshape(len(images), -1)[:, ::997].astype(np.float64)
  cross = clip_metrics.compute(_eval_clips("copy")[:2], clip_metrics.Options(
      setting="cross", resamples=50, set_resamples=10, inception_embed=pixels))
  assert "undefined cross-driven" in cross["lmd"].skipped
  assert cross["id_retrieve"].skipped == "no identity gallery given"
  assert cross["fid"].value == pytest.approx(0.0, abs=1e-6) and cross["fid"].skipped is None


def test_bad_clips():
  good = _eval_clips("copy")
  with pytest.raises(ValueError, match="at least 2 clips"):
    clip_metrics.check_clips(good[:1])
  short = clip_metrics.EvalClip("x", good[0].generated[:4], good[0].target, "syn00001")
  with pytest.raises(ValueError, match="clip x: target .* and generated .* differ"):
    clip_metrics.check_clips([short, good[1]])
  floats = clip_metrics.EvalClip("y", good[0].generated / 255.0, good[0].target, "syn00001")
  with pytest.raises(ValueError, match="clip y: generated must be uint8"):
    clip_metrics.check_clips([floats, good[1]])
  with pytest.raises(ValueError, match="appears twice"):
    clip_metrics.check_clips([good[0], good[0]])


def test_group_means_split_per_clip_values_and_print_one_row_per_method():
  cells = {"m": table.from_clips({"a": 1.0, "b": 3.0, "c": 0.0}),
           "s": table.from_clips({"a": 0.5, "b": 0.5, "c": 0.5})}
  rows = {"chain": {"mouth_corr": cells["m"], "fid": table.skipped("no weights")},
          "copy": {"mouth_corr": cells["s"]}}
  means = table.group_means(rows, {"a": "darker", "b": "darker", "c": "lighter"})
  assert means == {"chain": {"mouth_corr": {"darker": 2.0, "lighter": 0.0}},
                   "copy": {"mouth_corr": {"darker": 0.5, "lighter": 0.5}}}
  md = table.group_markdown(means, {"darker": 2, "lighter": 1}, "### by tone")
  assert md.splitlines()[2] == "| Method | Mouth corr, darker (2) | Mouth corr, lighter (1) |"
  assert "| chain | 2.00 | 0 |" in md and "| copy | 0.5 | 0.5 |" in md
