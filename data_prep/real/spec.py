"""What one unit of work is: a video (or a time range of one) with its identity and split."""
import dataclasses
import re
import zlib


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """One source item. `key` names its staged output and prefixes its clip ids (unique per dataset).

  start/end: seconds into the video (end None = to the end).
  roi: (x0, y0, x1, y1) in the video's display pixels where the face is (HDTF's crop annotation);
    faces outside it are ignored. None = the whole frame.
  """
  key: str
  path: str
  identity: str
  split: str
  start: float = 0.0
  end: float | None = None
  roi: tuple[float, float, float, float] | None = None


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_key(text: str) -> str:
  """A file-name-safe key: path separators and odd characters become '_'."""
  return _SAFE.sub("_", text).strip("_") or "item"


def split_by_identity(identity: str, test_percent: float) -> str:
  """'test' for a stable pseudo-random `test_percent`% of identities (CRC32 of the name), else 'train'."""
  return "test" if zlib.crc32(identity.encode()) % 10000 < test_percent * 100 else "train"
