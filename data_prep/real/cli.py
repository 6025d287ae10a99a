"""usage: swaptalk prepare {hdtf,voxceleb2,folder} --in DIR --out DIR [flags]

Stages every item (resumable: finished items are skipped, failed ones retried), writes
`<out>/<name>_staging/failures.csv`, then builds the TFDS ArrayRecord dataset `<out>/<name>/1.0.0`
from every staged item. Exits non-zero only when no item at all could be prepared.
"""
import dataclasses
import pathlib
import sys

from absl import flags

from data_prep.real import build, folder, hdtf, manifest, parallel, voxceleb2
from data_prep.real.config import PrepConfig
from swaptalk_jax import cli_support
from swaptalk_jax.errors import UserError

SOURCES = ("hdtf", "voxceleb2", "folder")
EXAMPLES = {"hdtf": "swaptalk prepare hdtf --in /data/HDTF --out data --workers 16",
            "voxceleb2": "swaptalk prepare voxceleb2 --in /data/voxceleb2 --out data --workers 16",
            "folder": "swaptalk prepare folder --in my_videos --out data --name mine"}
_INPUT_HELP = {"hdtf": "folder with the HDTF annotation files and the downloaded videos",
               "voxceleb2": "VoxCeleb2 root (with dev/ and/or test/), or one split's folder",
               "folder": "folder of videos"}
_DEFINE = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string,
           bool: flags.DEFINE_bool}


def _flags(source: str) -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string("in", None, _INPUT_HELP[source], flag_values=fv)
  flags.DEFINE_string("out", None, "TFDS data_dir to write the dataset into", flag_values=fv)
  flags.DEFINE_string("name", source, "dataset name (folder under --out)", flag_values=fv)
  flags.DEFINE_integer("workers", 1, "worker processes on this machine", flag_values=fv)
  flags.DEFINE_bool("beam", False, "stage items with an Apache Beam pipeline", flag_values=fv)
  flags.DEFINE_string("beam_args", "", "space-separated Beam pipeline options", flag_values=fv)
  flags.DEFINE_integer("limit", 0, "only the first N items (0: all)", flag_values=fv)
  flags.DEFINE_bool("no_build", False, "stage items only (e.g. one of many jobs)", flag_values=fv)
  flags.DEFINE_bool("quiet", False, "no progress bar", flag_values=fv)
  defaults = PrepConfig()
  for field in dataclasses.fields(PrepConfig):
    if field.name == "sync_fn":
      flags.DEFINE_string("sync_fn", None, "module:function giving (offset_frames, confidence) "
                          "for (crops, audio), e.g. a SyncNet wrapper; none ships (no SyncNet "
                          "weights are available)", flag_values=fv)
      continue
    value = getattr(defaults, field.name)
    kind = float if isinstance(value, float) or value is None else type(value)
    _DEFINE[kind](field.name, value, f"PrepConfig.{field.name}", flag_values=fv)
  flags.DEFINE_string("syncnet_params", None, "converted SyncNet params file (`swaptalk convert "
                      "syncnet`): checks and corrects audio-visual sync per clip (sets --sync_fn)",
                      flag_values=fv)
  if source == "folder":
    flags.DEFINE_string("identity_regex", folder.DEFAULT_RULE,
                        "regex on the relative path with a group (?P<identity>...)", flag_values=fv)
    flags.DEFINE_string("manifest", None, "CSV with path,identity[,split,start,end]",
                        flag_values=fv)
  return fv


def _video_height(path) -> int:
  from swaptalk_jax.video.decode import probe  # pylint: disable=g-import-not-at-top
  return probe(str(path)).height


def main(source: str, argv: list[str]) -> int:
  """Runs the preparation; returns 0, or exits with status 1 when no item could be prepared."""
  if source not in SOURCES:
    raise UserError(f"unknown real source {source!r} (one of {SOURCES})")
  argv = list(argv)
  if not argv or argv[0].startswith("-"):
    argv = [f"swaptalk prepare {source}"] + argv   # no program name in front
  args = _flags(source)
  positional = cli_support.parse_flags(args, argv, __doc__.replace("{hdtf,voxceleb2,folder}", source),
                                       EXAMPLES[source])
  cli_support.no_positional([argv[0]] + positional)
  cli_support.require(**{"in": args["in"].value, "out": args.out})
  config = PrepConfig(**{f.name: args[f.name].value for f in dataclasses.fields(PrepConfig)})
  if args.syncnet_params:
    from data_prep.real.sync import SyncNetOffset  # pylint: disable=g-import-not-at-top
    config = dataclasses.replace(config, sync_fn=SyncNetOffset(args.syncnet_params))
  root = pathlib.Path(args["in"].value)
  if not root.is_dir():
    raise UserError(f"--in {root}: not a directory")
  if source == "hdtf":
    specs, problems = hdtf.specs(root, config.test_percent, _video_height)
  elif source == "voxceleb2":
    specs, problems = voxceleb2.specs(root), []
  elif args.manifest:
    specs, problems = folder.specs_from_manifest(root, args.manifest, config.test_percent)
  else:
    specs, problems = folder.specs_from_rule(root, args.identity_regex, config.test_percent)
  if args.limit:
    specs = specs[:args.limit]
  out = pathlib.Path(args.out)
  staging = out / f"{args.name}_staging"
  print(f"{source}: {len(specs)} items from {root}; staging in {staging}", flush=True)
  manifest.remove_stale_temporaries(staging)  # only this job writes here (one job per --out/--name)
  if args.beam:
    from data_prep.real import beam  # pylint: disable=g-import-not-at-top
    results = beam.run_beam(specs, config, str(staging), args.beam_args.split())
  else:
    results = parallel.run_items(specs, config, str(staging), args.workers, not args.quiet)
  results += [manifest.ItemResult(name, name, "failed", "find", why) for name, why in problems]
  failures = manifest.write_failures(staging, results)
  counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
  print(f"items: {counts['done']} prepared, {counts['skipped']} already done, "
        f"{counts['failed']} failed (see {failures})", flush=True)
  finished = [s for s in specs if manifest.item_path(staging, s.key).exists()]
  if not finished:
    print("nothing could be prepared", file=sys.stderr)
    sys.exit(1)
  if args.no_build:
    return 0
  keys = {}
  for s in finished:
    keys.setdefault(s.split, []).append(s.key)
  # TFDS cannot write an empty split: only splits with items are written.
  path = build.build(args.name, staging, out, keys, splits=tuple(sorted(keys)))
  print(f"wrote {path} ({', '.join(f'{k}: {len(v)} items' for k, v in sorted(keys.items()))})")
  return 0


if __name__ == "__main__":
  try:
    sys.exit(main(sys.argv[1], sys.argv[2:]))
  except UserError as e:
    print(f"swaptalk prepare: error: {e}", file=sys.stderr)
    sys.exit(1)
