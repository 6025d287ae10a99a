"""benchmarks/identity_budget.py: its crop rescaling and paste (what every truth row goes through),
and its one-line error on a missing chain. The rows themselves are the eval's and generate's code."""
import json
import types

import cv2
import numpy as np

from benchmarks import identity_budget
from swaptalk_jax.face import align


def _smooth_frame(size=128, seed=0):
  noise = np.random.default_rng(seed).uniform(0, 255, (8, 8, 3)).astype(np.float32)
  return np.clip(cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(
      np.uint8)


def _to_crop(size):
  """A rotated, scaled face box of a 128-px frame (centre (64, 60), side 80 px) -> `size`-px crop,
  the kind of frame->crop affine the tracker gives."""
  m = cv2.getRotationMatrix2D((64.0, 60.0), 12.0, size / 80.0)
  m[:, 2] += np.array([size / 2 - 64.0, size / 2 - 60.0])
  return m


def test_to_crop_at_keeps_pixel_centres():
  m = _to_crop(32)
  big = identity_budget.to_crop_at(m, 32, 128)
  k = 4.0
  for x, y in [(10.0, 20.0), (64.0, 60.0), (100.5, 3.25)]:
    small_uv = m @ np.array([x, y, 1.0])
    big_uv = big @ np.array([x, y, 1.0])
    np.testing.assert_allclose(big_uv + 0.5, k * (small_uv + 0.5), atol=1e-9)
  frame = _smooth_frame()
  crop_small = align.warp_to_crop(frame, m, 32).astype(np.float32)
  crop_big = align.warp_to_crop(frame, big, 128)
  down = cv2.resize(crop_big, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
  assert np.abs(down - crop_small).mean() < 2.0     # the same face at 4x the pixels


def test_pasting_a_frames_own_crop_leaves_it_and_a_black_crop_does_not():
  frame = _smooth_frame(seed=1)
  track = types.SimpleNamespace(to_crop=_to_crop(32)[None])
  own = {0: align.warp_to_crop(frame, identity_budget.to_crop_at(track.to_crop[0], 32, 128), 128)}
  back = identity_budget.pasted(frame[None], own, track, 32, feather=0.1)[0]
  assert np.abs(back.astype(np.float32) - frame).mean() < 1.0
  black = identity_budget.pasted(frame[None], {0: np.zeros((32, 32, 3), np.uint8)}, track, 32,
                                 feather=0.1)[0]
  assert np.abs(black.astype(np.float32) - frame).mean() > 20.0


def test_missing_chain_is_one_line_and_exit_1(tmp_path, capsys):
  code = identity_budget.main(["--run", str(tmp_path / "nope"), "--data", str(tmp_path),
                               "--out", str(tmp_path / "out")])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 1 and len(err) == 1 and "nope" in err[0] and "does not exist" in err[0]


def _result(run, per_clip_retrieve):
  cell = lambda per: dict(value=float(np.mean(list(per.values()))), low=0.0, high=100.0,
                          per_clip=per)
  return dict(run=run, rows={"chain": dict(
      title="chain (swap + lip-sync)", id_retrieve=cell(per_clip_retrieve),
      distance=cell({c: 0.5 for c in per_clip_retrieve}))})


def test_compare_pairs_two_results_over_shared_clips(tmp_path, capsys):
  a = _result("A", {"c0": 10.0, "c1": 20.0, "c2": 30.0})
  b = _result("B", {"c0": 20.0, "c1": 30.0, "c2": 40.0, "c9": 99.0})   # c9: only B scored it
  text = identity_budget.compare(a, b)
  chain_retrieve = next(l for l in text.splitlines() if "id_retrieve" in l)
  assert chain_retrieve.rstrip().endswith("10 [10, 10]")     # +10 on every shared clip
  assert next(l for l in text.splitlines() if "distance" in l).rstrip().endswith("0 [0, 0]")
  for name, result in (("a.json", a), ("b.json", b)):
    (tmp_path / name).write_text(json.dumps(result))
  assert identity_budget.main(["--compare", str(tmp_path / "a.json"),
                               str(tmp_path / "b.json")]) == 0
  assert "B - A, paired over clips" in capsys.readouterr().out
  # other data (no shared clip) and an unreadable file: one line, exit 1
  (tmp_path / "c.json").write_text(json.dumps(_result("C", {"x": 1.0})))
  assert identity_budget.main(["--compare", str(tmp_path / "a.json"),
                               str(tmp_path / "c.json")]) == 1
  assert "share no clip" in capsys.readouterr().err
  assert identity_budget.main(["--compare", str(tmp_path / "a.json"),
                               str(tmp_path / "missing.json")]) == 1
  assert "missing.json: not a readable identity_budget.json" in capsys.readouterr().err
