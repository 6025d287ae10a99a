"""The record format: one record per chunk (<= 25 frames, ~1 s) of a clip, and its inverse.

A record is a flat dict of numpy arrays / bytes / strings (what TFDS `Tensor` features hold):
  format_version, clip_id, identity, chunk_index, num_chunks, first_frame, clip_num_frames,
  frames_jpeg   object [T]        JPEG bytes of each aligned face crop
  landmarks     float32 [T,68,2]  crop pixel coordinates
  crop_to_frame float32 [T,2,3]   crop -> original frame affine (paste-back)
  audio         int16 [T*640]     the chunk's 16 kHz PCM (kept so other front ends can be used)
  mel           float32 [L,80]    log-mel covering the chunk plus `mel_margin` steps each side
  mel_start     int32             clip-global mel step of mel[0] (negative in the leading pad)
  mel_valid     int32 [2]         clip-global mel steps [lo, hi) computed from real audio;
                                  outside it the mel is that of zero padding (silence)
  x_<name>      the extras of Clip.extras, encoded by their kind (see `ExtraSpec`).
Global mel step s is centred on audio sample s*200 (80 steps/s); frame t starts at step
`mel_start_for_frame(t)` = floor(3.2 t) (the audio front end's mapping).
"""
import dataclasses
import io
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from swaptalk_jax.audio.mel import DEFAULT as MEL_CONFIG
from swaptalk_jax.audio.mel import log_mel, mel_start_for_frame
from swaptalk_jax.data.clip import FPS, SAMPLE_RATE, Clip
from swaptalk_jax.errors import UserError

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
CHUNK_FRAMES = 25
MEL_MARGIN = 32             # mel steps each side of a chunk (10 frames): windows and shifts
MEL_HOP = MEL_CONFIG.hop_length             # 200 samples per mel step at 16 kHz
NUM_MELS = MEL_CONFIG.num_mels               # 80
WINDOW_STEPS = MEL_CONFIG.window_steps       # 16 mel steps per 5-frame window
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS       # 640

MelFn = Callable[[np.ndarray], np.ndarray]  # float32 [N] 16 kHz -> [1 + N // 200, 80]


class RecordError(UserError):
  """A record that cannot be read or decoded; the message names the file and record."""


# ----------------------------------------------------------------------------- time mapping


