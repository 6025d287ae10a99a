"""Resumable staging of finished items and the failures manifest.

Layout under `<staging>`: `items/<key>.pkl` (one per finished item: its clips' records and clip-table
facts; written to a temporary name and renamed, so a killed run never leaves a partial item) and
`failures.csv` (file, key, stage, reason; rewritten at the end of each run with that run's failures,
since failed items are retried by the next run).
"""
import csv
import dataclasses
import os
import pathlib
import pickle
import time

from data_prep.real import process
from data_prep.real.config import PrepConfig
from data_prep.real.spec import ClipSpec
from swaptalk_jax.audio.mel import log_mel
from swaptalk_jax.data import records


@dataclasses.dataclass(frozen=True)
class ItemResult:
  key: str
  path: str
  status: str          # 'done' | 'skipped' (finished by an earlier run) | 'failed'
  stage: str = ""
  reason: str = ""
  seconds: float = 0.0  # seconds of video written as clips
  wall: float = 0.0


def item_path(staging: str | pathlib.Path, key: str) -> pathlib.Path:
  return pathlib.Path(staging) / "items" / f"{key}.pkl"


def write_atomic(path: pathlib.Path, data: bytes) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  with open(tmp, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def stage_item(spec: ClipSpec, config: PrepConfig, staging: str, predictor=None) -> ItemResult:
  """Processes one item unless already staged; never raises for a bad input."""
  out = item_path(staging, spec.key)
  if out.exists():
    return ItemResult(spec.key, spec.path, "skipped")
  t0 = time.perf_counter()
  try:
    clips = []  # clip-table facts and records; each clip's frames are dropped once encoded
    for clip in process.iter_item_clips(spec, config, predictor):
      with process.stage("encode"):
        clips.append(dict(
            clip_id=clip.clip_id, identity=clip.identity, num_frames=clip.num_frames,
            meta=clip.meta,
            records=records.clip_to_records(clip, log_mel, {}, jpeg_quality=config.jpeg_quality)))
    with process.stage("write"):
      staged = dict(key=spec.key, split=spec.split, clips=clips)
      write_atomic(out, pickle.dumps(staged, protocol=pickle.HIGHEST_PROTOCOL))
  except process.StageError as e:
    return ItemResult(spec.key, spec.path, "failed", e.stage, e.reason,
                      wall=time.perf_counter() - t0)
  except Exception as e:  # a bug or an unforeseen input must not stop the other items
    return ItemResult(spec.key, spec.path, "failed", "internal", f"{type(e).__name__}: {e}",
                      wall=time.perf_counter() - t0)
  seconds = sum(c["num_frames"] for c in clips) / 25.0
  return ItemResult(spec.key, spec.path, "done", seconds=seconds, wall=time.perf_counter() - t0)


def remove_stale_temporaries(staging: str | pathlib.Path) -> int:
  """Deletes temporary files a killed run left in `items/` (never visible as items); returns count."""
  stale = list((pathlib.Path(staging) / "items").glob(".*.tmp-*"))
  for path in stale:
    path.unlink(missing_ok=True)
  return len(stale)


def load_item(staging: str | pathlib.Path, key: str) -> dict:
  with open(item_path(staging, key), "rb") as f:
    return pickle.load(f)


def write_failures(staging: str | pathlib.Path, results) -> pathlib.Path:
  """failures.csv with one row per failed item of this run (sorted by key)."""
  path = pathlib.Path(staging) / "failures.csv"
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(".failures.csv.tmp")
  with open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "key", "stage", "reason"])
    for r in sorted((r for r in results if r.status == "failed"), key=lambda r: r.key):
      w.writerow([r.path, r.key, r.stage, r.reason])
  os.replace(tmp, path)
  return path


def read_failures(staging: str | pathlib.Path) -> list[dict]:
  with open(pathlib.Path(staging) / "failures.csv", newline="") as f:
    return list(csv.DictReader(f))
