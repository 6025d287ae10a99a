"""Any folder of videos: identity from a naming rule (regex with a named group) or a manifest CSV.

Rule: `--identity_regex` is matched (re.search) against each video's path relative to the folder;
its group `identity` is the identity; default `^(?P<identity>[^/]+)/` (first sub-folder), and for
files directly in the folder, the file name without its extension. Split: stable hash of the
identity (`test_percent`), unless the manifest gives one.
Manifest CSV: header with `path` and `identity` (optional `split`, `start`, `end`); paths relative
to the folder or absolute.
"""
import csv
import os
import pathlib
import re

from data_prep.real.spec import ClipSpec, safe_key, split_by_identity

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")
DEFAULT_RULE = r"^(?P<identity>[^/]+)/"


def _video_files(root: pathlib.Path):
  for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
      if os.path.splitext(f)[1].lower() in VIDEO_EXTS:
        yield pathlib.Path(dirpath, f)


def specs_from_rule(root, identity_regex: str = DEFAULT_RULE, test_percent: float = 10.0):
  """(specs, [(file, problem)]) for every video file below root."""
  root = pathlib.Path(root)
  rule = re.compile(identity_regex)
  if "identity" not in rule.groupindex:
    raise ValueError(f"identity regex {identity_regex!r} needs a named group (?P<identity>...)")
  out, problems = [], []
  for path in _video_files(root):
    rel = path.relative_to(root).as_posix()
    m = rule.search(rel)
    if m is None and "/" not in rel and identity_regex == DEFAULT_RULE:
      identity = os.path.splitext(rel)[0]
    elif m is None or not m.group("identity"):
      problems.append((str(path), f"identity regex {identity_regex!r} does not match {rel!r}"))
      continue
    else:
      identity = m.group("identity")
    out.append(ClipSpec(key=safe_key(os.path.splitext(rel)[0]), path=str(path), identity=identity,
                        split=split_by_identity(identity, test_percent)))
  return sorted(out, key=lambda s: s.path), problems


def specs_from_manifest(root, manifest_csv, test_percent: float = 10.0):
  root = pathlib.Path(root)
  out = []
  with open(manifest_csv, newline="") as f:
    reader = csv.DictReader(f)
    missing = {"path", "identity"} - set(reader.fieldnames or ())
    if missing:
      raise ValueError(f"{manifest_csv}: missing columns {sorted(missing)} (need path, identity)")
    for n, row in enumerate(reader, 2):
      path = pathlib.Path(row["path"])
      path = path if path.is_absolute() else root / path
      start = float(row.get("start") or 0.0)
      end = float(row["end"]) if row.get("end") else None
      key = safe_key(f"{os.path.splitext(row['path'])[0]}" + (f"_{start:g}" if start else ""))
      split = row.get("split") or split_by_identity(row["identity"], test_percent)
      out.append(ClipSpec(key=key, path=str(path), identity=row["identity"], split=split,
                          start=start, end=end))
  return out, []
