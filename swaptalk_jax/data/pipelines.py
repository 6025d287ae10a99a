"""grain input pipelines of every stage, from a data config.

Per source: eligible chunk records -> global shuffle (seed; reshuffled each epoch) -> repeat ->
`random_map` planning one example (per-element deterministic rng) -> mix sources by weight ->
batch plans by the GLOBAL batch -> this process's contiguous share -> one batched read + decode of
only the planned frames -> thread prefetch (+ optional worker processes). Batches are dicts of
numpy arrays; the iterator has get_state/set_state and checkpoints with the model through
`grain.checkpoint.CheckpointSave/CheckpointRestore`.

Batch keys: vqgan {image}; swap {source, target, target_gt, has_gt, same_identity};
lip_expert {frames, mel, label}; lipsync {target, reference, mel, mel_window} (+ resync_target,
resync_mel, resync_mel_window with lipsync.resync_gt); identity {image, label} (label: the
identity's class, numbered over all sources' identities of the split in source order).
"""
import pathlib

import grain
import ml_collections

from swaptalk_jax.data import assemble, sampling
from swaptalk_jax.errors import MissingFileError, UserError


def default_data_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # name: dataset name (folder under data_dir); data_dir: the `--out` of `swaptalk prepare`
  # (`swaptalk prepare synthetic --out data` writes data/synthetic/1.0.0).
  c.sources = [dict(name="synthetic", data_dir="data", weight=1.0)]
  c.mixture = ""                # 'name:data_dir[:weight],...' replaces sources (data/mixture.py)
  c.train_split = "train"
  c.eval_split = "test"
  c.image_size = 256            # resized on decode when the stored crops differ
  c.batch_size = 8              # GLOBAL batch; each process gets batch_size / process_count
  c.shuffle_seed = 0
  c.num_epochs = ml_collections.FieldReference(None, field_type=int)  # None = repeat forever
  c.worker_count = 0            # grain worker processes (0 = in-process threads only)
  c.worker_buffer_size = 2      # batches buffered per worker process
  c.read_threads = 2            # threads reading + decoding batches in each process
  c.prefetch_buffer = 4         # batches prefetched in each process
  c.parallel_reads = True       # fetch a batch's records concurrently (remote storage); False
                                # reads them in turn: less CPU on a local disk
  # frames_per_read: images taken from each chunk read (1: every image from its own read). k > 1
  # divides the bytes read per image by k, at the price of k correlated frames per batch.
  c.vqgan = ml_collections.ConfigDict(dict(flip_prob=0.5, frames_per_read=1))
  c.swap = ml_collections.ConfigDict(dict(same_identity_fraction=0.5))
  c.identity = ml_collections.ConfigDict(dict(flip_prob=0.5))
  c.lip_expert = ml_collections.ConfigDict(dict(window=5, positive_fraction=0.5,
                                                min_offset_frames=5))
  # resync_gt: also yield resync_target [B,5,S,S,3], resync_mel [B,5,16,80] and resync_mel_window
  # [B,16,80]: exact ground truth for lip-sync to other audio (datasets that render it: synthetic).
  # all_windows: the eval split yields every non-overlapping window of every chunk (all frames
  # scored once) instead of one random window per chunk (5x fewer frames at 25-frame chunks).
  c.lipsync = ml_collections.ConfigDict(dict(window=5, reference_min_distance=5, resync_gt=False,
                                             all_windows=False))
  return c


def dataset_path(source: dict) -> pathlib.Path:
  """data_dir/name, or its newest version folder (TFDS writes data_dir/name/<version>/)."""
  root = pathlib.Path(source["data_dir"]) / source["name"]
  if (root / "metadata.json").exists():
    return root
  versions = sorted((p for p in root.glob("*.*.*") if (p / "metadata.json").exists()),
                    key=lambda p: tuple(int(x) for x in p.name.split(".") if x.isdigit()))
  if not versions:
    command = f"swaptalk prepare {source['name'] if source['name'] == 'synthetic' else '<source>'}"
    raise MissingFileError(f"no prepared dataset at {root} (expected {root}/<version>/"
                            f"metadata.json): run `{command} --out {source['data_dir']}` or set "
                            "data.sources")
  return versions[-1]


