"""Does the mouth stay closed when the driving audio is silent? A trained lip-sync run, cross-driven
on every held-out clip against the synthetic set's exact re-sync ground truth (the same frames
re-rendered with the mouth driven by another clip's audio), no retraining:

  python benchmarks/lipsync_silence.py --run=outputs/chain/lipsync --data_dir=data \
      [--clips=syn00036_c000,syn00038_c001] [--out=docs/lipsync_silence.png]

Prints the mean mouth opening over silent and over voiced frames of the output, the ground truth
and the baselines (reference lower half copied; output driven by another window's audio) on all
held-out frames and on the plotted clips, then draws the opening over time of the plotted clips
with the silent frames shaded. The eval batches are the benchmark's (`data.lipsync.all_windows`:
every 5-frame window of every held-out chunk, in the eval iterator's shuffled order, so the
shuffled-audio baseline is another window of the batch as in benchmarks/lipsync.py); each window's
reference frame is the sampler's draw (>= 5 frames from the window's centre); its lower half is
the copy baseline's, so the copy curve can step at window boundaries. Metrics come from
the trainer (`frame_stats`, `mouth_openings`, `report_from_stats`); the opening is dlib's inner-lip
gap over the interocular distance on each decoded face and on the ground-truth frame
(swaptalk_jax/metrics/mouth_frames.py; 0 = lips touching). Above each clip's opening panel, the
renderer's exact mouth openness of the ground truth (`resync_mouth_openness`, 0 = closed), and the
script prints how well each curve's opening follows it (Pearson over frames): what the measure can
see at this image size through this VQGAN. A third panel per clip, and a second printed table,
give the mouth-box L1 to the exact ground-truth frames (`frame_stats`' `*_mouth_l1`) over silent
and voiced frames.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.plot_lines import save_panels  # noqa: E402
from swaptalk_jax.core import checkpoint  # noqa: E402
from swaptalk_jax.core.task import FROZEN  # noqa: E402
from swaptalk_jax.data import assemble, dataset, pipelines, sampling  # noqa: E402
from swaptalk_jax.trainers.lipsync import (collect_frame_stats, make_task,  # noqa: E402
                                           mouth_landmarks, mouth_openings,
                                           report_from_stats)

FLAGS = flags.FLAGS
flags.DEFINE_string("run", "outputs/chain/lipsync", "a `swaptalk train` lip-sync run directory")
flags.DEFINE_string("data_dir", "data", "data_dir holding synthetic/ (with re-sync ground truth)")
flags.DEFINE_string("clips", "", "held-out clip ids to plot (comma-separated); default: the two "
                    "with the most silent frames whose driving audio differs")
flags.DEFINE_string("out", "docs/lipsync_silence.png", "figure path")

FPS = 25.0
CURVES = (("gt", "exact ground-truth frames", (0, 0, 0), 4), ("output", "output", (31, 119, 180), 3),
          ("copy", "copied reference", (150, 150, 150), 2),
          ("shuffled", "output, shuffled audio", (255, 127, 14), 2),
          ("vq", "ground truth through the VQGAN", (44, 160, 44), 2))


def eval_plans_and_batches(config):
  """The eval split's plans in iterator order and the batches they assemble into (as
  `pipelines.make_eval_iterator` builds them on one process)."""
  data = pipelines.resolve_config(config.data)
  ds, sources = pipelines.plan_dataset("lipsync", data, data.eval_split, False)
  plans = [ds[i] for i in range(len(ds))]
  build = assemble.BatchAssembler(sources, data.image_size, data.lipsync.window,
                                  data.parallel_reads)
  b = data.batch_size
  return plans, [build(plans[i:i + b]) for i in range(0, len(plans), b)], sources


def frame_keys(plans, sources) -> list[tuple[str, int]]:
  """(clip id, clip frame) of every frame of every plan's window, in batch order."""
  index = sampling.SplitIndex.build(dataset.cached_meta(sources[0][0]), sources[0][1])
  keys = []
  for plan in plans:
    for record, frame, _ in plan["images"]["target"]:
      clip = index.clips[index.clip_of[record]]
      keys.append((clip.clip_id, int(index.first_frame[record]) + frame))
  return keys


