"""Real-footage preparation speed: real-time factor per core by stage, and the VoxCeleb2 projection.

Real-time factor (RTF) = seconds of video prepared per second of one core. The process pins itself
to one core. Inputs: a VoxCeleb2-like clip (224x224, 25 fps, a real face photo moving, real speech,
AAC) and Megamind.avi (720x528, 23.976 fps, 48 kHz stereo) when Debian opencv-doc is installed.
Baseline in the same run: the detector on every frame (no tracking) against detect-every-5 + tracking.
Other processes share this machine's cores, so absolute numbers are noisy; ratios are steadier.

  python benchmarks/prepare_real.py [--seconds 8]
"""
import argparse
import os
import pathlib
import pickle
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_prep.real import manifest, quality, scenes  # noqa: E402
from data_prep.real.config import PrepConfig  # noqa: E402
from data_prep.real.spec import ClipSpec  # noqa: E402
from swaptalk_jax.audio.mel import log_mel  # noqa: E402
from swaptalk_jax.data import records  # noqa: E402
from swaptalk_jax.face import align, detect, landmarks, track  # noqa: E402
from swaptalk_jax.video import decode  # noqa: E402

VOX_DEV_HOURS = 2360.0
CORES = 180
MEGAMIND = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"


def _timed(fn, *args, **kwargs):
  t = time.process_time()
  out = fn(*args, **kwargs)
  return out, time.process_time() - t


def stage_times(path: str, config: PrepConfig, predictor) -> tuple[float, dict[str, float]]:
  """(seconds of video, CPU seconds per stage) for one item, stage by stage."""
  t = {}
  info, t["probe"] = _timed(decode.probe, path, config.max_side)
  frames, t["decode video"] = _timed(lambda: list(decode.iter_frames(path, info=info)))
  n = len(frames)
  audio, t["decode audio"] = _timed(decode.read_audio, path, 0.0, n * 640, info)
  _, t["scene cuts"] = _timed(lambda: [scenes.color_histogram(f) for f in frames])
  dcfg = detect.DetectorConfig(min_face=config.min_face)
  boxes, t["detect (every 5th)"] = _timed(
      lambda: {i: detect.detect_faces(frames[i], dcfg) for i in range(0, n, config.detect_every)})
  tracker = track.FaceTracker(config.tracker(), predictor)
  _, t_track = _timed(lambda: [tracker.step(f) for f in frames])
  t["landmarks + tracking"] = max(t_track - t["detect (every 5th)"], 0.0)
  found = np.isfinite(tracker.result().landmarks).all(axis=(1, 2))
  frames = [f for f, ok in zip(frames, found) if ok]  # align/crop only frames with the face
  lms = tracker.result().landmarks[found]
  m, t["align (smooth + fit)"] = _timed(align.frame_to_crop_transforms, lms, config.align())
  crops, t["crop (warp)"] = _timed(
      lambda: np.stack([align.warp_to_crop(f, mm, config.crop_size) for f, mm in zip(frames, m)]))
  _, t["quality"] = _timed(quality.clip_quality, crops, lms, info.scale)
  jpegs, t["encode JPEG"] = _timed(
      lambda: [records.encode_jpeg(c, config.jpeg_quality) for c in crops])
  mel, t["mel"] = _timed(log_mel, audio)
  with tempfile.TemporaryDirectory() as d:
    _, t["write (staged item)"] = _timed(
        lambda: manifest.write_atomic(pathlib.Path(d) / "x.pkl", pickle.dumps((jpegs, mel, lms))))
  return n / 25.0, t


def end_to_end(path: str, config: PrepConfig, predictor) -> tuple[float, float]:
  with tempfile.TemporaryDirectory() as d:
    t0 = time.process_time()
    r = manifest.stage_item(ClipSpec("x", path, "x", "train"), config, d, predictor)
    cpu = time.process_time() - t0
  if r.status != "done":
    raise RuntimeError(f"{path}: {r.stage}: {r.reason}")
  return r.seconds, cpu


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--seconds", type=float, default=8.0, help="length of the VoxCeleb2-like clip")
  args = ap.parse_args()
  os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
  from tests.reference import media as real_media  # pylint: disable=g-import-not-at-top
  tmp = tempfile.mkdtemp()
  vox = real_media.talking_video(f"{tmp}/vox.mp4", seconds=args.seconds, fps=25, sample_rate=16000,
                                 channels=1, size=(224, 224))
  inputs = [("VoxCeleb2-like 224x224", vox, PrepConfig(min_face=64))]
  if os.path.exists(MEGAMIND):
    inputs.append(("Megamind 720x528", MEGAMIND, PrepConfig(min_face=64)))
  predictor = landmarks.LandmarkPredictor()
  print("one core (pinned); machine shared with other jobs: noisy absolute numbers\n")
  for name, path, config in inputs:
    seconds, t = stage_times(path, config, predictor)
    total = sum(t.values())
    print(f"{name}: {seconds:.1f} s of video, stage by stage")
    print(f"  {'stage':<24}{'CPU s':>8}{'RTF':>10}{'share':>8}")
    for stage, sec in t.items():
      rtf = seconds / sec if sec > 0 else float("inf")
      print(f"  {stage:<24}{sec:>8.3f}{rtf:>10.1f}{sec / total:>8.1%}")
    print(f"  {'sum of stages':<24}{total:>8.3f}{seconds / total:>10.2f}")
    every1 = PrepConfig(**{**config.__dict__, "detect_every": 1})
    s5, c5 = end_to_end(path, config, predictor)
    s1, c1 = end_to_end(path, every1, predictor)
    print(f"  end to end (stage_item: 2 decodes, records): detect every 5: RTF {s5 / c5:.2f}; "
          f"baseline detect every frame: RTF {s1 / c1:.2f}; speed-up x{(s5 / c5) / (s1 / c1):.2f}")
    hours = VOX_DEV_HOURS * 3600 / (s5 / c5) / CORES / 3600
    print(f"  projection VoxCeleb2 dev ({VOX_DEV_HOURS:.0f} h of video) on {CORES} cores at this "
          f"RTF: {hours:.1f} h wall\n")


if __name__ == "__main__":
  main()
