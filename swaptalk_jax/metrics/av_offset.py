"""Audio-visual offset detection over a prepared dataset: SyncNet's AV-offset procedure.

For every window of `window` frames of a clip, the sync scorer rates the frames against the audio
window starting `k` frames later, for every offset k in [-max_offset, +max_offset]; the detected
offset of the window is the k with the best score, and the clip's offset is the argmax of its mean
score curve. An in-sync track should give 0; a track whose audio is delayed by d frames gives +d.

Model-agnostic: the caller passes `score_fn(frames [W, T, S, S, 3] in [-1, 1], mels [W, O, steps,
80]) -> scores [W, O]` (the lip expert, a pixel SyncNet, ...). Used by stage 2's evaluation, stage
3's tests and `swaptalk eval`.
"""
import dataclasses
from typing import Callable, Sequence

import numpy as np

from swaptalk_jax.audio.mel import log_mel, mel_start_for_frame, num_steps_for_frames
from swaptalk_jax.data import dataset, records

SAMPLES_PER_FRAME = records.SAMPLES_PER_FRAME
ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class ClipAV:
  """One clip's frames and audio, as the stages see them."""
  clip_id: str
  identity: str
  frames: np.ndarray       # float32 [T, S, S, 3] in [-1, 1]
  audio: np.ndarray        # float32 [T * 640] 16 kHz

  @property
  def num_frames(self) -> int:
    return int(self.frames.shape[0])

  def delayed(self, frames: int) -> "ClipAV":
    """The same clip with its audio delayed by `frames` frames (advanced when negative), the
    gap filled with silence: what an out-of-sync upload looks like."""
    n = int(frames) * SAMPLES_PER_FRAME
    audio = np.zeros_like(self.audio)
    if n >= 0:
      audio[n:] = self.audio[:len(audio) - n]
    else:
      audio[:n] = self.audio[-n:]
    return dataclasses.replace(self, audio=audio)


def read_clips(dataset_dir, split: str, image_size: int, max_clips: int = 0) -> list[ClipAV]:
  """Every clip of a prepared split (the first `max_clips` when > 0), frames decoded at
  `image_size` as the training pipelines decode them."""
  reader = dataset.SplitReader(str(dataset_dir), split)
  clips = reader.clips[:max_clips] if max_clips else reader.clips
  out = []
  for entry in clips:
    idx = list(range(entry.first_record, entry.first_record + entry.num_chunks))
    recs = sorted(reader.read(idx), key=lambda r: int(r["chunk_index"]))
    frames = np.concatenate([records.decode_frames(r, range(len(r["frames_jpeg"])),
                                                   reader.where(i), size=image_size)
                             for i, r in zip(idx, recs)])
    audio = np.concatenate([np.asarray(r["audio"]) for r in recs]).astype(np.float32) / 32768
    out.append(ClipAV(entry.clip_id, entry.identity,
                      frames.astype(np.float32) * (2.0 / 255.0) - 1.0, audio))
  if not out:
    raise ValueError(f"{dataset_dir} {split}: no clips to evaluate")
  return out


