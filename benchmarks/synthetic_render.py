"""Synthetic talking-head throughput on one core: frames/s of the renderer at 128 and 256 px and the
real-time factor (seconds of video made per second of one core) of a clip including speech and mel.

Baseline (same run): the least any renderer must do per frame, copying the backdrop and converting it
to uint8. Budgets: 5 ms per frame at 128 px, 30 ms at 256 px. Times are CPU seconds of this process
(pinned to one core, single-threaded), best of a few runs: other processes share this machine's
cores, and CPU time does not count the time they hold ours. Run: python benchmarks/synthetic_render.py
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: also for the mel projection matmul
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_prep.synthetic import clips, renderer, sample_identity, sample_motion  # noqa: E402
from swaptalk_jax.audio.mel import log_mel  # noqa: E402

SECONDS = 4.0
FRAMES = int(SECONDS * 25)
REPEATS = 3
BUDGET_MS = {128: 5.0, 256: 30.0}


def best_seconds(fn, repeats: int = REPEATS) -> float:
  """Least CPU time of `fn()` over `repeats` runs after one warm-up."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.process_time()
    fn()
    times.append(time.process_time() - start)
  return min(times)


def print_table(rows, columns) -> None:
  cells = [list(columns)] + [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in r] for r in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
  for i, row in enumerate(cells):
    print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if i == 0:
      print("  ".join("-" * w for w in widths))


def main() -> None:
  os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pin to one core
  identities = [sample_identity(i, 0) for i in range(4)]
  motion = sample_motion(FRAMES, np.random.default_rng(0))
  audio, openness = clips.clip_speech(0, 0, 0, FRAMES)

  t_speech = best_seconds(lambda: clips.clip_speech(0, 0, 0, FRAMES))
  t_mel = best_seconds(lambda: log_mel(audio))
  print(f"one core (CPU time), {SECONDS:g} s clips ({FRAMES} frames); speech synthesis {1e3 * t_speech:.1f} ms, "
        f"log-mel {1e3 * t_mel:.1f} ms per clip\n")
  rows = []
  for res in (128, 256):
    backdrop = renderer.background(identities[0], res)
    floor = best_seconds(lambda: [np.clip(backdrop.copy() * 255 + 0.5, 0, 255).astype(np.uint8)
                                  for _ in range(FRAMES)])
    render = min(best_seconds(lambda ident=ident: renderer.render(ident, motion, openness, res), 2)
                 for ident in identities)
    full = best_seconds(lambda: clips.make_clip(0, 0, 0, SECONDS, res, partners=range(4)), 2)
    ms = 1e3 * render / FRAMES
    rows.append([res, ms, FRAMES / render, ms / BUDGET_MS[res], render / floor,
                 SECONDS / (render + t_speech + t_mel), SECONDS / (full + t_mel)])
  print_table(rows, ["px", "ms/frame", "frames/s", "x budget", "x baseline", "RTF clip+audio+mel",
                     "RTF with both GT renders"])


if __name__ == "__main__":
  main()
