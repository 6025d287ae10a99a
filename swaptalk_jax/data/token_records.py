"""VQ token records ("encode once, train many"): the token indices of every frame of a prepared
dataset, written by `swaptalk encode` (`data/encode_tokens.py`) and read by the later stages.

Per split, `<dir>/<split>.array_record` holds one record per source record (chunk), in the same
order: a msgpack dict {format_version, clip_id, identity, chunk_index, first_frame,
indices int16 [T, h, w]} (rows [0, h/2) index codebook C^U, the rest C^B). `<dir>/metadata.json`
holds the token grid, codebook size, checkpoint and source dataset.
"""
from typing import Iterator

import numpy as np

from swaptalk_jax.errors import UserError

VQ_FORMAT_VERSION = 1
INDEX_DTYPE = np.int16


def encode_vq_record(clip_id: str, identity: str, chunk_index: int, first_frame: int,
                     indices: np.ndarray) -> bytes:
  """One chunk's token indices [T, h, w] as a record."""
  from flax import serialization  # pylint: disable=import-outside-toplevel
  if np.max(indices, initial=0) > np.iinfo(INDEX_DTYPE).max:
    raise ValueError(f"token index {np.max(indices)} does not fit the {INDEX_DTYPE.__name__} records")
  return serialization.msgpack_serialize(dict(
      format_version=VQ_FORMAT_VERSION, clip_id=clip_id, identity=identity,
      chunk_index=int(chunk_index), first_frame=int(first_frame),
      indices=np.asarray(indices).astype(INDEX_DTYPE)))


def read_vq_records(path: str) -> Iterator[dict]:
  """The records of one `<split>.array_record` written by `swaptalk encode`, in order."""
  from array_record.python.array_record_module import ArrayRecordReader  # pylint: disable=import-outside-toplevel
  from flax import serialization  # pylint: disable=import-outside-toplevel
  reader = ArrayRecordReader(path)
  try:
    for i in range(reader.num_records()):
      rec = serialization.msgpack_restore(reader.read([i])[0])
      if rec.get("format_version") != VQ_FORMAT_VERSION:
        raise UserError(f"{path} record {i}: VQ record format_version "
                        f"{rec.get('format_version')} is not {VQ_FORMAT_VERSION}")
      yield rec
  finally:
    reader.close()
