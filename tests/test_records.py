"""The record format, the TFDS builder and the checked reader: round trips and clear errors."""
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from swaptalk_jax.audio.mel import log_mel, mel_start_for_frame
from swaptalk_jax.data import dataset, records, tfds_builder, toy_clips
from swaptalk_jax.data.records import RecordError


def _source(extras):
  def clips(split, manual_dir):
    del manual_dir
    n = 3 if split == "train" else 1
    return [toy_clips.toy_clip(f"{split}{i}", f"{split}_id{i % 2}", 30 + 7 * i, 32, i, True)
            for i in range(n)]
  return tfds_builder.ClipSource(name="toy_records", clips=clips, extras=extras)


@pytest.fixture(scope="module")
def clip():
  return toy_clips.toy_clip("c0", "id0", 53, 32, 0, with_extras=True)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, clip):
  out = tmp_path_factory.mktemp("records")
  return tfds_builder.prepare(_source(records.infer_extras_spec(clip)), out)


def test_chunk_bounds_are_near_equal_and_cover():
  assert records.chunk_bounds(53) == [(0, 18), (18, 35), (35, 53)]
  assert records.chunk_bounds(25) == [(0, 25)]
  assert records.chunk_bounds(7) == [(0, 7)]
  for n in range(1, 80):
    b = records.chunk_bounds(n)
    assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:]))
    assert all(0 < s1 - s0 <= records.CHUNK_FRAMES for s0, s1 in b)


def test_extras_kinds_are_inferred(clip):
  spec = records.infer_extras_spec(clip)
  assert {k: s.kind for k, s in spec.items()} == dict(
      swap_gt_frames="frames", mouth_openness="per_frame", resync_audio="audio",
      swap_gt_identity="clip")


def test_clip_records_clip_round_trip(clip):
  spec = records.infer_extras_spec(clip)
  recs = records.clip_to_records(clip, extras_spec=spec)
  assert [len(r["frames_jpeg"]) for r in recs] == [18, 17, 18]
  back = records.records_to_clip(reversed(recs), spec)
  assert (back.clip_id, back.identity) == (clip.clip_id, clip.identity)
  assert np.abs(back.frames.astype(int) - clip.frames).mean() < 2.0  # JPEG q95
  assert np.abs(back.extras["swap_gt_frames"].astype(int) - clip.extras["swap_gt_frames"]).mean() < 2
  np.testing.assert_allclose(back.audio, clip.audio, atol=1 / 32768)
  np.testing.assert_allclose(back.extras["resync_audio"], clip.extras["resync_audio"], atol=1 / 32768)
  np.testing.assert_array_equal(back.landmarks, clip.landmarks)
  np.testing.assert_array_equal(back.crop_to_frame, clip.crop_to_frame)
  np.testing.assert_array_equal(back.extras["mouth_openness"], clip.extras["mouth_openness"])
  assert back.extras["swap_gt_identity"] == "id0_other"


def test_mel_slices_match_the_whole_clip_mel(clip):
  recs = records.clip_to_records(clip, extras_spec=records.infer_extras_spec(clip))
  full = log_mel(clip.audio)
  for r in recs:
    # Interior windows (away from the clip's ends, where the record pads with silence) equal the
    # whole-clip mel exactly at the front end's frame -> mel mapping.
    for frame in range(int(r["first_frame"]), int(r["first_frame"]) + len(r["frames_jpeg"]) - 5):
      step = mel_start_for_frame(frame)
      if step < 3 or step + 20 > full.shape[0]:
        continue
      np.testing.assert_allclose(records.mel_rows(r, step, 16, "t"), full[step:step + 16], atol=1e-5)
  first = recs[0]
  assert int(first["mel_start"]) == -records.MEL_MARGIN
  np.testing.assert_array_equal(first["mel_valid"], [0, mel_start_for_frame(53)])
  with pytest.raises(RecordError, match="outside"):
    records.mel_rows(first, -records.MEL_MARGIN - 1, 16, "t")


def test_unknown_format_version_names_the_record(clip):
  rec = dict(records.clip_to_records(clip)[0], format_version=np.int32(99))
  with pytest.raises(RecordError, match=r"somefile record 3.*format_version 99"):
    records.check_format_version(rec, "somefile record 3")


