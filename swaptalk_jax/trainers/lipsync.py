"""Stage 3 trainer: lip-sync in token space on windows of 5 frames, E and D frozen.

Inside the step the FROZEN stage-0 VQGAN (params in `params[FROZEN]['vqgan']`, a jit argument)
encodes, under stop_gradient: the target frames' UPPER halves (T^U, network input), the reference
frame (R^U, R^B, network input) and the target frames' lower halves (T^B: only the ground truth).
The network (`models/lipsync.py`) maps (T^U, R^U, R^B, per-frame mel) to T^^B. Loss:
  code_weight * L_code(T^^B, T^B) + ce_weight * CE(-|T^^B - C^B|^2 / t, index of T^B)
  + ramp(step) * sync_weight * L_sync(expert(T^^B window, mel window))       [frozen expert]
  + pixel_weight * L1(D([T^U; T^^B]) lower half, target lower half)          [frozen decoder]
Eval: self-driven (own audio) and, with `data.lipsync.resync_gt`, cross-driven on the synthetic
set's exact re-sync ground truth (the same frames re-rendered with the mouth driven by another
clip's audio), next to two baselines: the reference lower half copied unchanged, and the output
driven by shuffled (another example's) audio. `resync_report` aggregates whole-split figures.
"""
import dataclasses
from typing import Any, Iterable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from swaptalk_jax.core.task import FROZEN, TaskHooks
from swaptalk_jax.errors import UserError
from swaptalk_jax.losses import token as token_losses
from swaptalk_jax.metrics.image_quality import ssim
from swaptalk_jax.models.lipsync import LipSyncNet, lipsync_from_config
from swaptalk_jax.models.vqgan import HalfSplitVQGAN
from swaptalk_jax.trainers.lip_expert import FrozenVQGAN, load_vqgan

BASELINES = ("copy", "shuffled")   # reference lower half unchanged; output with another's audio


@dataclasses.dataclass
class FrozenExpert:
  model: Any                 # models.lip_expert.LipExpert
  params: Any
  config: ml_collections.ConfigDict


def load_expert(workdir: str, ema: bool = True) -> FrozenExpert:
  """The stage-2 lip expert of a `swaptalk train` run directory."""
  from swaptalk_jax.core import checkpoint  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.models.lip_expert import lip_expert_from_config  # pylint: disable=import-outside-toplevel
  params, _, config = checkpoint.load_params(workdir, "expert", ema)
  if config.get("stage") != "lip_expert":
    raise UserError(f"config.expert.workdir={workdir} is a {config.get('stage')!r} run, not lip_expert")
  return FrozenExpert(lip_expert_from_config(config.model), params, config)


