"""The trained stages as pure functions over their params, jit-compiled once at a fixed batch.

  encode(vq_params, images [B,S,S,3] in [-1,1]) -> T_VQ [B,h,w,D]   (quantised token embeddings)
  swap(swap_params, source_tokens, target_tokens) -> T~_VQ           (models/swap.py)
  lipsync(params, tokens, reference_tokens, mel_windows) -> tokens    (models/lipsync.py)
  decode(vq_params, tokens) -> images [B,S,S,3] in [-1,1]

Each stage is loaded from a `swaptalk train` run directory with core/checkpoint.load_params (EMA
params where the run kept them) and the model config stored in that run, so a run directory is all
`generate` needs. A later stage's run names the VQGAN it was trained on (`config.vqgan.workdir`);
the VQGAN given to generate must have the same model config, else a one-line error.
"""
import dataclasses
import functools
import json
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.core import checkpoint
from swaptalk_jax.errors import MissingFileError, UserError


@dataclasses.dataclass
class LoadedStage:
  """One stage: its flax module, params (device arrays), run config, step and workdir."""
  model: Any
  params: Any
  config: Any
  step: int
  workdir: str


def _load(workdir: str, stage: str, group: str) -> tuple[Any, int, Any]:
  if not os.path.isdir(workdir):
    raise MissingFileError(f"{stage} run directory {workdir} does not exist")
  params, step, config = checkpoint.load_params(workdir, group=group, ema=True)
  if config.get("stage") != stage:
    raise UserError(f"{workdir} is a {config.get('stage')!r} run, not a {stage!r} run")
  return params, step, config


