"""VoxCeleb2 from its official tree: `{dev,test}/mp4/idXXXXX/<youtube id>/<clip>.mp4`.

Identity = idXXXXX; split = the official one (dev -> 'train', test -> 'test'; identities are
disjoint between them by construction of the dataset). Also accepts the root being `dev/` or
`test/` itself, or `.../mp4/` folders without the split level (then all go to `split_default`).
"""
import os
import pathlib
import re

from data_prep.real.spec import ClipSpec, safe_key

_ID = re.compile(r"^id\d+$")
SPLITS = {"dev": "train", "test": "test"}


def specs(root: str | pathlib.Path, split_default: str = "train") -> list[ClipSpec]:
  root = pathlib.Path(root)
  out = []
  for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
      if not f.lower().endswith(".mp4"):
        continue
      rel = pathlib.Path(dirpath, f).relative_to(root).parts
      ids = [i for i, p in enumerate(rel) if _ID.match(p)]
      if not ids or len(rel) - ids[-1] != 3:
        continue  # not idXXXXX/<video>/<clip>.mp4
      i = ids[-1]
      identity, video, clip = rel[i], rel[i + 1], os.path.splitext(rel[i + 2])[0]
      split_name = next((SPLITS[p] for p in (root.name, *rel[:i]) if p in SPLITS), split_default)
      out.append(ClipSpec(key=safe_key(f"{identity}_{video}_{clip}"), path=str(pathlib.Path(dirpath, f)),
                          identity=identity, split=split_name))
  return out