def resolve_config(data_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`data_config` over `default_data_config()`; unknown keys are an error (typos do not vanish)."""
  out = default_data_config()
  given = data_config.to_dict() if isinstance(data_config, ml_collections.ConfigDict) \
      else dict(data_config)
  unknown = sorted(set(given) - set(out))
  if unknown:
    raise UserError(f"unknown data config keys {unknown}; known: {sorted(out)}")
  for key, value in given.items():
    if isinstance(out[key], ml_collections.ConfigDict):
      bad = sorted(set(value) - set(out[key]))
      if bad:
        raise UserError(f"unknown data config keys {[f'{key}.{b}' for b in bad]}; known: "
                         f"{sorted(out[key])}")
      out[key].update(value)
    else:
      out[key] = value
  if out.mixture:
    from swaptalk_jax.data.mixture import parse_mixture  # pylint: disable=g-import-not-at-top
    out.sources = parse_mixture(out.mixture)
  return out


def plan_dataset(stage: str, config: ml_collections.ConfigDict, split: str, train: bool
                 ) -> tuple[grain.MapDataset, list[tuple[str, str]]]:
  """Example plans (`sampling.py`) of all sources mixed by weight, and the (dataset_dir, split)
  of each source in plan 'source' order."""
  if stage not in sampling.STAGES:
    raise UserError(f"unknown stage {stage!r} (one of {sampling.STAGES})")
  stage_config = dict(config[stage])
  if not train:
    stage_config["flip_prob"] = 0.0
  per_source, sources, weights = [], [], []
  for i, source in enumerate(config.sources):
    path = str(dataset_path(source))
    sampler = sampling.PlanSampler(stage, i, path, split, stage_config, train)
    if stage == "identity":  # classes of the next source follow this one's
      stage_config["label_offset"] = stage_config.get("label_offset", 0) + len(
          sampler.index.identities)
    ds = grain.MapDataset.range(len(sampler)).shuffle(seed=config.shuffle_seed + 1000 * i)
    if train:
      ds = ds.repeat(config.num_epochs)
    else:  # one pass, wrapped round to whole global batches (a few examples seen twice)
      n, batch = len(sampler), config.batch_size
      ds = ds.repeat(-(-batch // n) + 1)[:-(-n // batch) * batch]
    per_source.append(ds.random_map(sampler, seed=config.shuffle_seed + 1000 * i + 1))
    sources.append((path, split))
    weights.append(float(source.get("weight", 1.0)))
  if not per_source:
    raise UserError("data config has no sources")
  ds = per_source[0] if len(per_source) == 1 else grain.MapDataset.mix(per_source, weights)
  return ds, sources


def _make_iterator(stage: str, data_config: ml_collections.ConfigDict, split_key: str,
                   train: bool, process_index: int, process_count: int) -> grain.DatasetIterator:
  config = resolve_config(data_config)
  if config.batch_size % process_count:
    raise UserError(f"global batch_size {config.batch_size} is not divisible by "
                     f"process_count {process_count}")
  if not 0 <= process_index < process_count:
    raise UserError(f"process_index {process_index} not in [0, {process_count})")
  per_read = int(config[stage].get("frames_per_read", 1))
  if config.batch_size % (per_read * process_count):
    raise UserError(f"global batch_size {config.batch_size} is not divisible by "
                     f"{stage}.frames_per_read {per_read} x process_count {process_count}")
  ds, sources = plan_dataset(stage, config, config[split_key], train)
  ds = ds.batch(config.batch_size // per_read, drop_remainder=True, batch_fn=list)
  ds = ds.map(assemble.ProcessShare(process_index, process_count))
  ds = ds.map(assemble.BatchAssembler(sources, config.image_size, config[stage].get("window", 5),
                                      config.parallel_reads))
  if per_read > 1:
    ds = ds.map(assemble.MergeFramesPerRead("image"))
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=config.read_threads,
                                               prefetch_buffer_size=config.prefetch_buffer))
  if config.worker_count > 0:
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=config.worker_count, per_worker_buffer_size=config.worker_buffer_size))
  return iter(it_ds)


def make_train_iterator(stage: str, data_config: ml_collections.ConfigDict, process_index: int = 0,
                        process_count: int = 1) -> grain.DatasetIterator:
  """Endless (or num_epochs) shuffled, augmented batches of the train split for `stage`."""
  return _make_iterator(stage, data_config, "train_split", True, process_index, process_count)


def make_eval_iterator(stage: str, data_config: ml_collections.ConfigDict, process_index: int = 0,
                       process_count: int = 1) -> grain.DatasetIterator:
  """One pass over the eval split (fixed order and draws, no augmentation), wrapped round to fill
  the last global batch, so every process gets the same number of full batches."""
  return _make_iterator(stage, data_config, "eval_split", False, process_index, process_count)
