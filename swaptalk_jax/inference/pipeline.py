"""The one inference path: source photo + target video + driving audio -> output video.

  pass 1  decode the target (any container, codec, fps, rotation -> 25 fps on its own clock),
          scene cuts, track one face, smoothed frame->crop transforms (faces.track_target; keeps
          landmarks only);
  audio   the driving audio (or the target's own), fitted to the video by the audio policy
          (media.py) -> the one 80-bin log-mel (audio/mel.py), a 16-step window per frame;
  source  the photo's one face (or --face_index) -> aligned crop -> E -> S_VQ;
  pass 2  chunk by chunk: decode -> crops of face frames -> E -> swap with S_VQ -> lip-sync
          (reference frame R~_VQ, per-frame mel windows) -> D -> colour match -> feathered
          inverse-warp paste-back; frames without a face pass through untouched;
  write   25 fps H.264 + AAC of the fitted audio, under a temporary name renamed when complete.

Memory is flat in video length: pass 2 holds one chunk of frames; what grows is per-frame
landmarks (0.5 kB) and the 16 kHz audio (64 kB/s). Device work runs in fixed batches (one compile
per stage). Nothing is random: the same inputs and params give the same output.
"""
import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, Optional

import numpy as np

from swaptalk_jax.audio import mel as mel_lib
from swaptalk_jax.data.clip import SAMPLE_RATE
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.face import paste
from swaptalk_jax.face.detect import DetectorConfig
from swaptalk_jax.face.landmarks import LandmarkPredictor
from swaptalk_jax.face.track import TrackerConfig
from swaptalk_jax.inference import faces, media
from swaptalk_jax.video import decode, write

if TYPE_CHECKING:   # Chain (flax, run dirs) or bundle.BundleChain (jax alone): same interface
  from swaptalk_jax.inference.stages import Chain

FPS = 25
PARTS = ("decode", "face", "E", "swap", "lipsync", "D", "paste", "encode")


@dataclasses.dataclass
class Options:
  audio_policy: str = "pad"        # trim | loop | pad (media.py)
  face_index: Optional[int] = None  # which face of the source photo (largest first)
  framing: str = "aligned"         # crop template: 'aligned' (data prep) | 'synthetic'
  chunk_frames: int = 32           # frames decoded, generated and written per chunk
  detect_every: int = 5            # target: detector every N frames, landmark tracking between
  min_face: int = 40               # smallest target face (frame pixels)
  # dlib HOG score threshold (photo and target); None: 0 for 'aligned', -0.6 for 'synthetic'
  # framing (HOG scores some synthetic identities below 0: at -0.6 it finds them in >= 90 % of
  # frames, measured on 10 identities at 128 px).
  detect_threshold: Optional[float] = None
  scene_threshold: float = 0.45
  feather: float = 0.1             # paste-back mask ramp, fraction of the crop
  color_match: float = 1.0         # 0..1: pull the generated face's colour stats to the target's
  preview: Optional[str] = None    # PNG path: rows of (source | target | output)
  preview_rows: int = 3
  crf: int = 18
  preset: str = "medium"
  progress: bool = True
  # A target with no face in any frame: False (generate's default) raises; True writes it through
  # untouched (the second stage of eval's pixel cascades, whose input is a generated video).
  allow_no_face: bool = False
  # Track the faces on this video in place of the target (same size and timeline): eval's
  # cascades hand their second stage the original target's face track this way.
  track_from: Optional[str] = None


@dataclasses.dataclass
class Report:
  out: str
  frames: int                 # frames written (25 fps)
  face_frames: int            # frames whose face was generated
  passed_through: int         # frames written untouched (no face found)
  target_frames: int          # frames of the target at 25 fps
  audio: str                  # where the sound came from ('none' if the output is silent)
  reference_frame: int
  source_faces: int           # faces found in the source photo
  seconds: float
  part_seconds: dict
  preview: Optional[str] = None

  @property
  def frames_per_second(self) -> float:
    return self.frames / max(self.seconds, 1e-9)


class _Timer:
  def __init__(self):
    self.seconds = {p: 0.0 for p in PARTS}

  def __call__(self, part: str):
    timer = self

    class _Span:
      def __enter__(self):
        self.t = time.perf_counter()

      def __exit__(self, *exc):
        timer.seconds[part] += time.perf_counter() - self.t
    return _Span()


def _progress(total: int, desc: str, enabled: bool):
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, file=sys.stderr,
              dynamic_ncols=True, leave=False)


def _check_paths(source: str, target: str, audio: Optional[str], out: str) -> None:
  for what, path in (("source photo", source), ("target video", target), ("audio file", audio)):
    if path is not None and not os.path.isfile(path):
      raise MissingFileError(f"{what} {path} does not exist")
  parent = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(parent):
    raise MissingFileError(f"output folder {parent} does not exist")


def _probe(target: str) -> decode.VideoInfo:
  try:
    return decode.probe(target)
  except decode.MediaError as e:
    raise UserError(f"target video: {e}") from None


