"""HDTF (Zhang et al., CVPR 2021) from its official annotation files and the user's downloads.

The annotation files (github.com/MRzzm/HDTF, HDTF_dataset/) sit in the input directory with the
downloaded videos (`<name>.mp4`, anywhere below it):
  {RD,WDA,WRA}_annotion_time.txt  `<name>.mp4 mm:ss-mm:ss [mm:ss-mm:ss ...]`: talking-head clips;
                                  clip k of video <name> is `<name>_<k>`.
  {..}_crop_wh.txt (optional)     `<name>_<k>.mp4 min_width width min_height height`: the face window
                                  (x0, w, y0, h) at the annotated resolution; used as the region of
                                  interest, so other faces in the frame are ignored.
  {..}_resolution.txt (optional)  `<name>.mp4 <height>`: the resolution the windows refer to (rescaled
                                  when the user's download has another height).
Identity = the video name without its trailing index (AmyKlobuchar0, AmyKlobuchar1 -> AmyKlobuchar).
HDTF has no official split: identities go to 'test' by a stable hash (`test_percent`).
"""
import os
import pathlib
import re

from data_prep.real.spec import ClipSpec, safe_key, split_by_identity

SOURCES = ("RD", "WDA", "WRA")
VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".mov")


def parse_time(text: str) -> float:
  """'mm:ss' or 'hh:mm:ss' (seconds may be fractional) -> seconds."""
  seconds = 0.0
  for part in text.strip().split(":"):
    seconds = seconds * 60 + float(part)
  return seconds


def _lines(path: pathlib.Path):
  if not path.exists():
    return
  for n, line in enumerate(path.read_text().splitlines(), 1):
    parts = line.split()
    if parts:
      yield n, parts


def parse_times(path: pathlib.Path) -> dict[str, list[tuple[float, float]]]:
  """annotion_time file -> video name (no extension) -> [(start, end)] seconds."""
  out = {}
  for n, parts in _lines(path):
    name = os.path.splitext(parts[0])[0]
    ranges = []
    for r in parts[1:]:
      a, sep, b = r.partition("-")
      if not sep:
        raise ValueError(f"{path}:{n}: bad time range {r!r} (want mm:ss-mm:ss)")
      ranges.append((parse_time(a), parse_time(b)))
    out[name] = ranges
  return out


def parse_crops(path: pathlib.Path) -> dict[str, tuple[float, float, float, float]]:
  """crop_wh file -> clip name -> (x0, y0, x1, y1) at the annotated resolution."""
  out = {}
  for n, parts in _lines(path):
    if len(parts) != 5:
      raise ValueError(f"{path}:{n}: want `<clip>.mp4 min_width width min_height height`")
    x0, w, y0, h = (float(v) for v in parts[1:])
    out[os.path.splitext(parts[0])[0]] = (x0, y0, x0 + w, y0 + h)
  return out


def parse_resolutions(path: pathlib.Path) -> dict[str, int]:
  return {os.path.splitext(p[0])[0]: int(p[1]) for _, p in _lines(path)}


def identity_of(name: str) -> str:
  return re.sub(r"\d+$", "", name) or name


def find_videos(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """Video name (file stem) -> path, for every video file below root."""
  out = {}
  for dirpath, _, files in os.walk(root):
    for f in sorted(files):
      stem, ext = os.path.splitext(f)
      if ext.lower() in VIDEO_EXTS:
        out.setdefault(stem, pathlib.Path(dirpath) / f)
  return out


def specs(root: str | pathlib.Path, test_percent: float = 10.0, video_height=None) -> tuple[list[ClipSpec], list[tuple[str, str]]]:
  """(clip specs, [(video name, problem)] for annotated videos that are missing).

  video_height(path) -> int gives a video's height for rescaling the face windows (None: no rescale).
  """
  root = pathlib.Path(root)
  videos = find_videos(root)
  out, missing = [], []
  found_any = False
  for src in SOURCES:
    times = parse_times(root / f"{src}_annotion_time.txt")
    if not times:
      continue
    found_any = True
    crops = parse_crops(root / f"{src}_crop_wh.txt")
    resolutions = parse_resolutions(root / f"{src}_resolution.txt")
    for name, ranges in sorted(times.items()):
      path = videos.get(name)
      if path is None:
        missing.append((name, f"video {name}.mp4 not found under {root}"))
        continue
      identity = identity_of(name)
      scale = 1.0
      if video_height is not None and name in resolutions:
        scale = video_height(path) / resolutions[name]
      for k, (start, end) in enumerate(ranges):
        roi = crops.get(f"{name}_{k}")
        if roi is not None:
          roi = tuple(v * scale for v in roi)
        out.append(ClipSpec(key=safe_key(f"{src}_{name}_{k}"), path=str(path), identity=identity,
                            split=split_by_identity(identity, test_percent), start=start, end=end,
                            roi=roi))
  if not found_any:
    raise FileNotFoundError(f"no HDTF annotation files ({', '.join(s + '_annotion_time.txt' for s in SOURCES)}) "
                            f"in {root}; copy them from the HDTF repository's HDTF_dataset/ folder")
  return out, missing
