"""The identity-net trainer: the ArcFace IResNet port + an additive-angular-margin head over a
prepared dataset's identity labels (`configs/identity.py`).

Two parameter groups: 'embedder' (the IResNet, the part later stages load) and 'head' (the class
centres, training only). The embedder's loss is the margin softmax with the head held fixed; it
hands its embeddings (stop_gradient) to the head's loss, so the body runs once per step. BatchNorm
trains on batch statistics; their running averages live in the task state (momentum
`config.batch_norm_momentum`) and are written into the embedder's mean/var params after every
update, so the params alone are the inference network (what `load_identity_net` returns).
"""
import dataclasses
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from flax import traverse_util

from swaptalk_jax.core.task import STATS, TaskHooks
from swaptalk_jax.errors import UserError
from swaptalk_jax.losses import identity_nets
from swaptalk_jax.losses.angular_margin import margin_softmax_loss
from swaptalk_jax.models.arcface import IResNet, stage_features
from swaptalk_jax.models.margin_head import MarginHead, l2_normalise

STAGE = "identity"


def iresnet_from_config(model: ml_collections.ConfigDict, training: bool = False,
                        dtype: Any = jnp.float32) -> IResNet:
  return IResNet(blocks=tuple(model.blocks), widths=tuple(model.widths),
                 input_size=int(model.input_size), embedding_dim=int(model.embedding_dim),
                 dtype=dtype, use_batch_stats=training)


def to_input_size(images: jax.Array, size: int) -> jax.Array:
  """[N, H, W, 3] in [-1, 1] -> [N, size, size, 3] f32 (antialiased bilinear when H, W differ)."""
  images = images.astype(jnp.float32)
  if images.shape[1:3] == (size, size):
    return images
  return jax.image.resize(images, (images.shape[0], size, size, images.shape[-1]), "linear",
                          antialias=True)