def _track_source(path: str, info: decode.VideoInfo) -> decode.VideoInfo:
  """Options.track_from: a video of the target's frame size and length whose faces are tracked."""
  if not os.path.isfile(path):
    raise MissingFileError(f"track_from video {path} does not exist")
  other = _probe(path)
  if (other.decoded_size != info.decoded_size
      or round(other.duration * FPS) != round(info.duration * FPS)):
    raise UserError(f"track_from video {path} ({other.decoded_size}, {other.duration:.2f} s) does "
                    f"not match the target {info.path} ({info.decoded_size}, {info.duration:.2f} s)")
  return other


def mel_windows(mel: np.ndarray, frames: np.ndarray) -> np.ndarray:
  """float32 [N,16,80]: the 5-frame window centred on each frame (the lip-sync stage's input)."""
  half = mel_lib.DEFAULT.window_frames // 2
  return np.stack([mel_lib.mel_window(mel, int(t) - half) for t in frames])


class _Generator:
  """Pass 2 as a frame iterator (fed to the video writer), with the preview rows kept aside."""

  def __init__(self, chain: "Chain", info, track, source_tokens, reference_tokens, mel, n_out,
               options: Options, timer: _Timer, preview_at):
    self.chain, self.info, self.track, self.options, self.timer = chain, info, track, options, timer
    self.source_tokens, self.reference_tokens, self.mel, self.n_out = (
        source_tokens, reference_tokens, mel, n_out)
    self.preview_at, self.preview = set(preview_at), {}
    self.face_frames = 0
    self.mask = paste.feather_mask(chain.image_size, options.feather)

  def _frames(self):
    with self.timer("decode"):
      it = decode.iter_frames(self.info.path, info=self.info)
    t = 0
    while t < self.n_out:
      with self.timer("decode"):
        try:
          frame = next(it, None)
        except decode.MediaError as e:
          raise UserError(f"target video: {e}") from None
      if frame is None:
        raise UserError(f"target video {self.info.path}: the second decode ended at frame {t}, "
                        f"the first gave {self.track.num_frames}")
      yield t, frame
      t += 1

  def _generate(self, crops: np.ndarray, index: np.ndarray) -> np.ndarray:
    chain, timer = self.chain, self.timer
    with timer("E"):
      tokens = chain.encode_images(crops)
    if chain.swap is not None:
      with timer("swap"):
        tokens = chain.swap_tokens(self.source_tokens, tokens)
    if chain.lipsync is not None:
      with timer("lipsync"):
        tokens = chain.lipsync_tokens(tokens, self.reference_tokens, mel_windows(self.mel, index))
    with timer("D"):
      return chain.decode_tokens(tokens)

  def _chunk(self, chunk):
    size = self.chain.image_size
    has_face = [t for t, _ in chunk if self.track.has_face[t]]
    frames = dict(chunk)
    out = dict(frames)
    if has_face:
      with self.timer("face"):
        crops = np.stack([faces.crop(frames[t], self.track.to_crop[t], size) for t in has_face])
      generated = self._generate(crops, np.array(has_face))
      with self.timer("paste"):
        generated = faces.color_match(generated, crops, self.mask, self.options.color_match)
        for t, face in zip(has_face, generated):
          out[t] = faces.paste_face(frames[t], face, self.track.to_crop[t], self.options.feather)
      self.face_frames += len(has_face)
    for t, _ in chunk:
      if t in self.preview_at:
        self.preview[t] = (frames[t], out[t])
    return [out[t] for t, _ in chunk]

  def __iter__(self):
    bar = _progress(self.n_out, "generate", self.options.progress)
    chunk = []
    try:
      for t, frame in self._frames():
        chunk.append((t, frame))
        if len(chunk) == self.options.chunk_frames:
          yield from self._chunk(chunk)
          bar.update(len(chunk))
          chunk = []
      if chunk:
        yield from self._chunk(chunk)
        bar.update(len(chunk))
    finally:
      bar.close()


def _timed_iter(iterable, timer: _Timer, part: str):
  """Time spent by the consumer between items (the video encoder) goes to `part`."""
  for item in iterable:
    t = time.perf_counter()
    yield item
    timer.seconds[part] += time.perf_counter() - t


def write_preview(path: str, source_crop: np.ndarray, rows: list) -> str:
  """PNG: one row per sampled frame, (source face | target frame | output frame), frame height."""
  import cv2  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  lines = []
  for target, output in rows:
    h = target.shape[0]
    src = cv2.resize(source_crop, (h, h), interpolation=cv2.INTER_AREA)
    gap = np.full((h, 4, 3), 255, np.uint8)
    lines.append(np.concatenate([src, gap, target, gap, output], axis=1))
  sep = np.full((4, lines[0].shape[1], 3), 255, np.uint8)
  strip = np.concatenate(sum(([line, sep] for line in lines), [])[:-1], axis=0)
  tmp = f"{path}.tmp-{os.getpid()}.png"
  Image.fromarray(strip).save(tmp)
  os.replace(tmp, path)
  return path


