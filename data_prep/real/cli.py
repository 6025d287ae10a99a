"""`swaptalk prepare {hdtf,voxceleb2,folder} --in DIR --out DIR [flags]`.

Stages every item (resumable: finished items are skipped, failed ones retried), writes
`<out>/<name>_staging/failures.csv`, then builds the TFDS ArrayRecord dataset `<out>/<name>/1.0.0`
from every staged item. Exits non-zero only when no item at all could be prepared.
"""
import argparse
import dataclasses
import pathlib
import sys

from data_prep.real import build, folder, hdtf, manifest, parallel, voxceleb2
from data_prep.real.config import PrepConfig

SOURCES = ("hdtf", "voxceleb2", "folder")


def _parser(source: str) -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog=f"swaptalk prepare {source}", description=__doc__)
  p.add_argument("--in", dest="input", required=True,
                 help={"hdtf": "folder with the HDTF annotation files and the downloaded videos",
                       "voxceleb2": "VoxCeleb2 root (with dev/ and/or test/), or one split's folder",
                       "folder": "folder of videos"}[source])
  p.add_argument("--out", required=True, help="TFDS data_dir to write the dataset into")
  p.add_argument("--name", default=source, help="dataset name (folder under --out)")
  p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
  p.add_argument("--beam", action="store_true", help="stage items with an Apache Beam pipeline")
  p.add_argument("--beam_args", default="", help="space-separated Beam pipeline options")
  p.add_argument("--limit", type=int, default=0, help="only the first N items (0: all)")
  p.add_argument("--no_build", action="store_true", help="stage items only (e.g. one of many jobs)")
  p.add_argument("--quiet", action="store_true", help="no progress bar")
  defaults = PrepConfig()
  for field in dataclasses.fields(PrepConfig):
    if field.name == "sync_fn":
      p.add_argument("--sync_fn", default=None,
                     help="module:function giving (offset_frames, confidence) for (crops, audio), "
                          "e.g. a SyncNet wrapper; none ships (no SyncNet weights are available)")
      continue
    value = getattr(defaults, field.name)
    kind = float if isinstance(value, float) or value is None else type(value)
    p.add_argument(f"--{field.name}", type=kind, default=value)
  p.add_argument("--syncnet_params", default=None,
                 help="converted SyncNet params file (`swaptalk convert syncnet`): checks and "
                      "corrects audio-visual sync per clip (sets --sync_fn)")
  if source == "folder":
    p.add_argument("--identity_regex", default=folder.DEFAULT_RULE,
                   help="regex on the relative path with a group (?P<identity>...)")
    p.add_argument("--manifest", default=None, help="CSV with path,identity[,split,start,end]")
  return p


def _video_height(path) -> int:
  from swaptalk_jax.video.decode import probe  # pylint: disable=g-import-not-at-top
  return probe(str(path)).height


def main(source: str, argv: list[str]) -> int:
  """Runs the preparation; returns 0, or exits with status 1 when no item could be prepared."""
  if source not in SOURCES:
    raise SystemExit(f"swaptalk prepare: unknown real source {source!r} (one of {SOURCES})")
  argv = list(argv)
  if argv and not argv[0].startswith("-"):
    argv = argv[1:]  # a program name in front
  args = _parser(source).parse_args(argv)
  config = PrepConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PrepConfig)})
  if args.syncnet_params:
    from data_prep.real.sync import SyncNetOffset  # pylint: disable=g-import-not-at-top
    config = dataclasses.replace(config, sync_fn=SyncNetOffset(args.syncnet_params))
  root = pathlib.Path(args.input)
  if not root.is_dir():
    raise SystemExit(f"--in {root}: not a directory")
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
  sys.exit(main(sys.argv[1], sys.argv[2:]))