def _groups(workdir: str) -> list[str]:
  """Parameter groups stored in the latest checkpoint of a run (from Orbax's tree metadata; the
  item's handler reads it directly: the Checkpointer would look for step metadata in the item
  folder and warn that it is missing)."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  item = (checkpoint.step_dir(workdir) / "state").absolute()
  meta = ocp.StandardCheckpointHandler().metadata(item)
  tree = getattr(meta, "item_metadata", None) or getattr(meta, "tree", None) or meta
  return sorted(tree["params"])


def load_vqgan(workdir: str) -> LoadedStage:
  from swaptalk_jax.models.vqgan import vqgan_from_config  # pylint: disable=import-outside-toplevel
  params, step, config = _load(workdir, "vqgan", "generator")
  model = vqgan_from_config(config.model, jnp.dtype(config.train.get("compute_dtype", "float32")))
  return LoadedStage(model, jax.device_put(params), config, step, workdir)


def load_swap(workdir: str, vqgan: LoadedStage) -> LoadedStage:
  from swaptalk_jax.models.swap import swap_model_from_config  # pylint: disable=import-outside-toplevel
  groups = _groups(workdir) if os.path.isdir(workdir) else ["swap"]
  group = "swap" if "swap" in groups else groups[0]
  params, step, config = _load(workdir, "swap", group)
  check_same_vqgan(config, vqgan, workdir)
  model = swap_model_from_config(config.model, jnp.dtype(config.train.get("compute_dtype",
                                                                           "float32")))
  return LoadedStage(model, jax.device_put(params), config, step, workdir)


def check_same_vqgan(config, vqgan: LoadedStage, workdir: str) -> None:
  """A later stage's run must have been trained on a VQGAN with `vqgan`'s model config."""
  trained_on = config.get("vqgan", {}).get("workdir")
  if not trained_on or not os.path.isdir(trained_on):
    return   # the run's VQGAN moved: the token width check below still guards the shapes
  try:
    _, _, other = checkpoint.load_params(trained_on, group="generator", ema=True)
  except (UserError, FileNotFoundError):
    return
  # remat (how a run trained) is not part of the architecture
  from swaptalk_jax.models.remat import without_remat  # pylint: disable=import-outside-toplevel
  if (json.dumps(without_remat(other.model.to_dict()), sort_keys=True)
      != json.dumps(without_remat(vqgan.config.model.to_dict()), sort_keys=True)):
    raise UserError(f"{workdir} was trained on the VQGAN {trained_on}, whose model config differs "
                    f"from that of --vqgan {vqgan.workdir}")


@dataclasses.dataclass
class Chain:
  """The stages `generate` runs, as jitted pure functions of (params, arrays) at `batch_size`."""
  vqgan: LoadedStage
  swap: Optional[LoadedStage] = None
  lipsync: Optional[LoadedStage] = None
  batch_size: int = 8
  snap_to_codes: bool = True     # swapped tokens snapped to the nearest code of their half

  @property
  def image_size(self) -> int:
    return int(self.vqgan.config.data.image_size)

  @functools.cached_property
  def encode(self) -> Callable:
    model = self.vqgan.model

    def fn(params, images):
      upper, lower = model.apply({"params": params}, images, method=type(model).encode)
      return jnp.concatenate([upper.codes, lower.codes], axis=1)
    return jax.jit(fn)

  @functools.cached_property
  def decode(self) -> Callable:
    model = self.vqgan.model
    return jax.jit(lambda params, tokens: model.apply({"params": params}, tokens,
                                                      method=type(model).decode))

  @functools.cached_property
  def swap_fn(self) -> Callable:
    from swaptalk_jax.models.swap import quantize_to_codes  # pylint: disable=import-outside-toplevel
    model, vq, snap = self.swap.model, self.vqgan.model, self.snap_to_codes

    def fn(params, vq_params, source, target):
      out = model.apply({"params": params}, source, target)
      return quantize_to_codes(vq, vq_params, out) if snap else out
    return jax.jit(fn)

  @functools.cached_property
  def lipsync_fn(self) -> Callable:
    """(T_VQ [B,h,w,D], R~_VQ [B,h,w,D], mel windows [B,16,80]) -> T_VQ with the lower half
    predicted from the upper half, the reference and the audio (LipSyncNet); the target's own
    lower half is never read."""
    model, vq, snap = self.lipsync.model, self.vqgan.model, self.snap_to_codes

    def fn(params, vq_params, tokens, reference, mel):
      half = tokens.shape[1] // 2
      lower, _ = model.apply({"params": params}, tokens[:, :half], reference[:, :half],
                             reference[:, half:], mel)
      out = jnp.concatenate([tokens[:, :half], lower.astype(tokens.dtype)], axis=1)
      if snap:
        from swaptalk_jax.models.swap import quantize_to_codes  # pylint: disable=import-outside-toplevel
        out = quantize_to_codes(vq, vq_params, out)
      return out
    return jax.jit(fn)

  def lipsync_tokens(self, tokens: np.ndarray, reference: np.ndarray,
                     mel: np.ndarray) -> np.ndarray:
    """T_VQ [N,h,w,D], one reference R~_VQ [1,h,w,D], per-frame mel windows [N,16,80]."""
    ref = np.broadcast_to(reference, tokens.shape)
    return self.batched(lambda t, r, m: self.lipsync_fn(self.lipsync.params, self.vqgan.params,
                                                        t, r, m), tokens, ref, mel)

  def batched(self, fn: Callable, *arrays: np.ndarray) -> np.ndarray:
    """fn over the leading axis of `arrays` in fixed batches (the last padded): one compile."""
    n, b = arrays[0].shape[0], self.batch_size
    out = []
    for s in range(0, n, b):
      parts = [a[s:s + b] for a in arrays]
      k = parts[0].shape[0]
      if k < b:
        parts = [np.concatenate([p, np.repeat(p[-1:], b - k, axis=0)]) for p in parts]
      out.append(np.asarray(fn(*parts))[:k])
    return np.concatenate(out) if out else np.zeros((0,))

  def encode_images(self, crops: np.ndarray) -> np.ndarray:
    """uint8 crops [N,S,S,3] -> T_VQ [N,h,w,D]."""
    images = crops.astype(np.float32) / 127.5 - 1.0
    return self.batched(lambda x: self.encode(self.vqgan.params, x), images)

  def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
    """T_VQ [N,h,w,D] -> uint8 faces [N,S,S,3]."""
    images = self.batched(lambda z: self.decode(self.vqgan.params, z), tokens)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)

  def swap_tokens(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """S_VQ [1,h,w,D] (one photo) and T_VQ [N,h,w,D] -> T~_VQ [N,h,w,D]."""
    src = np.broadcast_to(source, target.shape)
    return self.batched(lambda s, t: self.swap_fn(self.swap.params, self.vqgan.params, s, t),
                        src, target)


def run_dirs(run: Optional[str], vqgan: Optional[str], swap: Optional[str],
             lipsync: Optional[str]) -> dict:
  """Stage run directories from explicit flags, else `<run>/{vqgan,swap,lipsync}`."""
  dirs = dict(vqgan=vqgan, swap=swap, lipsync=lipsync)
  for name in dirs:
    if not dirs[name] and run:
      dirs[name] = os.path.join(run, name)
  return dirs


def load_lipsync(workdir: str, vqgan: LoadedStage) -> LoadedStage:
  """The stage-3 lip-sync run (models/lipsync.py LipSyncNet, param group 'lipsync')."""
  from swaptalk_jax.models.lipsync import lipsync_from_config  # pylint: disable=import-outside-toplevel
  params, step, config = _load(workdir, "lipsync", "lipsync")
  check_same_vqgan(config, vqgan, workdir)
  model = lipsync_from_config(config.model, int(vqgan.config.model.embed_dim),
                              jnp.dtype(config.train.get("compute_dtype", "float32")))
  return LoadedStage(model, jax.device_put(params), config, step, workdir)
