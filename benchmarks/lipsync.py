"""Table V at tiny size, side by side from one command: lip-sync backbones (unet / plain_unet /
dit), L_sync on vs off, warping on vs off, each trained for the same steps on the same data, then
evaluated cross-driven on held-out identities against the synthetic set's exact re-sync ground
truth, with the baselines (reference lower half copied, output with shuffled audio) in the same
table; step time and MFU (FLOPs of the compiled step / time / this CPU's measured matmul peak).

  python benchmarks/lipsync.py --vqgan=/tmp/swaptalk_dev/vqgan --data_dir=/tmp/swaptalk_dev/data \
      [--expert=LIP_EXPERT_WORKDIR | --expert_steps=300] [--steps=300] [--rows=unet,plain_unet,...]

Without --expert, a micro lip expert (configs/lip_expert.py:micro) is trained first for
--expert_steps steps (0: the L_sync row is skipped). Table V's columns at this size: FD-dlib,
the labelled FID substitute (metrics/face_fd.py: Frechet distance of dlib face descriptors of the
decoded faces vs the ground-truth frames; no Inception weights ship offline; --nofd_dlib skips it,
~85 ms a frame), lower-face L1/SSIM, LMD (mean distance of dlib's 20 mouth points to the ground
truth's, 256-px crop pixels, metrics/lmd.py), mouth-opening correlation, code accuracy, expert
score and the silent-frame opening. The mouth opening of every decoded face and of the
ground-truth frame is dlib's inner-lip gap over the interocular distance
(swaptalk_jax/metrics/mouth_frames.py, 0 = lips touching; validated against the renderer's exact
openness by benchmarks/mouth_opening_validation.py): 'mouth corr' is its Pearson with the ground
truth's over all scored frames, 'silent opening' its mean over frames with silent driving audio
(the ground truth's in the header line). One dlib landmark pass a frame serves LMD and opening.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import measure_matmul_peak, print_table  # noqa: E402
from configs import lipsync as lipsync_config  # noqa: E402
from swaptalk_jax.core.trainer import global_batch  # noqa: E402
from swaptalk_jax.metrics import face_fd, identity_preservation  # noqa: E402
from swaptalk_jax.trainers.lipsync import (CANDIDATES, collect_frame_stats,  # noqa: E402
                                           report_from_stats)
from swaptalk_jax.trainers.registry import build_trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("vqgan", None, "stage-0 run directory (its image size is used)", required=True)
flags.DEFINE_string("data_dir", None, "data_dir holding synthetic/ (with re-sync ground truth)",
                    required=True)
flags.DEFINE_string("expert", None, "stage-2 lip-expert run directory for the L_sync row")
flags.DEFINE_integer("expert_steps", 300, "steps of the micro expert trained when --expert is unset")
flags.DEFINE_integer("steps", 300, "training steps of every row")
flags.DEFINE_integer("batch_size", 8, "global batch (windows of 5 frames)")
flags.DEFINE_string("rows", "unet,plain_unet,dit,unet_sync,unet_nowarp", "rows to run")
flags.DEFINE_string("size", "bench", "'bench' (CPU-sized widths) or 'tiny' (configs/lipsync.py:tiny)")
# 0.05: the quickstart's weight; at 0.2 the held-out mouth L1 was worse than without L_sync (the
# expert's gradient pulls the tokens off the decoder's manifold before L_code has settled).
flags.DEFINE_float("sync_weight", 0.05, "L_sync weight of the unet_sync row")
flags.DEFINE_bool("fd_dlib", True, "FD-dlib (the FID substitute) of every row and baseline")
flags.DEFINE_bool("all_windows", True, "score every non-overlapping 5-frame window of every "
                  "held-out chunk (all frames) rather than one random window per chunk")

ROWS = {  # name -> (variant, overrides)
    "unet": ("tiny", {}),
    "plain_unet": ("tiny_plain_unet", {}),
    "dit": ("tiny_dit", {}),
    "unet_sync": ("tiny", {"loss.sync_weight": lambda: FLAGS.sync_weight}),   # --sync_weight
    "unet_nowarp": ("tiny", {"model.use_warp": False}),
}


def set_key(config, key: str, value) -> None:
  node = config
  *parents, leaf = key.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = value


def row_config(variant: str, overrides: dict, image_size: int, expert: str | None):
  c = lipsync_config.get_config(variant)
  c.vqgan.workdir = FLAGS.vqgan
  c.data.sources = [dict(name="synthetic", data_dir=FLAGS.data_dir, weight=1.0)]
  c.data.image_size = image_size
  c.data.batch_size = FLAGS.batch_size
  c.data.lipsync.all_windows = FLAGS.all_windows
  if FLAGS.size == "bench":
    c.model.update(warp_features=(16, 32), unet_features=(32, 64), audio_width=64, dit_width=64,
                   dit_depth=2, num_heads=2)
  c.train.update(num_steps=FLAGS.steps, async_checkpointing=False, eval_every=0,
                 checkpoint_every=10 ** 9)
  c.loss.sync_start, c.loss.sync_ramp = FLAGS.steps // 3, FLAGS.steps // 3
  if expert:
    c.expert.workdir = expert
  for key, value in overrides.items():
    set_key(c, key, value() if callable(value) else value)
  return c


def train_expert(image_size: int) -> str:
  """A micro lip expert on the same data and VQGAN; returns its run directory."""
  from configs import lip_expert as expert_config  # pylint: disable=import-outside-toplevel
  c = expert_config.get_config("micro")
  c.vqgan.workdir = FLAGS.vqgan
  c.data.sources = [dict(name="synthetic", data_dir=FLAGS.data_dir, weight=1.0)]
  c.data.image_size = image_size
  c.train.update(num_steps=FLAGS.expert_steps, async_checkpointing=False, eval_every=0,
                 checkpoint_every=FLAGS.expert_steps)
  workdir = tempfile.mkdtemp(prefix="lipsync_bench_expert_")
  from swaptalk_jax.core import checkpoint  # pylint: disable=import-outside-toplevel
  trainer = build_trainer(c, workdir, devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    for _ in range(FLAGS.expert_steps):
      state, _ = trainer.train_step(state, global_batch(next(trainer.train_iter),
                                                        trainer.batch_sharding))
    checkpoint.save(trainer.manager, FLAGS.expert_steps, state, trainer.train_iter, c, force=True)
    trainer.manager.wait_until_finished()
  return workdir


# dlib descriptors by content: the ground truth and the copy / VQ baselines are the same frames in
# every row, so only each row's output and shuffled-audio faces are embedded anew
_DESCRIPTORS: dict = {}


def fd_dlib(stats: dict) -> dict[str, float]:
  """{'<candidate>_fd_dlib': FD-dlib of its decoded faces vs the ground-truth frames}."""
  embed = lambda images: identity_preservation.embed_crops_cached(
      images, identity_preservation.SYNTHETIC_FACE_BOX, _DESCRIPTORS)
  truth = embed(stats["gt_image"])
  return {f"{name}_fd_dlib": face_fd.fd_from_embeddings(embed(stats[f"{name}_image"]), truth)
          for name in CANDIDATES}


def run_row(name: str, config, peak_gflops: float) -> dict:
  trainer = build_trainer(config, tempfile.mkdtemp(prefix=f"lipsync_bench_{name}_"),
                          devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    batch = global_batch(next(trainer.train_iter), trainer.batch_sharding)
    # FLOPs from the lowered (unoptimised) HLO: compiling here for the cost would compile the
    # step twice (train_step's jit does not reuse an AOT executable), ~a minute per row on a
    # loaded 2-core machine
    cost = trainer.step_fn.lower(state, batch, trainer.frozen).cost_analysis()
    flops = float((cost[0] if isinstance(cost, (list, tuple)) else cost).get("flops", 0.0))
    times = []
    for _ in range(config.train.num_steps):
      batch = global_batch(next(trainer.train_iter), trainer.batch_sharding)
      start = time.perf_counter()
      state, metrics = trainer.train_step(state, batch)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
    batches = [global_batch(b, trainer.batch_sharding) for b in trainer.make_eval_iter()]
    stats = collect_frame_stats(trainer.task, trainer.eval_params(state), batches, cross=True)
  report = report_from_stats(stats)
  if FLAGS.fd_dlib:
    report.update(fd_dlib(stats))
  step_time = float(np.median(times[len(times) // 4:]))
  report.update(step_s=step_time, mfu=flops / step_time / (peak_gflops * 1e9),
                params_m=sum(x.size for x in jax.tree.leaves(state.params)) / 1e6)
  return report


def main(argv):
  del argv
  from swaptalk_jax.core import checkpoint  # pylint: disable=import-outside-toplevel
  _, _, vqgan_cfg = checkpoint.load_params(FLAGS.vqgan)
  image_size = int(vqgan_cfg["data"]["image_size"])
  names = [r for r in FLAGS.rows.split(",") if r]
  unknown = sorted(set(names) - set(ROWS))
  if unknown:
    raise app.UsageError(f"unknown rows {unknown}; known: {sorted(ROWS)}")
  expert = FLAGS.expert
  if expert is None and FLAGS.expert_steps > 0:
    print(f"training a micro lip expert for {FLAGS.expert_steps} steps ...", flush=True)
    expert = train_expert(image_size)
  if expert is None:
    names = [n for n in names if n != "unet_sync"]
  peak = measure_matmul_peak()
  reports = {}
  for name in names:
    variant, overrides = ROWS[name]
    print(f"row {name}: {FLAGS.steps} steps ...", flush=True)
    reports[name] = r = run_row(name, row_config(variant, overrides, image_size, expert), peak)
    print(f"row {name} done: lower L1 {r['output_lower_l1']:.4f} (copy {r['copy_lower_l1']:.4f}, "
          f"shuffled {r['shuffled_lower_l1']:.4f}), mouth L1 {r['output_mouth_l1']:.4f} (copy "
          f"{r['copy_mouth_l1']:.4f}, shuffled {r['shuffled_mouth_l1']:.4f}), LMD "
          f"{r['output_lmd']:.2f} (copy {r['copy_lmd']:.2f}, shuffled {r['shuffled_lmd']:.2f}), "
          f"mouth corr "
          f"{r['output_mouth_corr']:.3f} (copy {r['copy_mouth_corr']:.3f}, shuffled "
          f"{r['shuffled_mouth_corr']:.3f}), silent opening "
          f"{r.get('output_silent_opening', float('nan')):.4f} (gt "
          f"{r.get('gt_silent_opening', float('nan')):.4f}, shuffled "
          f"{r.get('shuffled_silent_opening', float('nan')):.4f}), FD-dlib "
          f"{r.get('output_fd_dlib', float('nan')):.4f} (copy "
          f"{r.get('copy_fd_dlib', float('nan')):.4f}, shuffled "
          f"{r.get('shuffled_fd_dlib', float('nan')):.4f}, vq "
          f"{r.get('vq_fd_dlib', float('nan')):.4f}), step {r['step_s']:.3f} s",
          flush=True)
  columns = ["row", "FD-dlib", "lower L1", "lower SSIM", "LMD", "mouth L1", "code acc",
             "mouth corr", "silent opening", "expert", "step s", "MFU", "params M"]
  nan = float("nan")

  def figures(r, name):   # the quality and mouth columns of one candidate of a row's report
    return [r.get(f"{name}_fd_dlib", nan), r[f"{name}_lower_l1"], r[f"{name}_lower_ssim"],
            r[f"{name}_lmd"], r[f"{name}_mouth_l1"], r[f"{name}_code_accuracy"],
            r[f"{name}_mouth_corr"], r.get(f"{name}_silent_opening", nan),
            r.get(f"{name}_expert", nan)]
  rows = [[name] + figures(r, "output") + [r["step_s"], r["mfu"], r["params_m"]]
          for name, r in reports.items()]
  first = next(iter(reports.values()))
  for base in ("copy", "shuffled", "vq"):
    rows.append([f"baseline {base}" + (f" ({next(iter(reports))})" if base == "shuffled" else "")]
                + figures(first, base) + ["", "", ""])
  from swaptalk_jax.data import dataset, pipelines  # pylint: disable=import-outside-toplevel
  meta = dataset.cached_meta(str(pipelines.dataset_path(dict(name="synthetic",
                                                             data_dir=FLAGS.data_dir))))
  held_out = meta.clip_tables["test"]
  print(f"\ncross-driven, held-out identities: {first['frames']} frames scored of "
        f"{sum(c.num_frames for c in held_out)} in {len(held_out)} clips "
        f"({len({c.identity for c in held_out})} identities), {first['silent_frames']} silent; "
        f"ground-truth silent opening {first.get('gt_silent_opening', float('nan')):.4f} (dlib "
        f"inner-lip gap / interocular); FD-dlib: FID substitute (dlib face descriptors vs the "
        f"ground-truth frames; not comparable with FID); LMD in 256-px crop pixels; "
        f"{FLAGS.steps} steps each, batch {FLAGS.batch_size}x5 frames, L_sync weight "
        f"{FLAGS.sync_weight} (unet_sync), peak {peak:.0f} GFLOP/s")
  print_table(rows, columns)


if __name__ == "__main__":
  app.run(main)