def offset_windows(clip: ClipAV, max_offset: int, window: int = 5, stride: int = 1,
                   margin: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(starts [W], frames [W, window, S, S, 3], mels [W, 2*max_offset+1, steps, 80]) of the
  windows whose audio windows at every offset lie inside the clip (`margin` more frames kept
  clear at both ends, e.g. the gap of a delayed track)."""
  steps = num_steps_for_frames(window)
  mel = log_mel(clip.audio)                    # row s: clip-global step s
  lo = max_offset + margin
  hi = clip.num_frames - window - max_offset - margin
  starts = np.arange(lo, hi + 1, stride)
  if len(starts) == 0:
    raise ValueError(f"clip {clip.clip_id}: {clip.num_frames} frames are too few for offsets of "
                     f"+-{max_offset} frames around a {window}-frame window (+{margin} margin)")
  offsets = np.arange(-max_offset, max_offset + 1)
  frames = np.stack([clip.frames[t:t + window] for t in starts])
  mels = np.stack([[mel[mel_start_for_frame(t + k):mel_start_for_frame(t + k) + steps]
                    for k in offsets] for t in starts])
  if mels.shape[2] != steps:
    raise ValueError(f"clip {clip.clip_id}: audio shorter than its frames")
  return starts, frames, mels


@dataclasses.dataclass
class OffsetResult:
  offsets: np.ndarray           # [O] frames
  scores: np.ndarray            # [W_total, O] per window (all clips)
  clip_of_window: np.ndarray    # [W_total]
  clip_offsets: np.ndarray      # [C] argmax of each clip's mean curve

  def window_offsets(self) -> np.ndarray:
    return self.offsets[np.argmax(self.scores, axis=1)]

  def summary(self, expected: int = 0) -> dict[str, float]:
    """Accuracy of the per-window offsets at `expected` and within +-1 frame of it; the clip-level
    accuracy; the mean margin of the score at `expected` over the best other offset."""
    found = self.window_offsets()
    at = int(np.nonzero(self.offsets == expected)[0][0])
    others = np.delete(self.scores, at, axis=1)
    return {"offset_acc": float(np.mean(found == expected)),
            "offset_acc_1": float(np.mean(np.abs(found - expected) <= 1)),
            "clip_offset_acc": float(np.mean(self.clip_offsets == expected)),
            "offset_margin": float(np.mean(self.scores[:, at] - others.max(axis=1))),
            "windows": float(len(found))}


def detect_offsets(score_fn: ScoreFn, clips: Sequence[ClipAV], max_offset: int = 15,
                   window: int = 5, stride: int = 1, margin: int = 0) -> OffsetResult:
  """Scores every window of every clip at every offset (see the module docstring)."""
  all_scores, clip_of, clip_offsets = [], [], []
  offsets = np.arange(-max_offset, max_offset + 1)
  for c, clip in enumerate(clips):
    _, frames, mels = offset_windows(clip, max_offset, window, stride, margin)
    scores = np.asarray(score_fn(frames, mels), np.float32)
    if scores.shape != mels.shape[:2]:
      raise ValueError(f"score_fn returned {scores.shape}, expected {mels.shape[:2]}")
    all_scores.append(scores)
    clip_of.append(np.full(len(scores), c))
    clip_offsets.append(offsets[np.argmax(scores.mean(axis=0))])
  return OffsetResult(offsets, np.concatenate(all_scores), np.concatenate(clip_of),
                      np.array(clip_offsets))


def plot_curve(offsets: np.ndarray, curves: np.ndarray, height: int = 96, width: int = 248,
               colors: Sequence[tuple[float, float, float]] = ((0.1, 0.4, 0.9), (0.9, 0.3, 0.1),
                                                              (0.1, 0.7, 0.2))) -> np.ndarray:
  """Score curves over offsets drawn into an RGB float image [height, width, 3] in [0, 1] (for
  TensorBoard): one polyline per row of `curves` [N, O] (min-max scaled together), a grey
  vertical line at offset 0 and a dot at each curve's maximum."""
  curves = np.atleast_2d(np.asarray(curves, np.float64))
  img = np.ones((height, width, 3))
  pad = 4
  xs = pad + (offsets - offsets.min()) / max(np.ptp(offsets), 1) * (width - 1 - 2 * pad)
  lo, hi = curves.min(), curves.max()
  ys = pad + (1 - (curves - lo) / max(hi - lo, 1e-9)) * (height - 1 - 2 * pad)
  zero = int(round(xs[np.argmin(np.abs(offsets))]))
  img[:, zero] = 0.7
  for n, y in enumerate(ys):
    color = np.array(colors[n % len(colors)])
    for i in range(len(xs) - 1):   # line segments, sampled densely
      t = np.linspace(0, 1, 2 * int(abs(xs[i + 1] - xs[i]) + abs(y[i + 1] - y[i])) + 2)
      px = np.round(xs[i] + t * (xs[i + 1] - xs[i])).astype(int)
      py = np.round(y[i] + t * (y[i + 1] - y[i])).astype(int)
      img[py, px] = color
    best = int(np.argmax(curves[n]))
    cx, cy = int(round(xs[best])), int(round(y[best]))
    img[max(cy - 2, 0):cy + 3, max(cx - 2, 0):cx + 3] = color
  return img.astype(np.float32)
