"""grain pipelines: determinism, 1 vs 2 processes, checkpointed iterator state, stage semantics,
mixing and clear errors on damaged data."""
import os
import shutil

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from swaptalk_jax.audio.mel import mel_start_for_frame
from swaptalk_jax.data import pipelines, records, tfds_builder, toy_clips
from swaptalk_jax.data.records import RecordError

SIZE = 32


def _clips(split, manual_dir):
  del manual_dir
  ids = ["a", "b", "c"] if split == "train" else ["t"]
  out = []
  for i, identity in enumerate(ids * 2):
    clip = toy_clips.toy_clip(f"{split}{i}", identity, 20 + 9 * i, SIZE, i, with_extras=True)
    # Exact swap ground truth rendered with the next identity's face (in the same split).
    clip.extras["swap_gt_identity"] = np.array(ids[(ids.index(identity) + 1) % len(ids)], object)
    out.append(clip)
  return out


def _prepare(out, name="toy_pipe", encode_jpeg=None, monkeypatch=None):
  spec = records.infer_extras_spec(_clips("train", None)[0])
  source = tfds_builder.ClipSource(name=name, clips=_clips, extras=spec)
  return tfds_builder.prepare(source, out)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp("pipelines")
  _prepare(out)
  return out


def _config(data_dir, **kw):
  c = pipelines.default_data_config()
  c.sources = [dict(name="toy_pipe", data_dir=str(data_dir), weight=1.0)]
  c.image_size, c.batch_size, c.read_threads, c.prefetch_buffer = SIZE, 4, 1, 2
  c.update(kw)
  return c


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


SHAPES = {
    "vqgan": dict(image=(SIZE, SIZE, 3)),
    "swap": dict(source=(SIZE, SIZE, 3), target=(SIZE, SIZE, 3), target_gt=(SIZE, SIZE, 3),
                 has_gt=(), same_identity=()),
    "lip_expert": dict(frames=(5, SIZE, SIZE, 3), mel=(16, 80), label=()),
    "lipsync": dict(target=(5, SIZE, SIZE, 3), reference=(SIZE, SIZE, 3), mel=(5, 16, 80),
                    mel_window=(16, 80)),
}


@pytest.mark.parametrize("stage", list(SHAPES))
def test_batches_have_the_stage_keys_shapes_and_ranges(data_dir, stage):
  batch = next(pipelines.make_train_iterator(stage, _config(data_dir)))
  assert {k: v.shape[1:] for k, v in batch.items()} == SHAPES[stage]
  assert all(v.shape[0] == 4 for v in batch.values())
  for k, v in batch.items():
    assert v.dtype == (bool if k in ("has_gt", "same_identity") else np.float32), k
    if v.shape[-1] == 3:  # images in [-1, 1]
      assert v.min() >= -1 and v.max() <= 1 and v.std() > 0.01, k
    if "mel" in k:  # log-mel in [-4, 4], not all padding
      assert v.min() >= -4 and v.max() <= 4 and v.std() > 0.1, k


def test_same_seed_same_batches_and_other_seed_differs(data_dir):
  a = _take(pipelines.make_train_iterator("lipsync", _config(data_dir)), 3)
  b = _take(pipelines.make_train_iterator("lipsync", _config(data_dir)), 3)
  _assert_same(a, b)
  c = _take(pipelines.make_train_iterator("lipsync", _config(data_dir, shuffle_seed=5)), 3)
  assert any(not np.array_equal(x["target"], y["target"]) for x, y in zip(a, c))


@pytest.mark.parametrize("stage", ["swap", "lip_expert"])
def test_two_processes_concatenate_to_the_global_batch(data_dir, stage):
  one = _take(pipelines.make_train_iterator(stage, _config(data_dir), 0, 1), 3)
  p0 = _take(pipelines.make_train_iterator(stage, _config(data_dir), 0, 2), 3)
  p1 = _take(pipelines.make_train_iterator(stage, _config(data_dir), 1, 2), 3)
  assert all(v.shape[0] == 2 for v in p0[0].values())
  _assert_same(one, [{k: np.concatenate([a[k], b[k]]) for k in a} for a, b in zip(p0, p1)])