def face_settings(options: Options, size: int):
  """(crop template, dlib HOG threshold) of `options` for a chain of `size`-px faces: what
  generate aligns and detects with (benchmarks that re-crop its faces use the same)."""
  threshold = options.detect_threshold
  if threshold is None:
    threshold = -0.6 if options.framing == "synthetic" else 0.0
  return faces.align_config(options.framing, size), threshold


def generate(chain: "Chain", source: Optional[str], target: str, out: str,
             audio: Optional[str] = None, options: Options = Options()) -> Report:
  """Runs the whole path (module docstring) and writes `out`; returns what it did.

  source None: no swap (the chain must have no swap stage). Bad input raises UserError.
  """
  start = time.perf_counter()
  if chain.swap is not None and source is None:
    raise UserError("the swap stage needs a source photo (--source), or pass --no-swap")
  _check_paths(source, target, audio, out)
  timer = _Timer()
  size = chain.image_size
  align_config, threshold = face_settings(options, size)
  predictor = LandmarkPredictor()
  info = _probe(target)
  detector = DetectorConfig(min_face=options.min_face, threshold=threshold)

  # Source face first: a bad photo fails before the long tracking pass.
  source_crop, source_faces, source_tokens = None, 0, None
  if source is not None:
    with timer("face"):
      face = faces.source_face(media.read_photo(source), align_config, options.face_index,
                               path=source, predictor=predictor, threshold=threshold)
    source_crop, source_faces = face.crop, face.num_faces
    if chain.swap is not None:
      with timer("E"):
        source_tokens = chain.encode_images(face.crop[None])

  # Audio (decoded before pass 1 so a bad audio file fails early too).
  if audio is not None:
    sound, audio_from = media.read_audio(audio), audio
  elif info.has_audio:
    sound, audio_from = media.target_audio(info), f"{target} (its own audio)"
  elif chain.lipsync is not None:
    raise UserError(f"target {target} has no audio track and no --audio was given: lip-sync "
                    "needs a driving audio (or pass --no-sync)")
  else:
    sound, audio_from = None, "none"

  # Pass 1: track.
  bar = _progress(int(np.ceil(info.duration * FPS)) or None, "track", options.progress)
  tracker = TrackerConfig(detect_every=options.detect_every, detector=detector)
  track_info = info if options.track_from is None else _track_source(options.track_from, info)
  with timer("face"):
    track = faces.track_target(track_info, align_config, tracker, options.scene_threshold,
                               predictor, on_frame=lambda: bar.update(1))
  bar.close()
  if not track.has_face.any() and not options.allow_no_face:
    raise UserError(f"target video {target}: no face of >= {options.min_face} px in any of its "
                    f"{track.num_frames} frames")
  n_out = track.num_frames
  if sound is not None:
    n_out = media.output_frames(track.num_frames, sound.shape[0], options.audio_policy)
    sound = media.fit_audio(sound, n_out, options.audio_policy)
  if n_out == 0:
    raise UserError(f"nothing to write: the audio is shorter than one frame ({audio_from})")

  # Reference frame of the lip-sync stage (swapped like every target frame).
  reference = faces.pick_reference(track)
  reference_tokens, mel = None, None
  if chain.lipsync is not None and reference >= 0:
    mel = mel_lib.log_mel(sound)
    ref_frame = next(f for t, f in enumerate(decode.iter_frames(target, info=info))
                     if t == reference)
    with timer("E"):
      reference_tokens = chain.encode_images(
          faces.crop(ref_frame, track.to_crop[reference], size)[None])
    if chain.swap is not None:
      with timer("swap"):
        reference_tokens = chain.swap_tokens(source_tokens, reference_tokens)

  preview_at = []
  if options.preview:
    faced = np.flatnonzero(track.has_face[:n_out])
    preview_at = [int(faced[int(i)]) for i in
                  np.linspace(0, len(faced) - 1, min(options.preview_rows, len(faced)))]
  gen = _Generator(chain, info, track, source_tokens, reference_tokens, mel, n_out, options, timer,
                   preview_at)
  try:
    write.write_video(out, _timed_iter(gen, timer, "encode"), fps=FPS, audio=sound,
                       sample_rate=SAMPLE_RATE,
                       crf=options.crf, preset=options.preset)
  except (OSError, ValueError) as e:
    if isinstance(e, UserError):
      raise
    raise UserError(f"cannot write {out}: {e}") from None
  preview = None
  if options.preview and gen.preview:
    if source_crop is None:
      with timer("face"):
        first = min(gen.preview)
        source_crop = faces.crop(gen.preview[first][0], track.to_crop[first], size)
    preview = write_preview(options.preview, source_crop,
                            [gen.preview[t] for t in sorted(gen.preview)])
  return Report(out=out, frames=n_out, face_frames=gen.face_frames,
                passed_through=n_out - gen.face_frames, target_frames=track.num_frames,
                audio=audio_from, reference_frame=reference, source_faces=source_faces,
                seconds=time.perf_counter() - start, part_seconds=dict(timer.seconds),
                preview=preview)
