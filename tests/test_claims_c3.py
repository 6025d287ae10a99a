"""Claim C3's table (benchmarks/claims_c3.py) from a Table IV JSON, and the per-pair swap figures it
is built from (evaluators/swap_pairs.py, benchmarks/swap.py's per-clip grouping). No training: toy
arrays and a hand-made JSON."""
import numpy as np
import pytest

from benchmarks import claims, claims_c3
from benchmarks import swap as swap_benchmark
from swaptalk_jax.errors import UserError
from swaptalk_jax.evaluators import swap_pairs
from swaptalk_jax.losses import swap as swap_losses

CLIPS = [f"clip{i}" for i in range(8)]


def _row(id_top1, ssim, rng):
  return {"per_clip": {"id_top1": dict(zip(CLIPS, id_top1)),
                       "ssim": dict(zip(CLIPS, ssim + 0.01 * rng.standard_normal(8))),
                       "l1": dict(zip(CLIPS, 0.1 + 0.01 * rng.standard_normal(8)))}}


def _doc():
  rng = np.random.default_rng(0)
  return {"rows": {"transformer": _row(np.full(8, 0.9), np.full(8, 0.5), rng),
                   "transformer, L_proxy only": _row(np.array([0.1, 0.2] * 4), np.full(8, 0.5),
                                                     rng)},
          "meta": {"steps": 7, "frames_per_clip": 3, "identity_kind": "trained",
                   "chance": {"id_top1": 0.25}, "ground_truth": {"id_top1": 1.0}}}


def test_c3_verdicts_follow_the_paired_interval():
  text = claims_c3.c3_table(_doc(), resamples=200)
  rows = [line for line in text.splitlines() if line.startswith("| | transformer |")]
  assert len(rows) == 3                                  # id_top1, ssim, l1
  # retrieval 90 % vs 15 % on average, +75 points, the same sign on every clip
  assert "90.0 [90.0, 90.0] | 75.0 [" in rows[0] and "identity losses better" in rows[0]
  assert "not resolved" in rows[1] and "not resolved" in rows[2]   # noise only on SSIM / L1
  assert "not measured in this run" in text                 # no id_top1_net / landmarks here
  assert "7 steps each, 8 held-out target clips x 3 frames" in text


def test_c3_reverse_direction_is_reported():
  doc = _doc()
  rows = doc["rows"]
  rows["transformer"], rows["transformer, L_proxy only"] = (rows["transformer, L_proxy only"],
                                                            rows["transformer"])
  assert "L_proxy only better" in claims_c3.c3_table(doc, resamples=200)


def test_c3_bad_inputs_are_one_line_errors():
  doc = _doc()
  del doc["rows"]["transformer, L_proxy only"]
  with pytest.raises(UserError, match="L_proxy only"):
    claims_c3.c3_table(doc)
  doc = _doc()
  del doc["rows"]["transformer"]["per_clip"]["ssim"]["clip0"]
  with pytest.raises(UserError, match="different target clips"):
    claims_c3.c3_table(doc)


def test_report_runs_c3_alone_and_marks_c2_not_run():
  text = claims.report(None, 0, 200, _doc())
  assert "### C3: identity losses on vs off" in text
  assert "### C2: not run in this invocation" in text and "### C1: not run" in text
  assert "### C3: not run" not in text


def test_pair_values_average_to_the_scores():
  rng = np.random.default_rng(1)
  images = rng.uniform(-1, 1, (5, 16, 16, 3)).astype(np.float32)
  truth = images.copy()
  truth[2] = -1.0
  values = swap_pairs.pair_image_values(images, truth)
  assert values["l1"].shape == (5,) and values["l1"][0] == 0.0 and values["l1"][2] > 0.2
  assert values["ssim"][0] == pytest.approx(1.0, abs=1e-5) and values["ssim"][2] < 0.5
  means = swap_pairs.image_scores(images, truth)
  for key, v in values.items():
    assert means[key] == pytest.approx(float(np.mean(v)))


def test_nearest_hits_euclidean_and_cosine():
  gallery = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 10.5]])
  labels = np.array(["a", "b", "c"])
  queries = np.array([[2.0, 0.1], [0.1, 3.0]])
  # Euclidean: [2, .1] is nearest to a, [.1, 3] to b; by cosine [.1, 3] also points like b (not c)
  assert swap_pairs.nearest_hits(queries, np.array(["a", "b"]), gallery, labels).tolist() == [
      True, True]
  assert swap_pairs.nearest_hits(queries, np.array(["a", "c"]), gallery, labels,
                                 cosine=True).tolist() == [True, False]
  # a long vector along the diagonal: nearest (Euclidean) and most aligned (cosine) are both c
  for cosine in (False, True):
    assert swap_pairs.nearest_hits(np.array([[9.0, 9.4]]), np.array(["c"]), gallery, labels,
                                   cosine=cosine).tolist() == [True]


def test_net_embeddings_take_uint8_and_float_alike():
  net = swap_losses.IdentityNet("mean_colour", lambda params, x: x.mean(axis=(1, 2)) * params)
  images = np.random.default_rng(2).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
  as_float = images.astype(np.float32) / 127.5 - 1.0
  a = swap_pairs.net_embeddings((net, 2.0), images, batch_size=2)
  b = swap_pairs.net_embeddings((net, 2.0), as_float)
  np.testing.assert_allclose(a, b, atol=1e-6)
  np.testing.assert_allclose(a, 2.0 * as_float.mean(axis=(1, 2)), atol=1e-6)


def test_per_clip_groups_pairs_by_target_clip():
  values = {"l1": np.array([1.0, 3.0, 5.0, 7.0])}
  clips = np.array(["x", "y", "x", "y"])
  assert swap_benchmark.per_clip(values, clips) == {"l1": {"x": 3.0, "y": 5.0}}


def test_table_rows_have_the_proxy_only_control():
  names = [name for name, _, _ in swap_benchmark.table_rows(True)]
  assert claims_c3.CONTROL in names and set(claims_c3.WITH_LOSSES) <= set(names)
  control = dict((n, o) for n, _, o in swap_benchmark.table_rows(True))[claims_c3.CONTROL]
  assert control["loss.id_src_weight"] == 0.0 and control["loss.id_res_weight"] == 0.0
  assert all("L_proxy only" in n for n, _, _ in swap_benchmark.table_rows(False))
