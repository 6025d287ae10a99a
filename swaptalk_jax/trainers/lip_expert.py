"""Stage 2 trainer: the VQ-lip expert on in-sync / shifted (frames, mel) windows.

Each step encodes the window's lower face halves with the FROZEN stage-0 VQGAN (encoder + codebook
C^B, only the lower half, under stop_gradient; its params come in as `params[FROZEN]['vqgan']`, a
jit argument) and trains the expert with BCE on its sync logit against the label. The VQGAN is
loaded from `config.vqgan.workdir`. Eval: loss and accuracy on held-out identities per batch, and
`offset_evaluation`: SyncNet's AV-offset detection over whole eval clips (metrics/av_offset.py).
"""
import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from swaptalk_jax.core.task import FROZEN, TaskHooks
from swaptalk_jax.errors import UserError
from swaptalk_jax.losses.sync import bce_with_logits
from swaptalk_jax.metrics import av_offset
from swaptalk_jax.models.lip_expert import LipExpert, lip_expert_from_config
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config


# ----------------------------------------------------------------------------- the frozen VQGAN
@dataclasses.dataclass
class FrozenVQGAN:
  model: HalfSplitVQGAN
  params: Any
  config: ml_collections.ConfigDict     # the stage-0 run's stored config
  step: int


def load_vqgan(workdir: str | None, ema: bool = True) -> FrozenVQGAN:
  """The stage-0 VQGAN of a `swaptalk train` run directory, with the config it was trained with."""
  from swaptalk_jax.core import checkpoint  # pylint: disable=import-outside-toplevel
  if not workdir:
    raise UserError("config.vqgan.workdir is not set: stage 2 needs a trained stage-0 VQGAN "
                    "(a `swaptalk train --config=configs/vqgan.py:...` run directory)")
  params, step, config = checkpoint.load_params(workdir, "generator", ema)
  if config.get("stage") != "vqgan":
    raise UserError(f"config.vqgan.workdir={workdir} is a {config.get('stage')!r} run, not vqgan")
  return FrozenVQGAN(vqgan_from_config(config.model), params, config, step)


