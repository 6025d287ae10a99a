"""`swaptalk prepare <source> --out DIR [flags]`: a dataset as TFDS ArrayRecord shards + clip table.

  swaptalk prepare synthetic --out DIR [--identities 8 --clips_per_identity 2 --seconds 4
                                        --resolution 256 --seed 0 --test_identities 2]
  swaptalk prepare {hdtf,voxceleb2,folder} ...   (real footage: `data_prep.real.cli`)
  swaptalk prepare verify --dataset DIR/<name>/<version> [--nodecode]   (check every record)

The synthetic set's last `--test_identities` identities form the test split (splits by identity);
the same flags and seed give the same dataset. Writes DIR/synthetic/<version>/.
"""
import multiprocessing
import pathlib
import sys
import time

from absl import flags

# The data modules (and TFDS) are imported where used: render workers import only this module.
REAL_SOURCES = ("hdtf", "voxceleb2", "folder")
SOURCES = ("synthetic",) + REAL_SOURCES


def _render_clip(args: tuple):
  """make_clip(identity, clip_index, seed, seconds, resolution, partners) in a worker process."""
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  identity, index, seed, seconds, resolution, partners = args
  return synthetic.make_clip(identity, index, seed, seconds, resolution, partners=partners)


def synthetic_source(identities: int, clips_per_identity: int, seconds: float, resolution: int,
                     seed: int, test_identities: int, workers: int = 0):
  """The built-in synthetic talking heads: identities [0, N - M) train, [N - M, N) test. Swap and
  re-sync ground-truth partners are drawn within a clip's own split, so no test face leaks.
  workers > 0 renders clips in that many processes (same clips, same order). Returns a
  `tfds_builder.ClipSource`."""
  from data_prep import synthetic  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.data import records, tfds_builder  # pylint: disable=import-outside-toplevel
  if not 2 <= test_identities <= identities - 2:
    raise ValueError(f"--test_identities must be in [2, identities - 2] (each split needs two "
                     f"identities for swap partners), got {test_identities} of {identities}")
  split_ids = dict(train=list(range(identities - test_identities)),
                   test=list(range(identities - test_identities, identities)))

  def clips(split, manual_dir):
    del manual_dir
    ids = split_ids[split]
    jobs = [(i, c, seed, seconds, resolution, ids) for i in ids for c in range(clips_per_identity)]
    if workers <= 0:
      yield from map(_render_clip, jobs)
      return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      yield from pool.imap(_render_clip, jobs)

  probe = synthetic.make_clip(0, 0, seed, min(seconds, 0.2), resolution, partners=[0, 1])
  return tfds_builder.ClipSource(
      name="synthetic", clips=clips, extras=records.infer_extras_spec(probe),
      params=dict(identities=identities, clips_per_identity=clips_per_identity, seconds=seconds,
                  resolution=resolution, seed=seed, test_identities=test_identities),
      description=f"swaptalk synthetic talking heads: {identities} identities x "
                  f"{clips_per_identity} clips x {seconds} s at {resolution}px, seed {seed}, "
                  f"last {test_identities} identities = test")


def prepare_synthetic(out: str | pathlib.Path, identities: int = 8, clips_per_identity: int = 2,
                      seconds: float = 4.0, resolution: int = 256, seed: int = 0,
                      test_identities: int = 2, jpeg_quality: int = 95,
                      workers: int = 0) -> pathlib.Path:
  """Writes the synthetic set under `out` and returns the dataset directory."""
  from swaptalk_jax.data import tfds_builder  # pylint: disable=import-outside-toplevel
  source = synthetic_source(identities, clips_per_identity, seconds, resolution, seed,
                            test_identities, workers)
  return tfds_builder.prepare(source, out, tfds_builder.RecordOptions(jpeg_quality=jpeg_quality))


def summary(dataset_dir: str | pathlib.Path) -> str:
  """One line per split: clips, identities, records, frames."""
  from swaptalk_jax.data import dataset  # pylint: disable=import-outside-toplevel
  meta = dataset.load_meta(dataset_dir)
  lines = []
  for split, table in meta.clip_tables.items():
    lines.append(f"  {split}: {len(table)} clips, {len({c.identity for c in table})} identities, "
                 f"{sum(c.num_chunks for c in table)} records, "
                 f"{sum(c.num_frames for c in table)} frames")
  return "\n".join(lines)