def to_unit_range(images: jax.Array) -> jax.Array:
  return jnp.clip((images.astype(jnp.float32) + 1.0) * 0.5, 0.0, 1.0)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson correlation; 0 when either series is constant (a still mouth follows nothing)."""
  if np.ptp(x) == 0 or np.ptp(y) == 0:
    return 0.0
  x, y = x - x.mean(), y - y.mean()
  denom = np.sqrt((x * x).sum() * (y * y).sum())
  return float((x * y).sum() / denom) if denom > 0 else 0.0


# ----------------------------------------------------------------------------- the task
@dataclasses.dataclass
class LipSyncTask(TaskHooks):
  """The Task of stage 3 (see swaptalk_jax/core/task.py)."""
  network: LipSyncNet
  vqgan: FrozenVQGAN
  loss_config: ml_collections.ConfigDict
  eval_config: ml_collections.ConfigDict
  expert: Optional[FrozenExpert] = None
  groups: tuple[str, ...] = ("lipsync",)
  ema_groups: tuple[str, ...] = ("lipsync",)

  # --- frozen nets and tokens
  def frozen_params(self) -> dict[str, Any]:
    frozen = {"vqgan": self.vqgan.params}
    if self.expert is not None:
      frozen["expert"] = self.expert.params
    return frozen

  def _frozen(self, params, name: str):
    frozen = params.get(FROZEN, {})
    if name not in frozen:
      raise ValueError(f"LipSyncTask: params lack {FROZEN!r}[{name!r}]; pass "
                       "{..., FROZEN: task.frozen_params()}")
    return frozen[name]

  def lower_codebook(self, params) -> jax.Array:
    return self.vqgan.model.apply({"params": self._frozen(params, "vqgan")},
                                  method=lambda m: m.quantizer_lower.embedding_table())

  def quantize_lower(self, params, lower: jax.Array, codebook: Optional[jax.Array] = None):
    """Lower-half embeddings [..., D] -> their nearest C^B codes (the VQ tokens)."""
    codebook = self.lower_codebook(params) if codebook is None else codebook
    nearest = jnp.argmin(-token_losses.code_logits(lower, codebook), axis=-1)
    return jnp.take(codebook, nearest, axis=0)

  def decode(self, params, upper: jax.Array, lower: jax.Array) -> jax.Array:
    """[N, h/2, w, D] halves -> faces [N, S, S, 3] through the frozen decoder."""
    return self.vqgan.model.apply({"params": self._frozen(params, "vqgan")},
                                  jnp.concatenate([upper, lower.astype(upper.dtype)], axis=1),
                                  method=HalfSplitVQGAN.decode)

  # --- the network
  def init_params(self, rng: jax.Array, batch) -> dict[str, Any]:
    s = batch["reference"].shape[1]
    f = self.vqgan.model.downsample_factor
    tokens = jnp.zeros((1, s // (2 * f), s // f, self.vqgan.model.embed_dim), jnp.float32)
    mel = jnp.zeros((1,) + batch["mel"].shape[2:], jnp.float32)
    return {"lipsync": self.network.init(rng, tokens, tokens, tokens, mel)["params"]}

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    del group, step
    return jnp.array(True)

  def encode_frames(self, params, frames: jax.Array, reference: jax.Array):
    """Target frames [B, T, S, S, 3] and reference frames [B, S, S, 3] through ONE call of the
    frozen encoder (one encoder program in the step) -> (T^U [B, T, h/2, w, D], the targets'
    lower `Quantized` [B, T, ...] (ground truth only), R^U, R^B [B, h/2, w, D])."""
    b, t = frames.shape[:2]
    images = jnp.concatenate([frames.reshape((b * t,) + frames.shape[2:]), reference], axis=0)
    upper, lower = self.vqgan.model.apply({"params": self._frozen(params, "vqgan")},
                                          images.astype(jnp.float32), method=HalfSplitVQGAN.encode)
    upper, lower = jax.tree.map(jax.lax.stop_gradient, (upper, lower))
    window = lambda x: x[:b * t].reshape((b, t) + x.shape[1:])
    return (window(upper.codes), jax.tree.map(window, lower), upper.codes[b * t:],
            lower.codes[b * t:])

  def predict(self, params, target_upper: jax.Array, ref_upper: jax.Array, ref_lower: jax.Array,
              mel: jax.Array):
    """T^U [B, T, h/2, w, D], R^U, R^B [B, h/2, w, D], per-frame audio [B, T, L, F] ->
    (T^^B [B, T, h/2, w, D], aux of `LipSyncNet`). The target's lower half is not an argument."""
    b, t = target_upper.shape[:2]
    repeat = lambda x: jnp.repeat(x, t, axis=0)    # example-major, like the reshape below
    flat = lambda x: x.reshape((b * t,) + x.shape[2:])
    pred, aux = self.network.apply({"params": nn.unbox(params["lipsync"])}, flat(target_upper),
                                   repeat(ref_upper), repeat(ref_lower), flat(mel))
    unflat = lambda x: x.reshape((b, t) + x.shape[1:])
    return unflat(pred), jax.tree.map(unflat, aux)

  # --- loss
  def sync_ramp(self, step: jax.Array) -> jax.Array:
    cfg = self.loss_config
    return jnp.clip((step - cfg.sync_start) / max(cfg.sync_ramp, 1), 0.0, 1.0).astype(jnp.float32)

  def _expert_logits(self, params, lower: jax.Array, mel_window: jax.Array) -> jax.Array:
    from swaptalk_jax.losses.sync import expert_logits  # pylint: disable=import-outside-toplevel
    return expert_logits(self.expert.model, self._frozen(params, "expert"), lower, mel_window)

  def forward(self, params, batch):
    """What the loss sees of a training batch: (T^^B, aux, the ground truth's lower `Quantized`,
    T^U, R^B), all [B, T, ...] but R^B [B, ...]."""
    target = batch["target"].astype(jnp.float32)
    # gt: the targets' lower halves, the ground truth only (never a network input)
    target_upper, gt, ref_upper, ref_lower = self.encode_frames(params, target, batch["reference"])
    pred, aux = self.predict(params, target_upper, ref_upper, ref_lower, batch["mel"])
    return pred, aux, gt, target_upper, ref_lower

  def loss(self, group, params, batch, rng, step, carry):
    del rng, carry
    if group != "lipsync":
      raise ValueError(f"LipSyncTask: unknown group {group!r}; groups are {self.groups}")
    cfg = self.loss_config
    target = batch["target"].astype(jnp.float32)
    pred, aux, gt, target_upper, ref_lower = self.forward(params, batch)
    metrics = {"code_mse": token_losses.code_loss(pred, gt.codes, "l2"),
               "copy_code_mse": token_losses.code_loss(
                   jnp.broadcast_to(ref_lower[:, None], gt.codes.shape), gt.codes, "l2"),
               "warped_code_mse": token_losses.code_loss(aux["warped"], gt.codes, "l2"),
               "flow_abs": jnp.mean(jnp.abs(aux["flow"]))}
    total = cfg.code_weight * token_losses.code_loss(pred, gt.codes, cfg.code_type)
    codebook = self.lower_codebook(params)
    metrics["code_accuracy"] = token_losses.code_accuracy(pred, codebook, gt.indices)
    if cfg.ce_weight:
      metrics["code_ce"] = token_losses.code_cross_entropy(pred, codebook, gt.indices,
                                                           cfg.ce_temperature)
      total = total + cfg.ce_weight * metrics["code_ce"]
    if cfg.sync_weight:
      if self.expert is None:
        raise ValueError("LipSyncTask: loss.sync_weight > 0 needs a frozen expert (expert.workdir)")
      from swaptalk_jax.losses.sync import bce_with_logits  # pylint: disable=import-outside-toplevel
      logits = self._expert_logits(params, pred, batch["mel_window"])
      metrics["sync_loss"] = jnp.mean(bce_with_logits(logits, jnp.ones_like(logits)))
      metrics["sync_weight"] = cfg.sync_weight * self.sync_ramp(step)
      total = total + metrics["sync_weight"] * metrics["sync_loss"]
    if cfg.pixel_weight:
      b, t = pred.shape[:2]
      flat = lambda x: x.reshape((b * t,) + x.shape[2:])
      faces = self.decode(params, flat(target_upper), flat(pred))
      s = faces.shape[1]
      metrics["pixel_l1"] = jnp.mean(jnp.abs(faces[:, s // 2:] - flat(target)[:, s // 2:]))
      total = total + cfg.pixel_weight * metrics["pixel_l1"]
    return total, (metrics, None)

  # --- evaluation
  def driven_outputs(self, params, frames: jax.Array, reference: jax.Array, mel: jax.Array,
                     mel_window: jax.Array) -> dict[str, jax.Array]:
    """Everything the eval compares for one setting (frames = the ground truth of this audio):
    lower-half tokens of 'output', 'copy' (R^B unchanged), 'shuffled' (another example's audio),
    'gt' (E of the ground truth), each [B, T, h/2, w, D]; 'upper' T^U; the gt indices; and the
    audio windows (shuffled by the same roll) for the expert."""
    upper, gt, ref_upper, ref_lower = self.encode_frames(params, frames, reference)
    # one network call on [own audio; shuffled audio] (one network program in the eval)
    two = lambda x: jnp.concatenate([x, x], axis=0)
    both, _ = self.predict(params, two(upper), two(ref_upper), two(ref_lower),
                           jnp.concatenate([mel, jnp.roll(mel, 1, axis=0)], axis=0))
    output, shuffled = jnp.split(both, 2, axis=0)
    return {"upper": upper, "gt": gt.codes, "gt_indices": gt.indices, "output": output,
            "copy": jnp.broadcast_to(ref_lower[:, None], output.shape), "shuffled": shuffled,
            "mel_window": mel_window}

  def frame_stats(self, params, batch, cross: bool = True) -> dict[str, jax.Array]:
    """Per-frame figures [B*T] of one batch for the output and each baseline (and 'vq': the
    VQGAN's own reconstruction of the ground truth, the ceiling): lower-face L1 and SSIM, mouth-box
    L1, code accuracy, the decoded face as uint8 [B*T, S, S, 3] ('<name>_image': the host reads
    the mouth opening from it, `mouth_openings`); the ground-truth frame ('gt_image') and whether
    the frame's audio is silent; the expert's score per window when an expert is set."""
    if cross:
      frames, mel, window = batch["resync_target"], batch["resync_mel"], batch["resync_mel_window"]
    else:
      frames, mel, window = batch["target"], batch["mel"], batch["mel_window"]
    frames = frames.astype(jnp.float32)
    out = self.driven_outputs(params, frames, batch["reference"], mel, window)
    b, t = frames.shape[:2]
    n = b * t
    flat = lambda x: x.reshape((n,) + x.shape[2:])
    gt_images = to_unit_range(flat(frames))
    s = gt_images.shape[1]
    cfg = self.eval_config
    r0, r1 = (int(round(v * s)) for v in cfg.mouth_rows)
    c0, c1 = (int(round(v * s)) for v in cfg.mouth_cols)

    def as_uint8(images):   # [0, 1] -> uint8: what the host-side landmark measure reads
      return jnp.round(images * 255.0).astype(jnp.uint8)

    codebook = self.lower_codebook(params)
    stats = {"gt_image": as_uint8(gt_images)}
    # Silence: the mean log-mel of the frame's own audio (the centre steps of its window).
    frame_mel = flat(mel)
    centre = frame_mel.shape[1] // 2
    stats["silent"] = (jnp.mean(frame_mel[:, centre - 2:centre + 2], axis=(1, 2))
                       < cfg.silence_level).astype(jnp.float32)
    names = ("output",) + BASELINES + ("vq",)
    lowers = {name: flat(out["gt"] if name == "vq" else out[name]) for name in names}
    if cfg.quantize:
      lowers = {k: self.quantize_lower(params, v, codebook) for k, v in lowers.items()}
    # one decoder call for every candidate (one decoder program in the eval)
    decoded = to_unit_range(self.decode(params, jnp.tile(flat(out["upper"]), (len(names), 1, 1, 1)),
                                        jnp.concatenate([lowers[k] for k in names], axis=0)))
    for i, name in enumerate(names):
      lower, images = lowers[name], decoded[i * n:(i + 1) * n]
      stats[f"{name}_lower_l1"] = jnp.mean(jnp.abs(images - gt_images)[:, s // 2:], axis=(1, 2, 3))
      stats[f"{name}_lower_ssim"] = ssim(images[:, s // 2:], gt_images[:, s // 2:])
      stats[f"{name}_mouth_l1"] = jnp.mean(jnp.abs(images - gt_images)[:, r0:r1, c0:c1],
                                           axis=(1, 2, 3))
      stats[f"{name}_image"] = as_uint8(images)
      nearest = jnp.argmin(-token_losses.code_logits(lower, codebook), axis=-1)
      stats[f"{name}_code_accuracy"] = jnp.mean(
          (nearest == flat(out["gt_indices"])).astype(jnp.float32), axis=(1, 2))
      if self.expert is not None:
        # every candidate is judged against the audio the ground truth follows
        score = jax.nn.sigmoid(self._expert_logits(params, lower.reshape((b, t) + lower.shape[1:]),
                                                   window))
        stats[f"{name}_expert"] = jnp.repeat(score, t)
    return stats

  def eval_metrics(self, params, batch, rng):
    del rng
    metrics = {}
    settings = [("self", False)] + ([("cross", True)] if "resync_target" in batch else [])
    for prefix, cross in settings:
      stats = self.frame_stats(params, batch, cross)
      for key, value in stats.items():
        if key.endswith(("_l1", "_ssim", "_expert", "_code_accuracy")):
          metrics[f"{prefix}/{key}"] = jnp.mean(value)
    return metrics

  def summaries(self, params, batch):
    """'lipsync': reference | target ground truth | output | copy baseline, the window's centre
    frame; cross-driven (re-sync ground truth) when the batch has it, else self-driven."""
    cross = "resync_target" in batch
    frames = batch["resync_target"] if cross else batch["target"]
    mel = batch["resync_mel"] if cross else batch["mel"]
    window = batch["resync_mel_window"] if cross else batch["mel_window"]
    out = self.driven_outputs(params, frames.astype(jnp.float32), batch["reference"], mel, window)
    c = frames.shape[1] // 2
    lower = out["output"][:, c]
    if self.eval_config.quantize:
      lower = self.quantize_lower(params, lower)
    output = self.decode(params, out["upper"][:, c], lower)
    copy = self.decode(params, out["upper"][:, c], out["copy"][:, c])
    row = jnp.concatenate([batch["reference"], frames[:, c], output, copy], axis=2)
    return {"lipsync": to_unit_range(row)}


CANDIDATES = ("output",) + BASELINES + ("vq",)


def mouth_landmarks(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """dlib's 68 landmarks [N, 68, 2] (256-px crop pixels, metrics/lmd.py) of the ground truth
  ('gt') and of every candidate's decoded face in `frame_stats` output, in the fixed synthetic face
  box: one dlib pass a frame, read by both the mouth opening and LMD."""
  # pylint: disable-next=import-outside-toplevel
  from swaptalk_jax.metrics import identity_preservation, lmd
  box = identity_preservation.SYNTHETIC_FACE_BOX
  return {name: lmd.crop_landmarks(stats[f"{name}_image"], box, name=f"{name} faces")[0]
          for name in ("gt",) + CANDIDATES}


def mouth_openings(landmarks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Per-frame mouth opening of each entry of `mouth_landmarks`: dlib's inner-lip gap over the
  interocular distance (metrics/mouth_frames.py's measure, the one opening of the eval; 0 = lips
  touching). `report_from_stats` and the silence figure read the opening from here."""
  from swaptalk_jax.metrics import mouth, mouth_frames  # pylint: disable=import-outside-toplevel
  return {name: mouth.mouth_opening(points, mouth_frames.LIPS)
          for name, points in landmarks.items()}


def collect_frame_stats(task: LipSyncTask, params, batches: Iterable[dict], cross: bool = True
                        ) -> dict[str, np.ndarray]:
  """`frame_stats` of every batch, concatenated on the host in batch order ([N] per key)."""
  fn = jax.jit(lambda p, b: task.frame_stats(p, b, cross))
  collected: dict[str, list] = {}
  for batch in batches:
    for key, value in jax.device_get(fn(params, batch)).items():
      collected.setdefault(key, []).append(np.asarray(value))
  if not collected:
    raise ValueError("resync_report: no batches")
  return {k: np.concatenate(v) for k, v in collected.items()}


def resync_report(task: LipSyncTask, params, batches: Iterable[dict], cross: bool = True
                ) -> dict[str, float]:
  """Whole-split figures of `collect_frame_stats` (see `report_from_stats`)."""
  return report_from_stats(collect_frame_stats(task, params, batches, cross))


def report_from_stats(stats: dict[str, np.ndarray], landmarks: Optional[dict] = None
                      ) -> dict[str, float]:
  """Whole-split figures from per-frame stats (host numpy): means of every per-frame figure;
  from dlib's landmarks on the decoded faces (`mouth_landmarks`; pass `landmarks` when already
  computed): each candidate's mouth-opening Pearson over all frames with the ground truth's,
  its LMD to the ground truth (mean distance of the 20 mouth points, 256-px crop pixels: the
  paper's LMD, here against the exact re-sync truth) and silence: the mean opening over frames
  with silent audio, next to the ground truth's."""
  from swaptalk_jax.metrics import lmd  # pylint: disable=import-outside-toplevel
  report = {k: float(v.mean()) for k, v in stats.items()
            if k != "silent" and not k.endswith("_image")}
  report["frames"] = len(stats["silent"])
  silent = stats["silent"] > 0.5
  landmarks = mouth_landmarks(stats) if landmarks is None else landmarks
  openings = mouth_openings(landmarks)
  gt_opening = openings["gt"]
  report["silent_frames"] = int(silent.sum())
  for name in CANDIDATES:
    opening = openings[name]
    report[f"{name}_mouth_corr"] = _pearson(opening, gt_opening)
    report[f"{name}_lmd"] = float(lmd.mouth_distances(landmarks[name], landmarks["gt"]).mean())
    if silent.any():
      report[f"{name}_silent_opening"] = float(opening[silent].mean())
  if silent.any():
    report["gt_silent_opening"] = float(gt_opening[silent].mean())
  return report


def make_task(config: ml_collections.ConfigDict) -> LipSyncTask:
  """The stage-3 Task of a `configs/lipsync.py` config; loads the frozen VQGAN (and expert)."""
  vqgan = load_vqgan(config.vqgan.workdir, config.vqgan.ema)
  trained_size = vqgan.config.get("data", {}).get("image_size")
  if trained_size is not None and trained_size != config.data.image_size:
    raise UserError(f"config.data.image_size={config.data.image_size} but the VQGAN in "
                    f"{config.vqgan.workdir} was trained at {trained_size}; set them equal")
  expert = None
  if config.expert.workdir:
    expert = load_expert(config.expert.workdir, config.expert.ema)
  elif config.loss.sync_weight:
    raise UserError(f"config.loss.sync_weight={config.loss.sync_weight} needs a frozen lip expert: "
                    "set config.expert.workdir to a `configs/lip_expert.py` run, or the weight to 0")
  if config.loss.code_type not in token_losses.CODE_LOSSES:
    raise UserError(f"config.loss.code_type={config.loss.code_type!r}; use one of "
                    f"{token_losses.CODE_LOSSES}")
  dtype = jnp.dtype(config.train.compute_dtype)
  return LipSyncTask(network=lipsync_from_config(config.model, vqgan.model.embed_dim, dtype),
                     vqgan=vqgan, loss_config=config.loss, eval_config=config.eval, expert=expert)


# ----------------------------------------------------------------------------- data
def make_train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  """Process-local batches {target, reference, mel, mel_window (+ resync_*)} (grain, resumable)."""
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return pipelines.make_train_iterator("lipsync", config.data, process_index, process_count)


def make_eval_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return pipelines.make_eval_iterator("lipsync", config.data, process_index, process_count)
