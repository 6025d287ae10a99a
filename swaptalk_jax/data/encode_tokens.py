"""A prepared dataset -> VQ token records of every frame with a trained VQGAN (`swaptalk encode`).

The record layout and its reader are in `data/token_records.py`.
"""
import json
import os
import pathlib
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from swaptalk_jax.data import token_records
from swaptalk_jax.errors import UserError


def resolve_dataset_dir(data: str) -> pathlib.Path:
  """A dataset folder with metadata.json, or <data_dir>/<name> holding version folders."""
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  p = pathlib.Path(data)
  if (p / "metadata.json").exists():
    return p
  return pipelines.dataset_path(dict(data_dir=str(p.parent), name=p.name))


def _frames_in_batches(reader, image_size: int, batch_size: int) -> Iterator[tuple[Any, np.ndarray]]:
  """(record, frames float32 [T, S, S, 3] in [-1, 1]) for every record of a split, in order."""
  from swaptalk_jax.data import records  # pylint: disable=import-outside-toplevel
  for start in range(0, len(reader), batch_size):
    idx = list(range(start, min(len(reader), start + batch_size)))
    for i, rec in zip(idx, reader.read(idx)):
      n = len(rec["frames_jpeg"])
      frames = records.decode_frames(rec, range(n), reader.where(i), size=image_size)
      yield rec, frames.astype(np.float32) / 127.5 - 1.0


def check_params_match(model, params: dict, image_size: int) -> None:
  """Raises UserError when the checkpoint's params are not those of the config's model."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  abstract = jax.eval_shape(model.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, image_size, image_size, 3), np.float32))
  wanted = {jax.tree_util.keystr(k): v.shape for k, v in
            jax.tree_util.tree_flatten_with_path(nn.unbox(abstract)["params"])[0]}
  got = {jax.tree_util.keystr(k): np.shape(v) for k, v in
         jax.tree_util.tree_flatten_with_path(params)[0]}
  bad = sorted(k for k in wanted.keys() | got.keys() if wanted.get(k) != got.get(k))
  if bad:
    raise UserError(f"the checkpoint does not hold the config's VQGAN: {len(bad)} params differ, "
                    f"e.g. {bad[0]}: checkpoint {got.get(bad[0])} vs config {wanted.get(bad[0])}")


def encode_dataset(config, params: dict, dataset_dir: str, out: str,
                   splits: Optional[Sequence[str]] = None, batch_size: int = 32,
                   checkpoint: str = "") -> dict:
  """Writes VQ token records of `splits` of `dataset_dir` under `out`; returns the metadata."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from array_record.python.array_record_module import ArrayRecordWriter  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.data import dataset, records  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config  # pylint: disable=import-outside-toplevel

  model = vqgan_from_config(config.model, jnp.dtype(config.train.compute_dtype))
  size = int(config.data.image_size)
  if model.num_codes > np.iinfo(token_records.INDEX_DTYPE).max:
    raise UserError(f"num_codes={model.num_codes} does not fit the int16 token records")
  check_params_match(model, params, size)
  meta = dataset.load_meta(dataset_dir)
  splits = list(splits or sorted(meta.clip_tables))
  encode = jax.jit(lambda p, x: model.apply({"params": p}, x, method=HalfSplitVQGAN.encode_to_indices))
  params = jax.device_put(params)
  os.makedirs(out, exist_ok=True)
  counts = {}
  grid = None
  for split in splits:
    reader = dataset.SplitReader(dataset_dir, split)
    path = os.path.join(out, f"{split}.array_record")
    writer = ArrayRecordWriter(path, "group_size:1")
    frames_done = 0
    try:
      for rec, frames in _frames_in_batches(reader, size, 8):
        chunks = []
        for s in range(0, len(frames), batch_size):  # pad to a fixed batch: one compile
          part = frames[s:s + batch_size]
          padded = np.concatenate([part, np.zeros((batch_size - len(part),) + part.shape[1:],
                                                  part.dtype)])
          chunks.append(np.asarray(encode(params, padded))[:len(part)])
        indices = np.concatenate(chunks)
        grid = indices.shape[1:]
        writer.write(token_records.encode_vq_record(
            records.as_str(rec["clip_id"]), records.as_str(rec["identity"]),
            rec["chunk_index"], rec["first_frame"], indices))
        frames_done += len(frames)
    finally:
      writer.close()
    counts[split] = dict(records=len(reader), frames=frames_done)
  info = dict(format_version=token_records.VQ_FORMAT_VERSION, source=str(dataset_dir),
              checkpoint=checkpoint, variant=config.get("variant", ""), image_size=size,
              num_codes=model.num_codes, token_grid=list(grid or ()),
              upper_rows=(grid[0] // 2) if grid else 0, splits=counts, model=config.model.to_dict())
  with open(os.path.join(out, "metadata.json"), "w") as f:
    json.dump(info, f, indent=1, default=list)
  return info