def exact_openness(sources, keys) -> tuple[np.ndarray, dict[str, str]]:
  """The renderer's mouth openness of the re-sync ground truth at every (clip, frame) key, and
  each clip's driving-audio clip id."""
  reader = dataset.SplitReader(*sources[0])
  clips = {c: reader.read_clip(c) for c in sorted({k[0] for k in keys})}
  openness = np.array([float(np.asarray(clips[c].extras["resync_mouth_openness"])[f])
                       for c, f in keys])
  return openness, {c: str(clip.extras["resync_audio_clip"]) for c, clip in clips.items()}


def opening_table(openings, silent, masks: dict[str, np.ndarray]) -> list[str]:
  """Rows: per frame set, the mean opening during silence and during speech of each curve."""
  lines = [f"{'frames':<34}{'n silent':>9}{'n voiced':>9}  " +
           "  ".join(f"{name + ' sil/voi':>20}" for name, *_ in CURVES)]
  for label, mask in masks.items():
    sil, voi = mask & silent, mask & ~silent
    cells = [f"{openings[n][sil].mean():>+9.4f}/{openings[n][voi].mean():<+10.4f}"
             for n, *_ in CURVES]
    lines.append(f"{label:<34}{int(sil.sum()):>9}{int(voi.sum()):>9}  " + "  ".join(
        f"{c:>20}" for c in cells))
  return lines


def l1_table(stats, silent, masks: dict[str, np.ndarray]) -> list[str]:
  """Rows: per frame set, the mean mouth-box L1 to the exact ground truth, silent / voiced."""
  names = [n for n, *_ in CURVES if n != "gt"]
  lines = [f"{'frames':<34}" + "  ".join(f"{n + ' sil/voi':>20}" for n in names)]
  for label, mask in masks.items():
    sil, voi = mask & silent, mask & ~silent
    lines.append(f"{label:<34}" + "  ".join(
        f"{stats[n + '_mouth_l1'][sil].mean():>9.4f}/{stats[n + '_mouth_l1'][voi].mean():<10.4f}"
        for n in names))
  return lines


