"""usage: swaptalk prepare <source> [flags]

A dataset as TFDS ArrayRecord shards + clip table:
  swaptalk prepare synthetic --out DIR [--identities 8 --clips_per_identity 2 --seconds 4
                                        --resolution 256 --seed 0 --test_identities 2]
  swaptalk prepare {hdtf,voxceleb2,folder} --in SRC --out DIR ...   (real footage: data_prep/real)
  swaptalk prepare verify --dataset DIR/<name>/<version> [--nodecode]   (check every record)
`swaptalk prepare <source> --help` lists a source's flags. The synthetic set's last
--test_identities identities form the test split (splits by identity); the same flags and seed give
the same dataset, written to DIR/synthetic/<version>/.
"""
import pathlib
import sys
import time

from absl import flags

from swaptalk_jax import cli_support
from swaptalk_jax.errors import UserError

# The data modules (and TFDS) are imported where used.
REAL_SOURCES = ("hdtf", "voxceleb2", "folder")
SOURCES = ("synthetic",) + REAL_SOURCES
EXAMPLE = "swaptalk prepare synthetic --out data --identities 64 --resolution 256 --workers 2"
SYNTHETIC_DOC = """usage: swaptalk prepare synthetic --out DIR [flags]

Renders the built-in synthetic talking-head set (identities, head motion, blinks, speech-like audio
driving the mouth, exact swap and re-sync ground truth) into DIR/synthetic/<version>/."""
VERIFY_DOC = """usage: swaptalk prepare verify --dataset DIR/<name>/<version> [--nodecode]

Reads (and decodes) every record of a prepared dataset; exits 1 if any is damaged."""


def _synthetic_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string("out", None, "Output TFDS data_dir.", flag_values=fv)
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


def _parse(fv: flags.FlagValues, argv, doc: str, example: str) -> None:
  """Parses into `fv`; --help prints the page; a bad flag or an argument exits 2 (usage)."""
  try:
    cli_support.no_positional([argv[0]] + cli_support.parse_flags(fv, argv, doc, example))
  except UserError as e:
    print(f"{argv[0]}: {e}", file=sys.stderr)
    sys.exit(2)


def _verify(argv) -> None:
  from swaptalk_jax.data import dataset  # pylint: disable=import-outside-toplevel
  fv = flags.FlagValues()
  flags.DEFINE_string("dataset", None, "A prepared dataset: <data_dir>/<name>/<version>.",
                      flag_values=fv)
  flags.DEFINE_bool("decode", True, "Also decode every JPEG.", flag_values=fv)
  _parse(fv, argv, VERIFY_DOC, "swaptalk prepare verify --dataset data/synthetic/1.0.0")
  _required(argv[0], dataset=fv.dataset)
  problems = dataset.verify(fv.dataset, decode=fv.decode)
  for p in problems:
    print(p)
  print(f"{argv[0]}: {fv.dataset}: {len(problems)} problem(s)\n{dataset.summary(fv.dataset)}")
  if problems:
    sys.exit(1)


def _required(program: str, **values) -> None:
  try:
    cli_support.require(**values)
  except UserError as e:
    print(f"{program}: {e} ({program} --help lists the flags)", file=sys.stderr)
    sys.exit(2)


def _synthetic(argv) -> None:
  fv = _synthetic_flags()
  _parse(fv, argv, SYNTHETIC_DOC, EXAMPLE)
  _required(argv[0], out=fv.out)
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from data_prep.synthetic.prepare import prepare_synthetic  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.data import dataset  # pylint: disable=import-outside-toplevel
  tfds.disable_progress_bar()
  existed = any(pathlib.Path(fv.out).glob("synthetic/*/metadata.json"))
  start = time.perf_counter()
  path = prepare_synthetic(fv.out, fv.identities, fv.clips_per_identity, fv.seconds,
                           fv.resolution, fv.seed, fv.test_identities, fv.jpeg_quality, fv.workers)
  verb = "found (already prepared with these flags)" if existed else "wrote"
  print(f"{argv[0]}: {verb} {path} in {time.perf_counter() - start:.1f} s\n"
        f"{dataset.summary(path)}")


def main(argv) -> None:
  program = argv[0] if argv else "swaptalk prepare"
  if len(argv) < 2 or argv[1] in cli_support.HELP_ARGS + ("help",):
    print(f"{__doc__.strip()}\n\nexample:\n  {EXAMPLE}", file=sys.stdout if len(argv) >= 2 else sys.stderr)
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
  elif source == "verify":
    _verify(rest)
  elif source == "synthetic":
    _synthetic(rest)
  else:
    print(f"{program}: unknown source {source!r}; sources: {', '.join(SOURCES)}, verify",
          file=sys.stderr)
    sys.exit(2)
