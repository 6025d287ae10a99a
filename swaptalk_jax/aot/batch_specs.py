"""A stage's global batch as ShapeDtypeStructs, from its config alone (no data is read).

The shapes are those the input pipelines yield (swaptalk_jax/data/pipelines.py documents the keys;
tests/test_compile.py checks this table against real batches). A stage whose batches differ (e.g.
one that trains on precomputed token records) defines `batch_spec(config) -> {key:
ShapeDtypeStruct}` in its trainer module, and that is used instead.
"""
import jax
import ml_collections
import numpy as np

from swaptalk_jax.audio.mel import DEFAULT as MEL, num_steps_for_frames
from swaptalk_jax.errors import UserError
from swaptalk_jax.trainers import registry


def _pipeline_shapes(stage: str, data: ml_collections.ConfigDict) -> dict:
  """Per-example shapes and dtypes of `stage`'s pipeline batches."""
  s = int(data.image_size)
  image = ((s, s, 3), np.float32)
  window = int(data[stage].get("window", 5)) if stage in data else 5
  mel = ((num_steps_for_frames(window), MEL.num_mels), np.float32)   # as assemble.py reads it
  if stage in ("vqgan", "toy"):
    return {"image": image}
  if stage == "swap":
    flag = ((), np.bool_)
    return {"source": image, "target": image, "target_gt": image, "has_gt": flag,
            "same_identity": flag}
  if stage == "lip_expert":
    return {"frames": ((window,) + image[0], np.float32), "mel": mel, "label": ((), np.float32)}
  if stage == "lipsync":
    frames, mels = ((window,) + image[0], np.float32), ((window,) + mel[0], np.float32)
    spec = {"target": frames, "reference": image, "mel": mels, "mel_window": mel}
    if data.lipsync.get("resync_gt", False):
      spec.update(resync_target=frames, resync_mel=mels, resync_mel_window=mel)
    return spec
  raise UserError(f"stage {stage!r} has no known batch shapes: give its trainer module a "
                  "batch_spec(config) function")


def batch_spec(config: ml_collections.ConfigDict) -> dict:
  """{key: ShapeDtypeStruct} of one GLOBAL batch (config.data.batch_size examples)."""
  module = registry.stage_module(config)
  if hasattr(module, "batch_spec"):
    return dict(module.batch_spec(config))
  from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
  data = config.data if config.stage == "toy" else pipelines.resolve_config(config.data)
  size = int(config.data.batch_size)
  return {k: jax.ShapeDtypeStruct((size,) + shape, dtype)
          for k, (shape, dtype) in _pipeline_shapes(config.stage, data).items()}