def main(argv):
  del argv
  params, step, config = checkpoint.load_params(FLAGS.run, "lipsync", ema=True)
  if config.get("stage") != "lipsync":
    raise app.UsageError(f"{FLAGS.run} is a {config.get('stage')!r} run, not lipsync")
  config.data.sources = [dict(name="synthetic", data_dir=FLAGS.data_dir, weight=1.0)]
  config.data.lipsync.resync_gt = True
  config.data.lipsync.all_windows = True
  task = make_task(config)
  params = {"lipsync": params, FROZEN: task.frozen_params()}
  plans, batches, sources = eval_plans_and_batches(config)
  stats = collect_frame_stats(task, params, batches, cross=True)
  keys = frame_keys(plans, sources)
  if len(keys) != len(stats["silent"]):
    raise RuntimeError(f"{len(keys)} planned frames but {len(stats['silent'])} scored")
  # the eval pass wraps round to whole batches: score each (clip, frame) once
  first = {}
  for i, key in enumerate(keys):
    first.setdefault(key, i)
  keep = np.array(sorted(first.values()))
  stats = {k: v[keep] for k, v in stats.items()}
  keys = [keys[i] for i in keep]
  landmarks = mouth_landmarks(stats)
  openings = mouth_openings(landmarks)
  report = report_from_stats(stats, landmarks)
  silent = stats["silent"] > 0.5
  clip_of = np.array([k[0] for k in keys])
  clips = sorted(set(clip_of))
  exact, driving = exact_openness(sources, keys)
  chosen = [c for c in FLAGS.clips.split(",") if c]
  if not chosen:
    for c in sorted(clips, key=lambda c: (-int(silent[clip_of == c].sum()), c)):
      if len(chosen) < 2 and all(driving[c] != driving[o] for o in chosen):
        chosen.append(c)
  unknown = sorted(set(chosen) - set(clips))
  if unknown:
    raise app.UsageError(f"--clips {unknown} are not held-out clips; they are {clips}")

  print(f"run {FLAGS.run} (step {step}), cross-driven on the held-out split: {len(keys)} frames "
        f"in {len(clips)} clips, {int(silent.sum())} with silent driving audio "
        f"(mean log-mel < {config.eval.silence_level})")
  print("mean mouth opening (dlib inner-lip gap / interocular distance; 0 = lips touching), "
        "silent / voiced frames:")
  masks = {"all held-out clips": np.ones(len(keys), bool)}
  masks.update({f"clip {c}": clip_of == c for c in chosen})
  print("\n".join(opening_table(openings, silent, masks)))
  print("mean mouth-box L1 to the exact ground-truth frames, silent / voiced frames:")
  print("\n".join(l1_table(stats, silent, masks)))
  print(f"renderer's exact openness of the ground truth: silent {exact[silent].mean():.3f}, voiced "
        f"{exact[~silent].mean():.3f} (0 = closed)")
  print("Pearson of each curve's opening with the renderer's exact openness, all frames: " +
        ", ".join(f"{n} {np.corrcoef(openings[n], exact)[0, 1]:+.3f}" for n, *_ in CURVES))
  print(f"report_from_stats, all held-out frames: silent opening gt "
        f"{report['gt_silent_opening']:+.4f}, output {report['output_silent_opening']:+.4f}, "
        f"copy {report['copy_silent_opening']:+.4f}, shuffled "
        f"{report['shuffled_silent_opening']:+.4f}; mouth corr output "
        f"{report['output_mouth_corr']:.3f}, copy {report['copy_mouth_corr']:.3f}, shuffled "
        f"{report['shuffled_mouth_corr']:.3f}")

  panels = []
  values = np.concatenate([openings[n][np.isin(clip_of, chosen)] for n, *_ in CURVES])
  pad = 0.1 * (values.max() - values.min() + 1e-6)
  y_range = (float(values.min() - pad), float(values.max() + pad))
  l1 = np.concatenate([stats[f"{n}_mouth_l1"][np.isin(clip_of, chosen)] for n, *_ in CURVES
                       if n != "gt"])
  l1_range = (0.0, float(l1.max() * 1.1))
  for c in chosen:
    rows = np.nonzero(clip_of == c)[0]
    rows = rows[np.argsort([keys[i][1] for i in rows])]
    t = np.array([keys[i][1] for i in rows]) / FPS
    series = [(label, openings[n][rows], color, width) for n, label, color, width in CURVES]
    sil = silent[rows]
    panels.append(dict(x=t, series=[("exact", exact[rows], (0, 0, 0), 3)], shade=sil, height=170,
                       y_range=(-0.05, 1.0), x_label="",
                       title=f"held-out clip {c} (driving audio: {driving[c]}): the renderer's "
                             f"exact mouth openness of the ground truth (0 = closed)"))
    panels.append(dict(x=t, series=series, shade=sil, y_range=y_range, height=250, x_label="",
                       title=f"clip {c}, mouth opening (dlib inner-lip gap / interocular); "
                             f"mean in silence: gt "
                             f"{openings['gt'][rows][sil].mean():+.3f}, output "
                             f"{openings['output'][rows][sil].mean():+.3f}, copy "
                             f"{openings['copy'][rows][sil].mean():+.3f}, shuffled "
                             f"{openings['shuffled'][rows][sil].mean():+.3f}"))
    panels.append(dict(x=t, series=[(label, stats[f"{n}_mouth_l1"][rows], color, width)
                                    for n, label, color, width in CURVES if n != "gt"],
                       shade=sil, height=220, y_range=l1_range, x_label="time (s)",
                       title=f"clip {c}, mouth-box L1 to the exact ground-truth frame; mean in "
                             f"silence: output {stats['output_mouth_l1'][rows][sil].mean():.3f}, "
                             f"copy {stats['copy_mouth_l1'][rows][sil].mean():.3f}, shuffled "
                             f"{stats['shuffled_mouth_l1'][rows][sil].mean():.3f}, vq "
                             f"{stats['vq_mouth_l1'][rows][sil].mean():.3f}"))
  legend = [(label, color, width) for _, label, color, width in CURVES] + [
      ("silent driving audio", None, 0)]
  save_panels(FLAGS.out, panels, legend, heading=(
      f"Mouth opening over time (dlib inner-lip gap / interocular distance), lip-sync run "
      f"{os.path.basename(os.path.normpath(FLAGS.run))} step {step}, cross-driven"))
  print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
  app.run(main)