def test_sequential_reads_give_the_same_batches(data_dir):
  parallel = _take(pipelines.make_train_iterator("swap", _config(data_dir)), 2)
  sequential = _take(pipelines.make_train_iterator("swap", _config(data_dir, parallel_reads=False)),
                     2)
  _assert_same(parallel, sequential)


def test_more_read_threads_give_the_same_batches(data_dir):
  one = _take(pipelines.make_train_iterator("lipsync", _config(data_dir)), 4)
  three = _take(pipelines.make_train_iterator("lipsync", _config(data_dir, read_threads=3,
                                                                 prefetch_buffer=6)), 4)
  _assert_same(one, three)


def test_iterator_state_restores_mid_epoch(data_dir):
  it = pipelines.make_train_iterator("vqgan", _config(data_dir))
  _take(it, 2)
  state = it.get_state()
  expected = _take(it, 3)
  fresh = pipelines.make_train_iterator("vqgan", _config(data_dir))
  fresh.set_state(state)
  _assert_same(_take(fresh, 3), expected)


def test_iterator_checkpoints_with_orbax_and_grain_handler(data_dir, tmp_path):
  it = pipelines.make_train_iterator("lip_expert", _config(data_dir))
  _take(it, 2)
  with ocp.CheckpointManager(tmp_path / "ckpt", item_names=("data",)) as manager:
    manager.save(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
    manager.wait_until_finished()
    expected = _take(it, 2)
    fresh = pipelines.make_train_iterator("lip_expert", _config(data_dir))
    manager.restore(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
  _assert_same(_take(fresh, 2), expected)


def _plans(data_dir, stage, n, **kw):
  config = pipelines.resolve_config(_config(data_dir, **kw))
  ds, _ = pipelines.plan_dataset(stage, config, "train", True)
  return [ds[i] for i in range(n)]


def test_lip_expert_labels_match_the_mel_offset(data_dir):
  plans = _plans(data_dir, "lip_expert", 200)
  labels = np.array([p["values"]["label"] for p in plans])
  assert 0.3 < labels.mean() < 0.7
  for p in plans:
    frames, (mel_record, mel_step, _) = p["images"]["frames"], p["mels"]["mel"]
    record, first = frames[0][0], frames[0][1]
    assert [f[1] for f in frames] == list(range(first, first + 5))
    if p["values"]["label"] == 1:  # in sync: the mel window starting at the first frame
      assert mel_record == record
    if mel_record == record:
      sampler_first = _clip_first_frame(data_dir, record)
      offset = mel_step - mel_start_for_frame(sampler_first + first)
      assert (offset == 0) == (p["values"]["label"] == 1)
      if offset:
        assert abs(offset) >= 16  # >= 5 frames of 3.2 mel steps


def _clip_first_frame(data_dir, record):
  from swaptalk_jax.data import dataset, sampling  # pylint: disable=import-outside-toplevel
  path = pipelines.dataset_path(dict(name="toy_pipe", data_dir=str(data_dir)))
  index = sampling.SplitIndex.build(dataset.load_meta(path), "train")
  return int(index.first_frame[record])


def test_swap_pairs_identities_and_ground_truth(data_dir):
  from swaptalk_jax.data import dataset, sampling  # pylint: disable=import-outside-toplevel
  path = pipelines.dataset_path(dict(name="toy_pipe", data_dir=str(data_dir)))
  index = sampling.SplitIndex.build(dataset.load_meta(path), "train")
  ident = lambda r: index.clips[index.clip_of[r]].identity
  plans = _plans(data_dir, "swap", 200, swap=dict(same_identity_fraction=0.3))
  same = np.array([p["values"]["same_identity"] for p in plans])
  assert 0.15 < same.mean() < 0.45
  for p in plans:
    src, tgt, gt = p["images"]["source"], p["images"]["target"], p["images"]["target_gt"]
    if p["values"]["same_identity"]:  # another clip of the identity (each has two here)
      assert ident(src[0]) == ident(tgt[0]) and gt == tgt
      assert index.clip_of[src[0]] != index.clip_of[tgt[0]]
    else:  # this dataset renders exact swaps with the GT identity: source must be that identity
      want = index.clips[index.clip_of[tgt[0]]].extras["swap_gt_identity"]
      assert ident(src[0]) == want != ident(tgt[0])
      assert gt == (tgt[0], tgt[1], "x_swap_gt_frames") and p["values"]["has_gt"]


def test_lipsync_reference_distance_and_mel_windows(data_dir):
  for p in _plans(data_dir, "lipsync", 100):
    target, ref = p["images"]["target"], p["images"]["reference"]
    record, first = target[0][0], target[0][1]
    clip_frame = _clip_first_frame(data_dir, record) + first
    ref_frame = _clip_first_frame(data_dir, ref[0]) + ref[1]
    assert abs(ref_frame - (clip_frame + 2)) >= 5
    assert [m[1] for m in p["mels"]["mel"]] == [mel_start_for_frame(clip_frame + k - 2)
                                                for k in range(5)]
    assert p["mels"]["mel_window"][1] == mel_start_for_frame(clip_frame)


def test_lipsync_eval_all_windows_scores_every_frame_once(data_dir):
  from swaptalk_jax.data import dataset, sampling  # pylint: disable=import-outside-toplevel
  path = pipelines.dataset_path(dict(name="toy_pipe", data_dir=str(data_dir)))
  index = sampling.SplitIndex.build(dataset.load_meta(path), "test")
  config = pipelines.resolve_config(_config(data_dir, lipsync=dict(all_windows=True)))
  ds, _ = pipelines.plan_dataset("lipsync", config, "test", False)
  # wrapped round to whole global batches of 4: the first len(tiles) elements are one pass
  tiles = int(sum(n // 5 for n in index.length if n >= 5))
  assert tiles > len(index.length)       # more than the default one window per chunk
  frames = [(t[0], t[1]) for i in range(tiles) for t in ds[i]["images"]["target"]]
  want = {(r, f) for r, n in enumerate(index.length) for f in range(n // 5 * 5) if n >= 5}
  assert len(frames) == len(set(frames)) and set(frames) == want
  cfg = dict(window=5, reference_min_distance=5, all_windows=True)
  assert len(sampling.PlanSampler("lipsync", 0, str(path), "test", cfg, False)) == tiles
  # training keeps one random window per chunk (the option is eval-only)
  train_sampler = sampling.PlanSampler("lipsync", 0, str(path), "train", cfg, True)
  assert train_sampler.tiles is None and len(train_sampler) == len(train_sampler.eligible)


def test_vqgan_flip_is_a_horizontal_mirror_of_the_same_frame(data_dir):
  plain = next(pipelines.make_train_iterator("vqgan", _config(data_dir, vqgan=dict(flip_prob=0.0))))
  flipped = next(pipelines.make_train_iterator("vqgan", _config(data_dir, vqgan=dict(flip_prob=1.0))))
  np.testing.assert_array_equal(flipped["image"], plain["image"][:, :, ::-1])


def test_images_are_resized_to_the_configured_size(data_dir):
  small = next(pipelines.make_train_iterator("vqgan", _config(data_dir, image_size=16,
                                                              vqgan=dict(flip_prob=0.0))))
  full = next(pipelines.make_train_iterator("vqgan", _config(data_dir, vqgan=dict(flip_prob=0.0))))
  assert small["image"].shape == (4, 16, 16, 3)
  pooled = full["image"].reshape(4, 16, 2, 16, 2, 3).mean(axis=(2, 4))
  assert np.abs(small["image"] - pooled).mean() < 0.05


def test_mixing_follows_weights(data_dir):
  config = _config(data_dir)
  config.sources = [dict(name="toy_pipe", data_dir=str(data_dir), weight=3.0),
                    dict(name="toy_pipe", data_dir=str(data_dir), weight=1.0)]
  ds, sources = pipelines.plan_dataset("vqgan", pipelines.resolve_config(config), "train", True)
  counts = np.bincount([ds[i]["source"] for i in range(400)], minlength=2)
  assert len(sources) == 2 and abs(counts[0] / 400 - 0.75) < 0.05
  next(pipelines.make_train_iterator("vqgan", config))


def test_eval_iterator_is_one_fixed_pass(data_dir):
  a = list(pipelines.make_eval_iterator("vqgan", _config(data_dir)))
  b = list(pipelines.make_eval_iterator("vqgan", _config(data_dir)))
  assert len(a) == 1  # test split: 2 clips -> 3 records -> one global batch of 4 (wrapped)
  _assert_same(a, b)


def test_unknown_config_key_is_an_error(data_dir):
  config = _config(data_dir)
  config.horizontal_flip = True
  with pytest.raises(ValueError, match="horizontal_flip"):
    pipelines.make_train_iterator("vqgan", config)


def test_truncated_shard_fails_with_the_file_name(data_dir, tmp_path):
  copy = tmp_path / "copy"
  shutil.copytree(data_dir, copy)
  shard = next(copy.glob("toy_pipe/*/*-train.array_record-*"))
  os.truncate(shard, shard.stat().st_size // 3)
  with pytest.raises(RecordError, match=shard.name):
    _take(pipelines.make_train_iterator("vqgan", _config(copy)), 3)


def test_bad_jpeg_fails_with_file_and_record(tmp_path, monkeypatch):
  real = records.encode_jpeg
  monkeypatch.setattr(records, "encode_jpeg", lambda image, quality: real(image, quality)[:60])
  _prepare(tmp_path)
  with pytest.raises(RecordError, match=r"toy_pipe-train\.array_record-\d+-of-\d+ record \d+.*"
                                        r"bad JPEG"):
    _take(pipelines.make_train_iterator("vqgan", _config(tmp_path)), 1)


@pytest.mark.multiprocess
def test_worker_processes_give_the_same_batches_and_resume(data_dir):
  threads = _take(pipelines.make_train_iterator("lipsync", _config(data_dir)), 4)
  it = pipelines.make_train_iterator("lipsync", _config(data_dir, worker_count=1))
  try:
    _assert_same(_take(it, 2), threads[:2])
    state = it.get_state()
  finally:
    it.close()
  resumed = pipelines.make_train_iterator("lipsync", _config(data_dir, worker_count=1))
  try:
    resumed.set_state(state)
    _assert_same(_take(resumed, 2), threads[2:])
  finally:
    resumed.close()


def test_vqgan_frames_per_read_shares_reads_and_shards_like_single_frames(data_dir):
  config = _config(data_dir, batch_size=8, vqgan=dict(frames_per_read=4))
  one = _take(pipelines.make_train_iterator("vqgan", config), 2)
  assert one[0]["image"].shape == (8, SIZE, SIZE, 3)
  p0 = _take(pipelines.make_train_iterator("vqgan", config, 0, 2), 2)
  p1 = _take(pipelines.make_train_iterator("vqgan", config, 1, 2), 2)
  _assert_same(one, [{"image": np.concatenate([a["image"], b["image"]])} for a, b in zip(p0, p1)])
  plans = _plans(data_dir, "vqgan", 20, vqgan=dict(frames_per_read=4))
  for p in plans:  # four distinct frames of one record (every chunk here has >= 4 frames)
    refs = p["images"]["image"]
    assert len({r[0] for r in refs}) == 1 and len({r[1] for r in refs}) == 4
  with pytest.raises(ValueError, match="frames_per_read"):
    pipelines.make_train_iterator("vqgan", _config(data_dir, batch_size=6,
                                                   vqgan=dict(frames_per_read=4)))