def _synthetic_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string("out", None, "Output TFDS data_dir.", flag_values=fv, required=True)
  flags.DEFINE_integer("identities", 8, "Number of identities.", flag_values=fv)
  flags.DEFINE_integer("clips_per_identity", 2, "Clips per identity.", flag_values=fv)
  flags.DEFINE_float("seconds", 4.0, "Seconds per clip.", flag_values=fv)
  flags.DEFINE_integer("resolution", 256, "Face crop side in pixels.", flag_values=fv)
  flags.DEFINE_integer("seed", 0, "Seed: same flags and seed, same dataset.", flag_values=fv)
  flags.DEFINE_integer("test_identities", 2, "Identities held out as the test split.",
                       flag_values=fv)
  flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality of stored crops.", flag_values=fv)
  flags.DEFINE_integer("workers", 0, "Processes rendering clips (0: render in this process); "
                       "the dataset is the same whatever the count.", flag_values=fv)
  return fv


def _parse(fv: flags.FlagValues, argv) -> None:
  """Parses argv[1:] into `fv`; --help lists the flags; bad flags or arguments exit 2."""
  if any(a in ("-h", "--help", "--helpfull", "--helpshort") for a in argv[1:]):
    print(f"usage: {argv[0]} [flags]\n\n{fv.get_help()}")
    sys.exit(0)
  try:
    extra = fv(argv)
  except flags.Error as e:
    print(f"{argv[0]}: {e}\n  ({argv[0]} --help lists the flags)", file=sys.stderr)
    sys.exit(2)
  if len(extra) > 1:
    print(f"{argv[0]}: unexpected arguments {extra[1:]}", file=sys.stderr)
    sys.exit(2)


def _verify(argv) -> None:
  """`swaptalk prepare verify --dataset DIR [--nodecode]`: read (and decode) every record."""
  from swaptalk_jax.data import dataset  # pylint: disable=import-outside-toplevel
  fv = flags.FlagValues()
  flags.DEFINE_string("dataset", None, "A prepared dataset: <data_dir>/<name>/<version>.",
                      flag_values=fv, required=True)
  flags.DEFINE_bool("decode", True, "Also decode every JPEG.", flag_values=fv)
  _parse(fv, argv)
  problems = dataset.verify(fv.dataset, decode=fv.decode)
  for p in problems:
    print(p)
  print(f"{argv[0]}: {fv.dataset}: {len(problems)} problem(s)\n{summary(fv.dataset)}")
  if problems:
    sys.exit(1)


def _usage(program: str) -> str:
  return (f"usage: {program} <source> [flags]\n  sources: {', '.join(SOURCES)}\n"
          f"  {program} synthetic --help  lists the synthetic set's flags\n"
          f"  {program} verify --dataset DIR  reads and decodes every record of a prepared set")


def main(argv) -> None:
  program = argv[0] if argv else "swaptalk prepare"
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage(program))
    sys.exit(0 if len(argv) >= 2 else 2)
  source, rest = argv[1], [f"{program} {argv[1]}"] + list(argv[2:])
  if source in REAL_SOURCES:
    try:
      from data_prep.real import cli as real_cli  # pylint: disable=import-outside-toplevel
    except ModuleNotFoundError as e:
      if e.name and e.name.startswith("data_prep.real"):
        print(f"{program}: source {source!r} is not available in this installation "
              f"({e.name} is missing)", file=sys.stderr)
        sys.exit(2)
      raise
    real_cli.main(source, rest)
    return
  if source == "verify":
    _verify(rest)
    return
  if source != "synthetic":
    print(f"{program}: unknown source {source!r}\n{_usage(program)}", file=sys.stderr)
    sys.exit(2)
  fv = _synthetic_flags()
  _parse(fv, rest)
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  tfds.disable_progress_bar()
  existed = any(pathlib.Path(fv.out).glob("synthetic/*/metadata.json"))
  start = time.perf_counter()
  try:
    path = prepare_synthetic(fv.out, fv.identities, fv.clips_per_identity, fv.seconds,
                             fv.resolution, fv.seed, fv.test_identities, fv.jpeg_quality,
                             fv.workers)
  except ValueError as e:
    print(f"{program} synthetic: error: {e}", file=sys.stderr)
    sys.exit(1)
  verb = "found (already prepared with these flags)" if existed else "wrote"
  print(f"{program} synthetic: {verb} {path} in {time.perf_counter() - start:.1f} s\n"
        f"{summary(path)}")
