"""One TFDS builder for every clip source (synthetic, HDTF, VoxCeleb2, a folder of videos).

It writes `file_format='array_record'` shards of chunk records (`records.py`) with plain Tensor
features only (no Image features: those need TensorFlow), in clip order (`disable_shuffling`, so a
clip's chunks are consecutive records), and a clip table in `metadata.json` beside the shards.
Writing and reading work without TensorFlow: read with `tfds.data_source(name, data_dir=...)` or
`tfds.builder_from_directory(dir).as_data_source()`, or `dataset.SplitReader(dir, split)` (checked
reads naming the file and record).
"""
import contextlib
import dataclasses
import json
import os
import pathlib
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from array_record.python import array_record_module
import tensorflow_datasets as tfds
from tensorflow_datasets.core import file_adapters

from swaptalk_jax.data import records
from swaptalk_jax.data.clip import Clip
from swaptalk_jax.data.records import ExtraSpec

# Split -> the clips of that split. `manual_dir` is the TFDS manual dir (None unless the source
# says it needs one): real sources read their raw videos from it.
ClipsFn = Callable[[str, pathlib.Path | None], Iterable[Clip]]


@dataclasses.dataclass(frozen=True)
class ClipSource:
  """What a data source gives the builder: a dataset name, its splits' clips and its extras."""
  name: str                                   # TFDS dataset name: the folder under data_dir
  clips: ClipsFn
  splits: tuple[str, ...] = ("train", "test")
  extras: Mapping[str, ExtraSpec] = dataclasses.field(default_factory=dict)
  description: str = ""
  needs_manual_dir: bool = False
  version: str = "1.0.0"
  # What the clips were made from (flags, seed): saved with the dataset; preparing into an existing
  # dataset with other params is an error instead of silently reusing the old data.
  params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RecordOptions:
  """How clips become records."""
  chunk_frames: int = records.CHUNK_FRAMES
  jpeg_quality: int = 95
  mel_margin: int = records.MEL_MARGIN
  # ArrayRecord compression: off by default (DESIGN.md: real-face JPEG payloads shrink ~3%), as
  # every read pays the decompression (0.6 vs 0.26 ms CPU per 1 MB record here). The synthetic
  # set's flat renders do shrink (~40% measured): compress=True trades that disk for read CPU.
  compress: bool = False


class _ArrayRecordAdapter(file_adapters.ArrayRecordFileAdapter):
  """TFDS's ArrayRecord adapter with our writer options (TFDS hard-codes 'group_size:1', which
  compresses); readers need nothing special: the options live in the file."""
  OPTIONS = "group_size:1,uncompressed"

  @classmethod
  def write_examples(cls, path, iterator):
    writer = array_record_module.ArrayRecordWriter(os.fspath(path), cls.OPTIONS)
    for _, serialized_example in iterator:
      writer.write(serialized_example)
    writer.close()


@contextlib.contextmanager
def _array_record_writer(compress: bool):
  """Swaps TFDS's ArrayRecord writer for ours while a dataset is written (unless compressing)."""
  fmt = file_adapters.FileFormat.ARRAY_RECORD
  original = file_adapters.ADAPTER_FOR_FORMAT[fmt]
  if not compress:
    file_adapters.ADAPTER_FOR_FORMAT[fmt] = _ArrayRecordAdapter
  try:
    yield
  finally:
    file_adapters.ADAPTER_FOR_FORMAT[fmt] = original


def _tensor(shape, dtype) -> tfds.features.Tensor:
  """Numeric arrays as raw bytes: parsing a 1 MB record is several times faster than from
  tf.train.Example varint/float lists (which also widen int16 audio to int64)."""
  bytes_encoded = len(shape) > 0 and np.dtype(dtype) != np.object_
  return tfds.features.Tensor(shape=tuple(shape), dtype=dtype,
                              encoding=tfds.features.Encoding.BYTES if bytes_encoded
                              else tfds.features.Encoding.NONE)


def record_features(extras: Mapping[str, ExtraSpec]) -> tfds.features.FeaturesDict:
  """The TFDS feature spec of a record with the given extras (see `records` for the fields)."""
  f = dict(
      format_version=_tensor((), np.int32), clip_id=_tensor((), np.object_),
      identity=_tensor((), np.object_), chunk_index=_tensor((), np.int32),
      num_chunks=_tensor((), np.int32), first_frame=_tensor((), np.int32),
      clip_num_frames=_tensor((), np.int32), frames_jpeg=_tensor((None,), np.object_),
      landmarks=_tensor((None, 68, 2), np.float32), crop_to_frame=_tensor((None, 2, 3), np.float32),
      audio=_tensor((None,), np.int16), mel=_tensor((None, records.NUM_MELS), np.float32),
      mel_start=_tensor((), np.int32), mel_valid=_tensor((2,), np.int32))
  for name, spec in extras.items():
    key = f"x_{name}"
    if spec.kind == "frames":
      f[key] = _tensor((None,), np.object_)
    elif spec.kind == "per_frame":
      f[key] = _tensor((None,) + tuple(spec.shape), np.dtype(spec.dtype))
    elif spec.kind == "audio":
      f[key] = _tensor((None,), np.int16)
      f[f"{key}_mel"] = _tensor((None, records.NUM_MELS), np.float32)
    elif spec.kind == "clip":
      f[key] = _tensor(spec.shape, np.object_ if spec.dtype == "object" else np.dtype(spec.dtype))
    else:
      raise ValueError(f"extra {name!r}: unknown kind {spec.kind!r}")
  return tfds.features.FeaturesDict(f)


