"""Table 1 writer: one table per setting (self- / cross-driven), methods as rows, the paper's metric
columns (+ the synthetic set's exact-ground-truth columns), each cell the value over all clips with
its percentile bootstrap interval over clips, written as markdown + CSV + JSON (JSON keeps every
per-clip value). A metric that cannot be computed honestly (weights absent, undefined in the
setting) is a SKIPPED cell carrying its reason, never a number from a random network.
"""
import csv
import dataclasses
import json
import math
import pathlib
from typing import Callable, Mapping, Sequence

import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.metrics import bootstrap

SETTINGS = ("self", "cross")


@dataclasses.dataclass(frozen=True)
class Column:
  key: str
  title: str
  higher_is_better: bool
  doc: str


# Paper's Table 1 order, then the synthetic set's exact-ground-truth columns.
COLUMNS = (
    Column("fid", "FID", False, "Frechet Inception distance to the target frames (Inception port, "
           "user weights)"),
    Column("fd_dlib", "FD-dlib*", False, "FID substitute: Frechet distance of dlib face "
           "descriptors; not comparable to FID"),
    Column("ssim", "SSIM", True, "to the target frames; Gaussian sigma 1.5, valid windows, data "
           "range 1 (= skimage gaussian_weights=True, use_sample_covariance=False)"),
    Column("cpbd", "CPBD", True, "sharpness, the cpbd package's convention, per frame"),
    Column("lmd", "LMD", False, "mouth landmarks 48-67 (dlib), pixels at 256-px crops; self-driven "
           "only"),
    Column("lse_c", "LSE-C", True, "SyncNet confidence (syncnet_python's procedure)"),
    Column("lse_d", "LSE-D", False, "SyncNet min distance"),
    Column("id_retrieve", "ID retrieve", True, "% frames whose nearest dlib gallery identity is the "
           "source's"),
    Column("consistency", "Consistency", True, "x100 mean cosine of per-frame dlib descriptors to "
           "their mean"),
    Column("gt_ssim", "SSIM (exact GT)", True, "to the exact swap-and-resync frames (synthetic)"),
    Column("gt_l1", "L1 (exact GT)", False, "mean |x - y| in [0, 1] to the exact frames (synthetic)"),
    Column("mouth_corr", "Mouth corr", True, "Pearson of mouth opening vs the exact truth over a "
           "clip (synthetic)"),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


@dataclasses.dataclass
class Cell:
  """One metric of one method: value, interval, per-clip values, or why it was skipped."""
  value: float | None = None
  low: float | None = None
  high: float | None = None
  num_clips: int = 0
  per_clip: dict[str, float] | None = None
  skipped: str | None = None
  note: str | None = None

  def to_json(self) -> dict:
    return dataclasses.asdict(self)


def from_clips(per_clip: Mapping[str, float], seed: int = 0,
               resamples: int = bootstrap.DEFAULT_RESAMPLES, note: str | None = None) -> Cell:
  """Mean of per-clip values with its bootstrap interval over clips."""
  ids = list(per_clip)
  interval = bootstrap.mean_interval([per_clip[i] for i in ids], resamples=resamples, seed=seed)
  return Cell(value=interval.value, low=interval.low, high=interval.high, num_clips=len(ids),
              per_clip={i: float(per_clip[i]) for i in ids}, note=note)


def from_statistic(statistic: Callable[[np.ndarray], float], clip_ids: Sequence[str],
                   seed: int = 0, resamples: int = 200, note: str | None = None) -> Cell:
  """A set-level figure (FID, FD-dlib, pooled retrieval) recomputed on resampled clips.

  With few clips the interval of a Frechet distance leans high: a resample repeats clips, so its
  feature set is less diverse than the full one (measured: 4 clips, FD-dlib 0.017 [0.017, 0.34]).
  """
  interval = bootstrap.bootstrap(statistic, len(clip_ids), resamples=resamples, seed=seed)
  return Cell(value=interval.value, low=interval.low, high=interval.high,
              num_clips=len(clip_ids), note=note)


def skipped(reason: str) -> Cell:
  return Cell(skipped=reason)


def _fmt(x: float) -> str:
  if x == 0 or 1e-3 <= abs(x) < 1e4:
    return f"{x:.4g}" if abs(x) < 1 else f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"
  return f"{x:.3g}"


def format_cell(cell: Cell | None) -> str:
  if cell is None:
    return "-"
  if cell.skipped is not None:
    return "skipped"
  if cell.low is None or math.isnan(cell.low):
    return _fmt(cell.value)
  return f"{_fmt(cell.value)} [{_fmt(cell.low)}, {_fmt(cell.high)}]"


def check_rows(setting: str, rows: Mapping[str, Mapping[str, Cell]]) -> None:
  if setting not in SETTINGS:
    raise UserError(f"setting must be one of {SETTINGS}, got {setting!r}")
  if not rows:
    raise UserError("Table 1 needs at least one method row")
  for method, cells in rows.items():
    unknown = set(cells) - set(COLUMN_KEYS)
    if unknown:
      raise UserError(f"method {method!r}: unknown metric columns {sorted(unknown)} "
                       f"(known: {list(COLUMN_KEYS)})")


def markdown(setting: str, rows: Mapping[str, Mapping[str, Cell]], title: str = "") -> str:
  """The table as markdown: only columns some method has; skipped cells explained below it."""
  check_rows(setting, rows)
  columns = [c for c in COLUMNS if any(c.key in cells for cells in rows.values())]
  arrow = lambda c: "↑" if c.higher_is_better else "↓"
  lines = [f"## Table 1 ({setting}-driven){': ' + title if title else ''}", "",
           "| Method | " + " | ".join(f"{c.title} {arrow(c)}" for c in columns) + " |",
           "|---|" + "---|" * len(columns)]
  for method, cells in rows.items():
    lines.append(f"| {method} | " + " | ".join(format_cell(cells.get(c.key)) for c in columns) + " |")
  lines += ["", "Values: mean over clips [95% percentile bootstrap interval over clips]; FID and "
            "FD-dlib are distances between the whole frame sets, their intervals from resampled "
            "clips, which lean high (a resample repeats clips) and can lie above the value.", ""]
  reasons = {}
  for method, cells in rows.items():
    for c in columns:
      cell = cells.get(c.key)
      if cell is not None and cell.skipped is not None:
        reasons.setdefault((c.title, cell.skipped), []).append(method)
  for (title_, reason), methods in reasons.items():
    lines.append(f"- {title_} skipped ({', '.join(methods)}): {reason}")
  lines += [f"- {c.title}: {c.doc}" for c in columns]
  return "\n".join(lines) + "\n"


GROUP_COLUMNS = ("mouth_corr", "id_retrieve", "gt_ssim")   # the per-group summary's columns


def group_means(rows: Mapping[str, Mapping[str, Cell]], groups: Mapping[str, str],
                keys: Sequence[str] = GROUP_COLUMNS) -> dict:
  """{method: {metric: {group: mean over the group's clips}}} from the per-clip values; `groups`
  maps clip id -> group name. Metrics without per-clip values (skipped, set-level) are left out."""
  out = {}
  for method, cells in rows.items():
    for key in keys:
      cell = cells.get(key)
      if cell is None or cell.skipped is not None or not cell.per_clip:
        continue
      by = {}
      for clip, value in cell.per_clip.items():
        by.setdefault(groups[clip], []).append(value)
      out.setdefault(method, {})[key] = {g: float(np.mean(v)) for g, v in sorted(by.items())}
  return out


def group_markdown(means: Mapping, counts: Mapping[str, int], heading: str) -> str:
  """A markdown table of group_means: one row per method, a column per (metric, group)."""
  titles = {c.key: c.title for c in COLUMNS}
  pairs = [(k, g) for k in GROUP_COLUMNS if any(k in m for m in means.values())
           for g in sorted(counts)]
  lines = [heading, "", "| Method | " + " | ".join(f"{titles[k]}, {g} ({counts[g]})"
                                                   for k, g in pairs) + " |",
           "|---|" + "---|" * len(pairs)]
  for method, by in means.items():
    lines.append(f"| {method} | " + " | ".join(
        _fmt(by[k][g]) if k in by and g in by[k] else "-" for k, g in pairs) + " |")
  return "\n".join(lines) + "\n"


def write(out_dir, setting: str, rows: Mapping[str, Mapping[str, Cell]],
          meta: Mapping | None = None, title: str = "",
          extra_markdown: str = "") -> dict[str, pathlib.Path]:
  """Writes table1_<setting>.{md,csv,json} under out_dir (extra_markdown appended to the md);
  returns the three paths."""
  check_rows(setting, rows)
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = {ext: out / f"table1_{setting}.{ext}" for ext in ("md", "csv", "json")}
  md = markdown(setting, rows, title)
  paths["md"].write_text(md + ("\n" + extra_markdown if extra_markdown else ""))
  with open(paths["csv"], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["setting", "method", "metric", "value", "low", "high", "num_clips", "status", "note"])
    for method, cells in rows.items():
      for c in COLUMNS:
        cell = cells.get(c.key)
        if cell is None:
          continue
        status = "ok" if cell.skipped is None else "skipped: " + cell.skipped
        w.writerow([setting, method, c.key, cell.value, cell.low, cell.high, cell.num_clips, status,
                    cell.note or ""])
  doc = dict(setting=setting, title=title, meta=dict(meta or {}),
             columns=[dataclasses.asdict(c) for c in COLUMNS],
             rows={m: {k: cell.to_json() for k, cell in cells.items()} for m, cells in rows.items()})
  paths["json"].write_text(json.dumps(doc, indent=1, default=float))
  return paths
