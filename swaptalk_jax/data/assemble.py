"""From a batch of plans (`sampling.py`) to a batch of arrays: one batched read per source, then
decoding only the planned frames, resizing, flipping and scaling images to float32 [-1, 1]."""
from typing import Any, Sequence

import numpy as np

from swaptalk_jax.audio.mel import num_steps_for_frames
from swaptalk_jax.data import dataset, records


class ProcessShare:
  """Global batch of plans -> this process's contiguous share (process p of P takes the p-th
  slice), so concatenating every process's batch gives the single-process global batch."""

  def __init__(self, process_index: int, process_count: int):
    self.process_index, self.process_count = process_index, process_count

  def __call__(self, plans: Sequence[dict]) -> list[dict]:
    n = len(plans) // self.process_count
    return list(plans[self.process_index * n:(self.process_index + 1) * n])


class MergeFramesPerRead:
  """[n, k, ...] images of `key` (k frames per read) -> [n * k, ...]: a batch of single images."""

  def __init__(self, key: str):
    self.key = key

  def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    value = batch[self.key]
    return dict(batch, **{self.key: value.reshape((-1,) + value.shape[2:])})


class BatchAssembler:
  """Plans -> {key: np.ndarray}: images float32 [B,(k,)S,S,3] in [-1, 1], mels float32
  [B,(k,)steps,80], values as arrays. `sources` are (dataset_dir, split) in plan 'source' order."""

  def __init__(self, sources: Sequence[tuple[str, str]], image_size: int, window: int = 5,
               parallel_reads: bool = True):
    self.sources = [tuple(s) for s in sources]
    self.image_size, self.mel_steps = int(image_size), num_steps_for_frames(window)
    self.parallel_reads = parallel_reads
    # Readers open their shards lazily (thread-safe), in whichever process runs this transform.
    self._readers = [dataset.SplitReader(d, s) for d, s in self.sources]

  def _reader(self, source: int) -> dataset.SplitReader:
    return self._readers[source]

  def _read(self, plans: Sequence[dict]) -> dict[tuple[int, int], dict[str, Any]]:
    """(source, record) -> record, reading each source's distinct records in one batched read."""
    wanted: dict[int, set[int]] = {}
    for p in plans:
      refs = [*p["images"].values(), *p["mels"].values()]
      wanted.setdefault(p["source"], set()).update(
          r[0] for v in refs for r in (v if isinstance(v, list) else [v]))
    out = {}
    for source, recs in wanted.items():
      recs = sorted(recs)
      for rec, value in zip(recs, self._reader(source).read(recs, self.parallel_reads)):
        out[(source, rec)] = value
    return out

  def _image(self, source: int, ref: tuple, recs: dict, flip: bool) -> np.ndarray:
    record, frame, field = ref
    where = self._reader(source).where(record)
    img = records.decode_frames(recs[(source, record)], [frame], where, field, self.image_size)[0]
    if flip:
      img = img[:, ::-1]
    return img.astype(np.float32) * (2.0 / 255.0) - 1.0

  def _mel(self, source: int, ref: tuple, recs: dict) -> np.ndarray:
    record, step, field = ref
    return records.mel_rows(recs[(source, record)], step, self.mel_steps,
                            self._reader(source).where(record), field)

  def __call__(self, plans: Sequence[dict]) -> dict[str, np.ndarray]:
    recs = self._read(plans)
    rows = []
    for p in plans:
      s, row = p["source"], {}
      for key, ref in p["images"].items():
        row[key] = (np.stack([self._image(s, r, recs, p["flip"]) for r in ref])
                    if isinstance(ref, list) else self._image(s, ref, recs, p["flip"]))
      for key, ref in p["mels"].items():
        row[key] = (np.stack([self._mel(s, r, recs) for r in ref])
                    if isinstance(ref, list) else self._mel(s, ref, recs))
      row.update({k: np.asarray(v) for k, v in p["values"].items()})
      rows.append(row)
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