def chunk_bounds(num_frames: int, chunk_frames: int = CHUNK_FRAMES) -> list[tuple[int, int]]:
  """Near-equal chunks of at most `chunk_frames` frames: 53, 25 -> 18, 17, 18 (no tiny tail)."""
  if num_frames <= 0:
    raise ValueError(f"a clip needs at least one frame, got {num_frames}")
  n = -(-num_frames // chunk_frames)
  edges = [round(i * num_frames / n) for i in range(n + 1)]
  return [(edges[i], edges[i + 1]) for i in range(n)]


# ----------------------------------------------------------------------------- JPEG


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
  """uint8 [H,W,3] RGB -> baseline JPEG bytes."""
  buf = io.BytesIO()
  Image.fromarray(image, "RGB").save(buf, format="JPEG", quality=int(quality))
  return buf.getvalue()


def decode_jpeg(data: bytes, where: str, size: int | None = None) -> np.ndarray:
  """JPEG bytes -> uint8 [H,W,3]; resized (bicubic; DCT downscale first) when `size` is given.

  Raises RecordError naming `where` (file and record) on corrupt data.
  """
  try:
    with Image.open(io.BytesIO(data)) as im:
      if size is not None and im.size != (size, size):
        im.draft("RGB", (size, size))  # lets libjpeg decode at 1/2, 1/4, 1/8 scale when downscaling
        im = im.convert("RGB").resize((size, size), Image.BICUBIC)
      else:
        im = im.convert("RGB")
      out = np.asarray(im)
  except Exception as e:  # PIL raises several types (OSError, SyntaxError, ...) for bad data.
    raise RecordError(f"{where}: bad JPEG ({len(data)} bytes): {e}") from e
  return out


# ----------------------------------------------------------------------------- extras


@dataclasses.dataclass(frozen=True)
class ExtraSpec:
  """How one Clip.extras entry is stored.

  kind: 'frames' (uint8 [T,S,S,3] -> per-frame JPEG, sliced per chunk), 'per_frame' (any [T,...]
  array, sliced per chunk), 'audio' (float [N] aligned with the clip's audio -> int16 slice plus a
  mel slice under `x_<name>_mel`), 'clip' (anything else, e.g. a string: stored whole in every
  record and in the clip table).
  dtype/shape: of the stored array without the leading T (per_frame), whole (clip).
  """
  kind: str
  dtype: str = "uint8"
  shape: tuple[int, ...] = ()

  def to_json(self) -> dict:
    return dict(kind=self.kind, dtype=self.dtype, shape=list(self.shape))

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> "ExtraSpec":
    return cls(kind=d["kind"], dtype=d["dtype"], shape=tuple(d["shape"]))


def infer_extras_spec(clip: Clip) -> dict[str, ExtraSpec]:
  """The ExtraSpec of each of `clip.extras`, from its shape and dtype."""
  t, n = clip.num_frames, clip.audio.shape[0]
  specs = {}
  for name, value in sorted(clip.extras.items()):
    arr = np.asarray(value)
    if arr.dtype.kind in "USO":
      specs[name] = ExtraSpec("clip", "object", tuple(arr.shape))
    elif arr.ndim == 4 and arr.shape[0] == t and arr.shape[-1] == 3 and arr.dtype == np.uint8:
      specs[name] = ExtraSpec("frames", "uint8", tuple(arr.shape[1:]))
    elif arr.ndim == 1 and arr.shape[0] == n != t and arr.dtype.kind == "f":
      specs[name] = ExtraSpec("audio", "int16", ())
    elif arr.ndim >= 1 and arr.shape[0] == t:
      specs[name] = ExtraSpec("per_frame", arr.dtype.name, tuple(arr.shape[1:]))
    else:
      specs[name] = ExtraSpec("clip", arr.dtype.name, tuple(arr.shape))
  return specs


# ----------------------------------------------------------------------------- writing


def _pcm16(audio: np.ndarray) -> np.ndarray:
  return np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def _fit_audio(audio: np.ndarray, num_frames: int) -> np.ndarray:
  """Audio trimmed or zero-padded to exactly num_frames * 640 samples."""
  n = num_frames * SAMPLES_PER_FRAME
  audio = np.asarray(audio, np.float32)[:n]
  return np.pad(audio, (0, n - audio.shape[0]))


def _padded_mel(audio: np.ndarray, num_frames: int, margin: int, mel_fn: MelFn) -> np.ndarray:
  """Log-mel of audio with `margin` steps of silence each side (row j: global step j - margin)."""
  pad = margin * MEL_HOP
  fitted = _fit_audio(audio, num_frames)
  mel = np.asarray(mel_fn(np.pad(fitted, (pad, pad))), np.float32)
  expected = mel_start_for_frame(num_frames) + 2 * margin
  if mel.ndim != 2 or mel.shape[1] != NUM_MELS or mel.shape[0] < expected:
    raise ValueError(f"mel_fn returned {mel.shape} for {fitted.shape[0] + 2 * pad} samples; "
                     f"expected [>= {expected}, {NUM_MELS}] (80 steps/s, centred frames)")
  return mel


def clip_to_records(clip: Clip, mel_fn: MelFn = log_mel,
                    extras_spec: Mapping[str, ExtraSpec] | None = None,
                    chunk_frames: int = CHUNK_FRAMES, jpeg_quality: int = 95,
                    mel_margin: int = MEL_MARGIN) -> list[dict[str, Any]]:
  """One record per chunk of `clip` (see the module docstring for the fields)."""
  clip.validate()
  if extras_spec is None:
    extras_spec = infer_extras_spec(clip)
  if set(extras_spec) != set(clip.extras):
    raise ValueError(f"clip {clip.clip_id}: extras {sorted(clip.extras)} != dataset's extras "
                     f"{sorted(extras_spec)}")
  t = clip.num_frames
  audios = {"": clip.audio}
  audios.update({f"x_{k}": clip.extras[k] for k, s in extras_spec.items() if s.kind == "audio"})
  mels = {key: _padded_mel(a, t, mel_margin, mel_fn) for key, a in audios.items()}
  pcm = {key: _pcm16(_fit_audio(a, t)) for key, a in audios.items()}
  valid_hi = min(mel_start_for_frame(t), -(-clip.audio.shape[0] // MEL_HOP))
  bounds = chunk_bounds(t, chunk_frames)
  records = []
  for index, (f0, f1) in enumerate(bounds):
    m0 = mel_start_for_frame(f0) - mel_margin
    m1 = mel_start_for_frame(f1) + mel_margin
    rec = dict(
        format_version=np.int32(FORMAT_VERSION), clip_id=clip.clip_id, identity=clip.identity,
        chunk_index=np.int32(index), num_chunks=np.int32(len(bounds)), first_frame=np.int32(f0),
        clip_num_frames=np.int32(t),
        frames_jpeg=np.array([encode_jpeg(f, jpeg_quality) for f in clip.frames[f0:f1]], object),
        landmarks=np.asarray(clip.landmarks[f0:f1], np.float32),
        crop_to_frame=np.asarray(clip.crop_to_frame[f0:f1], np.float32),
        audio=pcm[""][f0 * SAMPLES_PER_FRAME:f1 * SAMPLES_PER_FRAME],
        mel=mels[""][m0 + mel_margin:m1 + mel_margin],
        mel_start=np.int32(m0), mel_valid=np.array([0, valid_hi], np.int32))
    for name, spec in extras_spec.items():
      value, key = clip.extras[name], f"x_{name}"
      if spec.kind == "frames":
        rec[key] = np.array([encode_jpeg(f, jpeg_quality) for f in value[f0:f1]], object)
      elif spec.kind == "per_frame":
        rec[key] = np.asarray(value[f0:f1], spec.dtype)
      elif spec.kind == "audio":
        rec[key] = pcm[key][f0 * SAMPLES_PER_FRAME:f1 * SAMPLES_PER_FRAME]
        rec[f"{key}_mel"] = mels[key][m0 + mel_margin:m1 + mel_margin]
      else:
        rec[key] = np.asarray(value, object if spec.dtype == "object" else spec.dtype)
    records.append(rec)
  return records


# ----------------------------------------------------------------------------- reading


def as_str(value: Any) -> str:
  """A string field as read back (TFDS gives bytes) -> str."""
  if isinstance(value, np.ndarray):
    value = value.item()
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def check_format_version(record: Mapping[str, Any], where: str) -> None:
  """Raises RecordError naming `where` when the record's format_version is not one we read."""
  if "format_version" not in record:
    raise RecordError(f"{where}: not a swaptalk record (no format_version field)")
  version = int(record["format_version"])
  if version not in SUPPORTED_FORMAT_VERSIONS:
    raise RecordError(f"{where}: record format_version {version} is not supported by this "
                      f"reader (supported: {SUPPORTED_FORMAT_VERSIONS}); re-prepare the dataset "
                      "or upgrade swaptalk_jax")


def decode_frames(record: Mapping[str, Any], indices: Sequence[int], where: str,
                  key: str = "frames_jpeg", size: int | None = None) -> np.ndarray:
  """Decodes only the chunk-local frames `indices` of a JPEG field -> uint8 [k,S,S,3]."""
  jpegs = record[key]
  out = []
  for i in indices:
    if not 0 <= i < len(jpegs):
      raise RecordError(f"{where}: frame {i} out of range for a chunk of {len(jpegs)} frames")
    out.append(decode_jpeg(jpegs[i], f"{where} {key}[{i}]", size))
  return np.stack(out)


def mel_rows(record: Mapping[str, Any], start_step: int, length: int, where: str,
             key: str = "mel") -> np.ndarray:
  """Clip-global mel steps [start_step, start_step + length) of a record -> float32 [length, 80]."""
  mel, m0 = record[key], int(record["mel_start"])
  lo = start_step - m0
  if lo < 0 or lo + length > mel.shape[0]:
    raise RecordError(f"{where}: mel steps [{start_step}, {start_step + length}) outside the "
                      f"record's [{m0}, {m0 + mel.shape[0]})")
  return np.asarray(mel[lo:lo + length], np.float32)


def records_to_clip(records: Iterable[Mapping[str, Any]], extras_spec: Mapping[str, ExtraSpec],
                    where: str = "records") -> Clip:
  """Reassembles a Clip from all of its records (any order). Audio comes back from int16 PCM."""
  records = sorted(records, key=lambda r: int(r["chunk_index"]))
  if not records:
    raise RecordError(f"{where}: no records")
  for r in records:
    check_format_version(r, where)
  num_chunks = int(records[0]["num_chunks"])
  if [int(r["chunk_index"]) for r in records] != list(range(num_chunks)):
    raise RecordError(f"{where}: chunks {[int(r['chunk_index']) for r in records]} are not "
                      f"0..{num_chunks - 1}")
  frames = np.concatenate([decode_frames(r, range(len(r["frames_jpeg"])), f"{where} chunk {i}")
                           for i, r in enumerate(records)])
  cat = lambda key: np.concatenate([np.asarray(r[key]) for r in records])
  extras = {}
  for name, spec in extras_spec.items():
    key = f"x_{name}"
    if spec.kind == "frames":
      extras[name] = np.concatenate([decode_frames(r, range(len(r[key])), where, key)
                                     for r in records])
    elif spec.kind == "audio":
      extras[name] = cat(key).astype(np.float32) / 32768
    elif spec.kind == "per_frame":
      extras[name] = cat(key)
    else:
      value = records[0][key]
      extras[name] = as_str(value) if spec.dtype == "object" and np.ndim(value) == 0 else value
  return Clip(clip_id=as_str(records[0]["clip_id"]), identity=as_str(records[0]["identity"]),
              frames=frames, audio=cat("audio").astype(np.float32) / 32768,
              landmarks=cat("landmarks"), crop_to_frame=cat("crop_to_frame"), extras=extras)
