"""Staged items -> one TFDS ArrayRecord dataset through the shared builder (`tfds_builder`).

Records were made per item when it was processed (JPEG crops, mel, ...), so the build only
concatenates them in sorted key order: the shards depend only on which items finished, not on
worker timing or interruptions. The clip table gets the same fields as every other source.
"""
import pathlib

from data_prep.real import manifest
from swaptalk_jax.data import tfds_builder


class StagedBuilder(tfds_builder.ClipDatasetBuilder, skip_registration=True):
  """Yields the staged records of `keys[split]` instead of encoding clips."""

  def __init__(self, *, staging: str, keys: dict, **kwargs):
    self._staging, self._keys = staging, keys
    super().__init__(**kwargs)

  def _generate_examples(self, split: str, manual_dir):
    table = self.info.metadata["clip_table"].setdefault(split, [])
    index = 0
    for key in sorted(self._keys.get(split, ())):
      item = manifest.load_item(self._staging, key)
      for clip in item["clips"]:
        recs, meta = clip["records"], clip["meta"]
        table.append(dict(
            clip_id=clip["clip_id"], identity=clip["identity"], first_record=index,
            num_chunks=len(recs), num_frames=clip["num_frames"],
            chunk_frames=[len(r["frames_jpeg"]) for r in recs], split=split,
            quality=meta.get("quality", {}), sync_offset=meta.get("sync_offset"),
            sync_confidence=meta.get("sync_confidence"), extras={},
            source=dict(file=meta.get("source"), first_frame=meta.get("first_frame"),
                        start_seconds=meta.get("start_seconds"))))
        for rec in recs:
          yield index, rec
          index += 1


def build(name: str, staging: str | pathlib.Path, data_dir: str | pathlib.Path,
          keys_by_split: dict[str, list[str]], splits=("train", "test"),
          options: tfds_builder.RecordOptions = tfds_builder.RecordOptions()) -> pathlib.Path:
  """Writes `data_dir/<name>/1.0.0/` from the staged items (TFDS writes to a temporary directory
  and renames it, so readers never see a half-written dataset). Returns the dataset directory."""
  source = tfds_builder.ClipSource(name=name, clips=lambda split, manual_dir: (), splits=tuple(splits),
                                   description=f"swaptalk real footage: {name}")
  cls = type(f"StagedBuilder_{name}", (StagedBuilder,), dict(name=name), skip_registration=True)
  builder = cls(staging=str(staging), keys=keys_by_split, source=source, options=options,
                mel_fn=None, data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare()
  return pathlib.Path(builder.data_dir)