def lower_embeddings(vqgan: HalfSplitVQGAN, vqgan_params, frames: jax.Array) -> jax.Array:
  """Frames [B, T, S, S, 3] in [-1, 1] -> their lower-half token embeddings [B, T, h/2, w, D]
  (codebook C^B vectors), without gradient. Only the lower halves are encoded: the encoder sees
  each half as its own image, so this equals `HalfSplitVQGAN.encode`'s lower output."""
  b, t, s, w, c = frames.shape
  halves = frames.reshape(b * t, s, w, c)[:, s // 2:]

  def encode_lower(module, x):
    return module.quantizer_lower(module.encoder(x).astype(jnp.float32)).quantized

  q = vqgan.apply({"params": vqgan_params}, halves.astype(jnp.float32), method=encode_lower)
  return jax.lax.stop_gradient(q.reshape((b, t) + q.shape[1:]))


# ----------------------------------------------------------------------------- the task
@dataclasses.dataclass
class LipExpertTask(TaskHooks):
  """The Task of stage 2 (see swaptalk_jax/core/task.py)."""
  expert: LipExpert
  vqgan: FrozenVQGAN
  groups: tuple[str, ...] = ("expert",)
  ema_groups: tuple[str, ...] = ("expert",)

  def frozen_params(self) -> dict[str, Any]:
    return {"vqgan": self.vqgan.params}

  def _vqgan_params(self, params):
    frozen = params.get(FROZEN, {})
    if "vqgan" not in frozen:
      raise ValueError(f"LipExpertTask: params lack the frozen VQGAN under {FROZEN!r}['vqgan']; "
                       "pass {..., FROZEN: task.frozen_params()}")
    return frozen["vqgan"]

  def tokens(self, params, frames: jax.Array) -> jax.Array:
    return lower_embeddings(self.vqgan.model, self._vqgan_params(params), frames)

  def init_params(self, rng: jax.Array, batch) -> dict[str, Any]:
    b, t, s, w, _ = batch["frames"].shape
    f = self.vqgan.model.downsample_factor
    tokens = jnp.zeros((b, t, s // (2 * f), w // f, self.vqgan.model.embed_dim), jnp.float32)
    return {"expert": self.expert.init(rng, tokens, batch["mel"])["params"]}

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    del group, step
    return jnp.array(True)

  def logits(self, params, batch) -> jax.Array:
    tokens = self.tokens(params, batch["frames"])
    return self.expert.apply({"params": nn.unbox(params["expert"])}, tokens, batch["mel"])

  def _metrics(self, params, logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
    labels = labels.astype(jnp.float32)
    correct = ((logits > 0).astype(jnp.float32) == labels).astype(jnp.float32)
    pos, neg = jnp.maximum(jnp.sum(labels), 1.0), jnp.maximum(jnp.sum(1 - labels), 1.0)
    prob = jax.nn.sigmoid(logits)
    out = {"bce": jnp.mean(bce_with_logits(logits, labels)), "accuracy": jnp.mean(correct),
           "score_pos": jnp.sum(prob * labels) / pos,
           "score_neg": jnp.sum(prob * (1 - labels)) / neg}
    if self.expert.score == "scaled":
      out["scale"] = self.expert.apply({"params": nn.unbox(params["expert"])},
                                       method=LipExpert.scale)
    return out

  def loss(self, group, params, batch, rng, step, carry):
    del rng, step, carry
    if group != "expert":
      raise ValueError(f"LipExpertTask: unknown group {group!r}; groups are {self.groups}")
    logits = self.logits(params, batch)
    metrics = self._metrics(params, logits, batch["label"])
    return metrics["bce"], (metrics, None)

  def eval_metrics(self, params, batch, rng):
    del rng
    return self._metrics(params, self.logits(params, batch), batch["label"])

  def summaries(self, params, batch):
    """'scores': one row per example, a label swatch (green in sync, red shifted) then a bar as
    long as the expert's sync probability."""
    prob = jax.nn.sigmoid(self.logits(params, batch))
    label = batch["label"].astype(jnp.float32)
    width, height = 64, 6
    x = jnp.arange(width, dtype=jnp.float32)[None, :] / width
    bar = (x < prob[:, None]).astype(jnp.float32)                      # [B, W]
    swatch = jnp.stack([1 - label, label, jnp.zeros_like(label)], -1)  # [B, 3]
    row = jnp.where((x < 0.1)[..., None], swatch[:, None, :], bar[..., None] * 0.8)
    return {"scores": jnp.repeat(row[:, None], height, axis=1)}


def make_task(config: ml_collections.ConfigDict) -> LipExpertTask:
  """The stage-2 Task of a `configs/lip_expert.py` config; loads the frozen VQGAN it names."""
  vqgan = load_vqgan(config.vqgan.workdir, config.vqgan.ema)
  trained_size = vqgan.config.get("data", {}).get("image_size")
  if trained_size is not None and trained_size != config.data.image_size:
    raise UserError(f"config.data.image_size={config.data.image_size} but the VQGAN in "
                    f"{config.vqgan.workdir} was trained at {trained_size}; set them equal")
  dtype = jnp.dtype(config.train.compute_dtype)
  return LipExpertTask(expert=lip_expert_from_config(config.model, dtype), vqgan=vqgan)


# ----------------------------------------------------------------------------- offset evaluation
def make_score_fn(task: LipExpertTask, expert_params, batch_windows: int = 16):
  """score_fn for `av_offset.detect_offsets`: the expert's logits of every (window, offset) pair;
  each window's frames are encoded and embedded once, its audio windows all together."""
  @jax.jit
  def scores(expert_params, vqgan_params, frames, mels):
    tokens = lower_embeddings(task.vqgan.model, vqgan_params, frames)
    variables = {"params": nn.unbox(expert_params)}
    visual = task.expert.apply(variables, tokens, method=LipExpert.embed_visual)
    w, o = mels.shape[:2]
    audio = task.expert.apply(variables, mels.reshape((w * o,) + mels.shape[2:]),
                              method=LipExpert.embed_audio).reshape(w, o, -1)
    return task.expert.apply(variables, visual[:, None], audio,
                             method=LipExpert.logits_from_embeddings)

  def score_fn(frames: np.ndarray, mels: np.ndarray) -> np.ndarray:
    out = []
    for i in range(0, len(frames), batch_windows):   # fixed chunk size: one compile
      f, m = frames[i:i + batch_windows], mels[i:i + batch_windows]
      n = len(f)
      if n < batch_windows:
        f = np.concatenate([f, np.repeat(f[-1:], batch_windows - n, 0)])
        m = np.concatenate([m, np.repeat(m[-1:], batch_windows - n, 0)])
      out.append(np.asarray(scores(expert_params, task.vqgan.params, f, m))[:n])
    return np.concatenate(out)
  return score_fn


def offset_evaluation(config: ml_collections.ConfigDict, task: LipExpertTask, expert_params,
                      split: str | None = None, delays: tuple[int, ...] = (0, 5, -5),
                      clips: list | None = None) -> tuple[dict[str, float], np.ndarray]:
  """AV-offset detection over the eval split's clips (held-out identities), for the track as
  recorded (delay 0) and with the audio delayed by each of `delays` frames.

  Returns ({'offset_acc', 'offset_acc_1', 'clip_offset_acc', 'offset_margin', 'windows'} of the
  in-sync track, plus for each delay d != 0 'delay{d}_clip_offset_acc' (clips whose detected
  offset is exactly d), 'delay{d}_sign_acc' (windows whose detected offset has d's sign) and
  'delay{d}_offset_acc_1'), and an RGB image of the mean score curves (blue: in sync, then the
  delays in order) for TensorBoard.
  """
  oc = config.offset_eval
  if clips is None:
    clips = av_offset.read_clips(_eval_dir(config), split or config.data.eval_split,
                                 config.data.image_size, oc.max_clips)
  score_fn = make_score_fn(task, expert_params)
  window = int(config.data.lip_expert.window)
  margin = max(abs(d) for d in delays)
  scores, curves = {}, []
  for d in delays:
    result = av_offset.detect_offsets(score_fn, [c.delayed(d) for c in clips], oc.max_offset,
                                      window, oc.window_stride, margin)
    curves.append(result.scores.mean(axis=0))
    summary = result.summary(expected=d)
    if d == 0:
      scores.update(summary)
    else:
      found = result.window_offsets()
      scores[f"delay{d}_clip_offset_acc"] = summary["clip_offset_acc"]
      scores[f"delay{d}_offset_acc_1"] = summary["offset_acc_1"]
      scores[f"delay{d}_sign_acc"] = float(np.mean(np.sign(found) == np.sign(d)))
  image = av_offset.plot_curve(np.arange(-oc.max_offset, oc.max_offset + 1), np.stack(curves))
  return scores, image


def _eval_dir(config) -> str:
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  sources = config.data.sources
  if len(sources) != 1:
    raise UserError("offset evaluation reads one dataset; config.data.sources has "
                    f"{len(sources)}")
  return str(pipelines.dataset_path(dict(sources[0])))


# ----------------------------------------------------------------------------- data
def make_train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  """Process-local batches {frames [B,5,S,S,3], mel [B,16,80], label [B]} (grain, resumable)."""
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return pipelines.make_train_iterator("lip_expert", config.data, process_index, process_count)


def make_eval_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return pipelines.make_eval_iterator("lip_expert", config.data, process_index, process_count)