def _json_value(value: Any) -> Any:
  """A clip-level extra as JSON (strings and small arrays)."""
  arr = np.asarray(value)
  if arr.dtype.kind in "SO" and arr.ndim == 0:
    return records.as_str(arr)
  return arr.tolist()


def clip_table_row(clip_id: str, identity: str, split: str, first_record: int,
                   clip_records: list[Mapping[str, Any]], meta: Mapping[str, Any] | None = None,
                   clip_extras: Mapping[str, Any] | None = None) -> dict:
  """One clip-table row. meta: optional 'quality' (dict), 'sync_offset', 'sync_confidence' and
  anything else JSON-able (kept under 'meta'); clip_extras: the clip-level extras (strings...)."""
  meta = dict(meta or {})
  return dict(
      clip_id=clip_id, identity=identity, split=split, first_record=first_record,
      num_chunks=len(clip_records), num_frames=sum(len(r["frames_jpeg"]) for r in clip_records),
      chunk_frames=[len(r["frames_jpeg"]) for r in clip_records],
      quality=meta.pop("quality", {}), sync_offset=meta.pop("sync_offset", None),
      sync_confidence=meta.pop("sync_confidence", None), meta=meta,
      extras={k: _json_value(v) for k, v in (clip_extras or {}).items()})


class ClipDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Chunk records of a `ClipSource`; instantiate through `make_builder`."""
  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, *, source: ClipSource, options: RecordOptions,
               mel_fn: records.MelFn, **kwargs):
    self._source, self._options, self._mel_fn = source, options, mel_fn
    super().__init__(**kwargs)

  def download_and_prepare(self, **kwargs) -> None:
    with _array_record_writer(self._options.compress):
      super().download_and_prepare(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self._source.description or f"swaptalk clips: {self.name}",
        features=record_features(self._source.extras), disable_shuffling=True,
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    manual_dir = pathlib.Path(dl_manager.manual_dir) if self._source.needs_manual_dir else None
    self.info.metadata.update(
        format_version=records.FORMAT_VERSION,
        extras={k: v.to_json() for k, v in self._source.extras.items()},
        options=dataclasses.asdict(self._options), params=dict(self._source.params),
        clip_table={})
    return {split: self._generate_examples(split, manual_dir) for split in self._source.splits}

  def _generate_examples(self, split: str, manual_dir):
    table = self.info.metadata["clip_table"].setdefault(split, [])
    seen, index = set(), 0
    for clip in self._source.clips(split, manual_dir):
      if clip.clip_id in seen:
        raise ValueError(f"{self.name}/{split}: duplicate clip_id {clip.clip_id!r}")
      seen.add(clip.clip_id)
      recs = records.clip_to_records(
          clip, self._mel_fn, self._source.extras, chunk_frames=self._options.chunk_frames,
          jpeg_quality=self._options.jpeg_quality, mel_margin=self._options.mel_margin)
      table.append(clip_table_row(
          clip.clip_id, clip.identity, split, index, recs, getattr(clip, "meta", None),
          {k: clip.extras[k] for k, s in self._source.extras.items() if s.kind == "clip"}))
      for rec in recs:
        yield index, rec  # integer keys + disable_shuffling: records stay in this order
        index += 1


def make_builder(source: ClipSource, data_dir: str | pathlib.Path,
                 options: RecordOptions = RecordOptions(),
                 mel_fn: records.MelFn | None = None) -> ClipDatasetBuilder:
  """A builder writing `data_dir/<source.name>/<version>/` (named after the source)."""
  mel_fn = records.log_mel if mel_fn is None else mel_fn
  cls = type(f"ClipDatasetBuilder_{source.name}", (ClipDatasetBuilder,),
             dict(name=source.name, VERSION=tfds.core.Version(source.version)),
             skip_registration=True)
  return cls(source=source, options=options, mel_fn=mel_fn, data_dir=str(data_dir),
             file_format="array_record")


def prepare(source: ClipSource, data_dir: str | pathlib.Path,
            options: RecordOptions = RecordOptions(), mel_fn: records.MelFn | None = None,
            manual_dir: str | pathlib.Path | None = None) -> pathlib.Path:
  """Writes the dataset (unless already complete with the same params) and returns its directory."""
  builder = make_builder(source, data_dir, options, mel_fn)
  existing = pathlib.Path(builder.data_dir) / "metadata.json"
  if existing.exists():
    with existing.open() as f:
      saved = json.load(f)
    wanted = json.loads(json.dumps(dict(params=dict(source.params),
                                        options=dataclasses.asdict(options))))
    if {k: saved.get(k) for k in wanted} != wanted:
      raise ValueError(f"{builder.data_dir} already holds {source.name!r} prepared with "
                       f"{ {k: saved.get(k) for k in wanted} }, not {wanted}; use another output "
                       "directory or delete it")
  config = tfds.download.DownloadConfig(manual_dir=None if manual_dir is None else str(manual_dir))
  builder.download_and_prepare(download_config=config)
  return pathlib.Path(builder.data_dir)