def test_bad_jpeg_names_the_record(clip):
  rec = records.clip_to_records(clip)[0]
  rec["frames_jpeg"][2] = rec["frames_jpeg"][2][:40]
  records.decode_frames(rec, [0, 1], "f record 0")  # other frames still decode
  with pytest.raises(RecordError, match=r"f record 0 frames_jpeg\[2\]: bad JPEG"):
    records.decode_frames(rec, [2], "f record 0")


def test_builder_writes_clip_ordered_records_and_table(dataset_dir):
  meta = dataset.load_meta(dataset_dir)
  table = meta.clip_tables["train"]
  assert [c.clip_id for c in table] == ["train0", "train1", "train2"]
  assert [c.first_record for c in table] == [0, 2, 4]
  assert table[1].extras == {"swap_gt_identity": "train_id1_other"}
  reader = dataset.SplitReader(dataset_dir, "train")
  assert len(reader) == 6
  recs = reader.read([3, 0, 5])
  got = [(records.as_str(r["clip_id"]), int(r["chunk_index"])) for r in recs]
  assert got == [("train1", 1), ("train0", 0), ("train2", 1)]
  assert meta.extras["swap_gt_frames"].kind == "frames"
  assert len(dataset.SplitReader(dataset_dir, "test")) == 2


def test_readable_with_tfds_data_source_without_importing_tensorflow(dataset_dir, repo_root):
  code = (
      "import sys, tensorflow_datasets as tfds\n"
      f"ds = tfds.data_source('toy_records', data_dir={str(dataset_dir.parent.parent)!r})\n"
      "r = ds['train'][2]\n"
      "assert r['clip_id'] == b'train1' and r['frames_jpeg'].shape == (18,), r['clip_id']\n"
      "assert 'tensorflow' not in sys.modules, 'tensorflow got imported'\n"
      "print('ok')\n")
  env = dict(os.environ, PYTHONPATH=str(repo_root))
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
  assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_truncated_shard_is_a_clear_error(dataset_dir, tmp_path):
  copy = tmp_path / "copy"
  shutil.copytree(dataset_dir, copy)
  shard = next(copy.glob("*-train.array_record-*"))
  os.truncate(shard, shard.stat().st_size // 2)
  with pytest.raises(RecordError, match=rf"{shard.name} record \d+ \(train record \d+\)"):
    dataset.SplitReader(copy, "train").read([0, 5])


def test_unknown_dataset_format_version_is_a_clear_error(dataset_dir, tmp_path):
  copy = tmp_path / "copy"
  shutil.copytree(dataset_dir, copy)
  text = (copy / "metadata.json").read_text().replace('"format_version": 1', '"format_version": 7')
  (copy / "metadata.json").write_text(text)
  with pytest.raises(RecordError, match=r"metadata.json.*format_version 7"):
    dataset.load_meta(copy)


def test_shards_are_written_uncompressed_with_one_record_per_group(dataset_dir):
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  shard = next(dataset_dir.glob("*-train.array_record-*"))
  reader = array_record_module.ArrayRecordReader(str(shard))
  options = reader.writer_options_string()
  reader.close()
  assert "group_size:1," in options and "uncompressed" in options, options


def test_verify_finds_nothing_in_a_good_dataset_and_names_bad_records(dataset_dir, tmp_path,
                                                                       monkeypatch, clip):
  assert dataset.verify(dataset_dir) == []
  copy = tmp_path / "copy"
  shutil.copytree(dataset_dir, copy)
  shard = next(copy.glob("*-test.array_record-*"))
  os.truncate(shard, shard.stat().st_size // 2)
  problems = dataset.verify(copy)
  assert problems and all(shard.name in p for p in problems)
  real = records.encode_jpeg
  monkeypatch.setattr(records, "encode_jpeg", lambda image, q: real(image, q)[:50])
  source = dataclasses.replace(_source(records.infer_extras_spec(clip)), name="bad_jpegs")
  bad = tfds_builder.prepare(source, tmp_path / "bad")
  assert dataset.verify(bad, decode=False) == []  # the records themselves read fine
  problems = dataset.verify(bad)
  # One problem per record and JPEG field (its first bad frame): 8 records x (frames, swap_gt).
  assert len(problems) == 8 * 2 and all("bad JPEG" in p for p in problems)
  assert "bad_jpegs-train.array_record-00000-of-00001 record 0 (train record 0) frames_jpeg[0]" \
      in problems[0]