# ----------------------------------------------------------------------------- the task
@dataclasses.dataclass
class IdentityTask(TaskHooks):
  """The Task of the identity net (see swaptalk_jax/core/task.py)."""
  model_config: ml_collections.ConfigDict
  num_classes: int
  momentum: float
  dtype: Any = jnp.float32
  groups: tuple[str, ...] = ("embedder", "head")
  ema_groups: tuple[str, ...] = ("embedder",)

  def __post_init__(self):
    self.train_net = iresnet_from_config(self.model_config, True, self.dtype)
    self.net = iresnet_from_config(self.model_config, False, self.dtype)
    self.head = MarginHead(self.num_classes)
    self.input_size = int(self.model_config.input_size)

  def init_params(self, rng: jax.Array, batch) -> dict[str, Any]:
    rng_net, rng_head = jax.random.split(rng)
    images = to_input_size(batch["image"][:1], self.input_size)
    embedder = self.net.init(rng_net, images)["params"]
    head = self.head.init(rng_head, jnp.zeros((1, int(self.model_config.embedding_dim))))["params"]
    return {"embedder": embedder, "head": head}

  def init_task_state(self, params) -> dict[str, Any]:
    """The BatchNorm running statistics, flat ('layer1_0/bn1/mean' -> [C]), from the init params."""
    flat = traverse_util.flatten_dict(nn.unbox(params["embedder"]), sep="/")
    return {"running": {k: v for k, v in flat.items() if k.rsplit("/", 1)[-1] in ("mean", "var")}}

  def update_task_state(self, params, task_state, stats, batch, rng, step):
    """running <- m * running + (1 - m) * this step's batch statistics; written into the
    embedder's mean/var params (overriding whatever the optimizer did to them: they get no
    gradient, only weight decay)."""
    del batch, rng, step
    m = self.momentum
    running = {k: m * v + (1.0 - m) * stats["embedder"][k] for k, v in task_state["running"].items()}
    flat = traverse_util.flatten_dict(params["embedder"], sep="/")
    flat.update(running)
    params = {**params, "embedder": traverse_util.unflatten_dict(flat, sep="/")}
    return params, {"running": running}, {}

  def is_active(self, group: str, step: jax.Array) -> jax.Array:
    del group, step
    return jnp.array(True)

  def embed(self, params, images: jax.Array) -> jax.Array:
    """Inference embeddings (running statistics), unit-norm [N, E]."""
    x = to_input_size(images, self.input_size)
    return l2_normalise(self.net.apply({"params": nn.unbox(params["embedder"])}, x))

  def _margin_loss(self, cosines, labels):
    cfg = self.model_config
    ce = margin_softmax_loss(cosines, labels, float(cfg.scale), float(cfg.margin))
    accuracy = jnp.mean((jnp.argmax(cosines, -1) == labels).astype(jnp.float32))
    return jnp.mean(ce), accuracy

  def loss(self, group, params, batch, rng, step, carry):
    del rng, step
    labels = batch["label"].astype(jnp.int32)
    head = {"params": nn.unbox(params["head"])}
    if group == "embedder":
      x = to_input_size(batch["image"], self.input_size)
      embeddings, updates = self.train_net.apply({"params": nn.unbox(params["embedder"])}, x,
                                                 mutable=["batch_stats"])
      loss, accuracy = self._margin_loss(self.head.apply(head, embeddings), labels)
      batch_stats = traverse_util.flatten_dict(updates["batch_stats"], sep="/")
      metrics = {"margin_ce": loss, "train_accuracy": accuracy,
                 STATS: jax.lax.stop_gradient(batch_stats)}
      return loss, (metrics, jax.lax.stop_gradient(embeddings))
    if group == "head":
      loss, _ = self._margin_loss(self.head.apply(head, carry), labels)
      return loss, ({}, None)
    raise ValueError(f"IdentityTask: unknown group {group!r}; groups are {self.groups}")

  def eval_metrics(self, params, batch, rng):
    """Within the batch (eval split: held-out identities), the mean cosine of same-identity pairs
    and of different-identity pairs, and their gap."""
    del rng
    e = self.embed(params, batch["image"])
    labels = batch["label"]
    cos = e @ e.T
    off_diagonal = 1.0 - jnp.eye(e.shape[0])
    same = (labels[:, None] == labels[None, :]).astype(jnp.float32) * off_diagonal
    diff = 1.0 - (labels[:, None] == labels[None, :]).astype(jnp.float32)
    same_cos = jnp.sum(cos * same) / jnp.maximum(jnp.sum(same), 1.0)
    diff_cos = jnp.sum(cos * diff) / jnp.maximum(jnp.sum(diff), 1.0)
    return {"same_cos": same_cos, "diff_cos": diff_cos, "cos_gap": same_cos - diff_cos}

  def summaries(self, params, batch):
    """'nearest': one row per example: the face | its nearest other face of the batch by
    embedding | a swatch, green when that neighbour is the same identity, red otherwise."""
    images = to_input_size(batch["image"], self.input_size)
    e = self.embed(params, images)
    cos = e @ e.T - 3.0 * jnp.eye(e.shape[0])
    nearest = jnp.argmax(cos, axis=-1)
    same = (batch["label"][nearest] == batch["label"]).astype(jnp.float32)
    swatch = jnp.stack([1.0 - same, same, jnp.zeros_like(same)], -1)
    swatch = jnp.broadcast_to(swatch[:, None, None, :], images.shape[:2] + (images.shape[2] // 4, 3))
    row = jnp.concatenate([images, images[nearest], swatch * 2.0 - 1.0], axis=2)
    return {"nearest": jnp.clip((row + 1.0) * 0.5, 0.0, 1.0)}


def num_classes(config: ml_collections.ConfigDict) -> int:
  """The head's classes: config.num_classes when set (> 0: e.g. `swaptalk compile` without the
  data), else the identities of the train split over all sources; >= 2 or a UserError."""
  from swaptalk_jax.data import dataset, pipelines  # pylint: disable=import-outside-toplevel
  if int(config.get("num_classes", 0) or 0) > 0:
    if int(config.num_classes) < 2:
      raise UserError(f"config.num_classes={config.num_classes}: the identity net needs >= 2")
    return int(config.num_classes)
  data = pipelines.resolve_config(config.data)
  total = 0
  for source in data.sources:
    path = pipelines.dataset_path(dict(source))
    tables = dataset.cached_meta(str(path)).clip_tables
    if data.train_split not in tables:
      raise UserError(f"{path}: no split {data.train_split!r} (has {sorted(tables)})")
    total += len({c.identity for c in tables[data.train_split]})
  if total < 2:
    raise UserError(f"the identity net needs >= 2 labelled identities in split "
                    f"{data.train_split!r} of config.data.sources; found {total}")
  return total


def make_task(config: ml_collections.ConfigDict) -> IdentityTask:
  """The Task of a `configs/identity.py` config (class count from the train split)."""
  if int(config.data.image_size) != int(config.model.input_size):
    raise UserError(f"config.data.image_size={config.data.image_size} but the identity net's "
                    f"config.model.input_size={config.model.input_size}; set them equal")
  return IdentityTask(model_config=config.model, num_classes=num_classes(config),
                      momentum=float(config.batch_norm_momentum),
                      dtype=jnp.dtype(config.train.compute_dtype))


# ----------------------------------------------------------------------------- loading a run
def identity_net_from_config(model: ml_collections.ConfigDict, name: str = "trained"
                             ) -> identity_nets.IdentityNet:
  """The IdentityNet of a trained run's model config: any [-1, 1] NHWC face crops, resized to the
  net's input size as in training -> unit-norm [N, embedding_dim]."""
  net = iresnet_from_config(model)
  size = int(model.input_size)

  def embed(params, images):
    return l2_normalise(net.apply({"params": params}, to_input_size(images, size)))

  def features(params, images):
    return stage_features(net, params, to_input_size(images, size))

  return identity_nets.IdentityNet(f"identity_{name}", embed, features)


def load_identity_net(workdir: str | None, ema: bool = True
                      ) -> tuple[identity_nets.IdentityNet, Any]:
  """(IdentityNet, embedder params as device arrays) of a `configs/identity.py` run directory."""
  import json  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.core import checkpoint  # pylint: disable=import-outside-toplevel
  if not workdir:
    raise UserError("config.identity.workdir is not set: identity.kind='trained' needs a run of "
                    "`swaptalk train --config=configs/identity.py:<variant> --workdir=DIR`")
  directory = checkpoint.step_dir(workdir)        # MissingFileError when there is no run
  try:
    stage = json.loads((directory / "config" / "metadata").read_text()).get("stage")
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{directory}: no readable config: {e}") from None
  if stage != STAGE:
    raise UserError(f"config.identity.workdir={workdir} is a {stage!r} run, not an identity-net "
                    "run (configs/identity.py)")
  params, _, config = checkpoint.load_params(workdir, "embedder", ema)
  return (identity_net_from_config(config.model, str(config.get("variant", "trained"))),
          jax.tree.map(jnp.asarray, params))


def identity_net_for(ident: ml_collections.ConfigDict, weights: dict[str, float]
                     ) -> tuple[Optional[identity_nets.IdentityNet], Any]:
  """(IdentityNet, params) of a stage config's `identity` block (configs/common.identity_config),
  or (None, None) when every identity-loss weight in `weights` ({'loss.<name>': value}) is 0.
  The one loader of the VQGAN's and the swap's identity losses; a weight > 0 without a usable
  network is a UserError at start-up, never a random network instead."""
  on = {k: v for k, v in weights.items() if v}
  if not on:
    return None, None
  if ident.kind == "none":
    raise UserError(f"config {on} needs an identity network but config.identity.kind is 'none'; "
                    "set it to 'arcface' (with identity.arcface_path) or 'trained' (with "
                    "identity.workdir), or set the weights to 0")
  if ident.kind == "arcface":
    if not ident.arcface_path:
      raise UserError("config.identity.kind='arcface' needs config.identity.arcface_path (convert "
                      "the weights with `swaptalk convert arcface SRC DST`)")
    from swaptalk_jax.losses import identity  # pylint: disable=import-outside-toplevel
    return (identity_nets.arcface_identity_net(ident.arcface_variant),
            identity.load_arcface_params(ident.arcface_path, ident.arcface_variant))
  if ident.kind == "trained":
    return load_identity_net(ident.workdir)
  raise UserError(f"config.identity.kind={ident.kind!r}; use 'none', 'arcface' or 'trained'")


# ----------------------------------------------------------------------------- data
def batch_spec(config: ml_collections.ConfigDict) -> dict[str, jax.ShapeDtypeStruct]:
  """One global batch's shapes (aot/batch_specs.py: `swaptalk compile` reads no data)."""
  b, s = int(config.data.batch_size), int(config.data.image_size)
  return {"image": jax.ShapeDtypeStruct((b, s, s, 3), jnp.float32),
          "label": jax.ShapeDtypeStruct((b,), jnp.int32)}


def make_train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  """Process-local batches {image [B,S,S,3] in [-1, 1], label [B] int32} (grain, resumable)."""
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return pipelines.make_train_iterator(STAGE, config.data, process_index, process_count)


def make_eval_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int):
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  return pipelines.make_eval_iterator(STAGE, config.data, process_index, process_count)
