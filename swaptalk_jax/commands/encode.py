"""`swaptalk encode --config=configs/vqgan.py:f16 --checkpoint=WORKDIR --data=DATASET --out=DIR`:
a prepared dataset -> VQ token indices of every frame ("encode once, train many").

Output, per split: `<out>/<split>.array_record`, one record per source record (chunk) in the same
order, each a msgpack dict {format_version, clip_id, identity, chunk_index, first_frame,
indices int16 [T, h, w]} (rows [0, h/2) index codebook C^U, the rest C^B), and
`<out>/metadata.json` with the token grid, codebook size, checkpoint and source dataset.
"""
import json
import os
import pathlib
import sys
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from absl import app, flags
from ml_collections import config_flags

VQ_FORMAT_VERSION = 1

_CONFIG = config_flags.DEFINE_config_file("config", None, "The VQGAN config the checkpoint was "
                                          "trained with, e.g. configs/vqgan.py:f16.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A training workdir (latest checkpoint), its "
                                  "checkpoints/ folder, or one step folder checkpoints/<step>.")
_DATA = flags.DEFINE_string("data", None, "Prepared dataset: <data_dir>/<name>[/<version>].")
_OUT = flags.DEFINE_string("out", None, "Output directory for the VQ index records.")
_SPLITS = flags.DEFINE_list("splits", None, "Splits to encode (default: all in the dataset).")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Frames per encoder call.")
_EMA = flags.DEFINE_bool("ema", True, "Use the generator's EMA params (else the raw params).")


def checkpoint_step_dir(path: str) -> pathlib.Path:
  """workdir | workdir/checkpoints | workdir/checkpoints/<step> -> the step folder to restore."""
  p = pathlib.Path(path)
  if (p / "state").is_dir():
    return p
  if (p / "checkpoints").is_dir():
    p = p / "checkpoints"
  steps = sorted((int(d.name), d) for d in p.glob("*") if d.name.isdigit() and (d / "state").is_dir())
  if not steps:
    raise FileNotFoundError(f"no checkpoint under {path} (expected <workdir>/checkpoints/<step>/state "
                            "written by `swaptalk train`)")
  return steps[-1][1]


def load_generator_params(checkpoint: str, ema: bool = True) -> tuple[dict, int]:
  """The VQGAN (generator group) params of a `swaptalk train` checkpoint, as host arrays."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  step_dir = checkpoint_step_dir(checkpoint)
  state = ocp.StandardCheckpointer().restore(step_dir / "state")
  key = "ema_params" if ema else "params"
  if "generator" not in state.get(key, {}):
    raise ValueError(f"{step_dir}: no {key}/generator in the checkpoint; is it a vqgan run?")
  return state[key]["generator"], int(step_dir.name)


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
  """Raises ValueError when the checkpoint's params are not those of the config's model."""
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
    raise ValueError(f"the checkpoint does not hold the config's VQGAN: {len(bad)} params differ, "
                     f"e.g. {bad[0]}: checkpoint {got.get(bad[0])} vs config {wanted.get(bad[0])}")


def encode_dataset(config, params: dict, dataset_dir: str, out: str,
                   splits: Optional[Sequence[str]] = None, batch_size: int = 32,
                   checkpoint: str = "") -> dict:
  """Writes VQ index records of `splits` of `dataset_dir` under `out`; returns the metadata."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from array_record.python.array_record_module import ArrayRecordWriter  # pylint: disable=import-outside-toplevel
  from flax import serialization  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.data import dataset, records  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config  # pylint: disable=import-outside-toplevel

  model = vqgan_from_config(config.model, jnp.dtype(config.train.compute_dtype))
  size = int(config.data.image_size)
  if model.num_codes > np.iinfo(np.int16).max:
    raise ValueError(f"num_codes={model.num_codes} does not fit the int16 index records")
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
        indices = np.concatenate(chunks).astype(np.int16)
        grid = indices.shape[1:]
        writer.write(serialization.msgpack_serialize(dict(
            format_version=VQ_FORMAT_VERSION, clip_id=records.as_str(rec["clip_id"]),
            identity=records.as_str(rec["identity"]), chunk_index=int(rec["chunk_index"]),
            first_frame=int(rec["first_frame"]), indices=indices)))
        frames_done += len(frames)
    finally:
      writer.close()
    counts[split] = dict(records=len(reader), frames=frames_done)
  info = dict(format_version=VQ_FORMAT_VERSION, source=str(dataset_dir), checkpoint=checkpoint,
              variant=config.get("variant", ""), image_size=size, num_codes=model.num_codes,
              token_grid=list(grid or ()), upper_rows=(grid[0] // 2) if grid else 0, splits=counts,
              model=config.model.to_dict())
  with open(os.path.join(out, "metadata.json"), "w") as f:
    json.dump(info, f, indent=1, default=list)
  return info


def read_vq_records(path: str) -> Iterator[dict]:
  """The records of one `<split>.array_record` written by `encode_dataset`, in order."""
  from array_record.python.array_record_module import ArrayRecordReader  # pylint: disable=import-outside-toplevel
  from flax import serialization  # pylint: disable=import-outside-toplevel
  reader = ArrayRecordReader(path)
  try:
    for i in range(reader.num_records()):
      rec = serialization.msgpack_restore(reader.read([i])[0])
      if rec.get("format_version") != VQ_FORMAT_VERSION:
        raise ValueError(f"{path} record {i}: VQ record format_version "
                         f"{rec.get('format_version')} is not {VQ_FORMAT_VERSION}")
      yield rec
  finally:
    reader.close()


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  for name, flag in (("config", _CONFIG.value), ("checkpoint", _CHECKPOINT.value),
                     ("data", _DATA.value), ("out", _OUT.value)):
    if not flag:
      raise app.UsageError(f"--{name} is required")
  try:
    dataset_dir = resolve_dataset_dir(_DATA.value)
    params, step = load_generator_params(_CHECKPOINT.value, _EMA.value)
    info = encode_dataset(_CONFIG.value, params, str(dataset_dir), _OUT.value, _SPLITS.value,
                          _BATCH.value, checkpoint=f"{_CHECKPOINT.value} (step {step})")
  except (FileNotFoundError, ValueError, KeyError) as e:
    print(f"swaptalk encode: error: {e}", file=sys.stderr)
    sys.exit(1)
  for split, c in info["splits"].items():
    print(f"{split}: {c['records']} records, {c['frames']} frames -> "
          f"{os.path.join(_OUT.value, split + '.array_record')}")
  print(f"token grid {info['token_grid']} (upper rows {info['upper_rows']}), codebooks of "
        f"{info['num_codes']}; metadata in {os.path.join(_OUT.value, 'metadata.json')}")


def main(argv):
  app.run(_main, argv=argv)
