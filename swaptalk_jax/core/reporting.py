"""Training scalars averaged over steps (CLU collections) and written with CLU writers (TensorBoard
event files + logs). Not the paper's metrics: those are `swaptalk_jax/metrics/`."""
from typing import Mapping, Optional

import jax
import numpy as np
from clu import metric_writers, metrics


def collection_for(names) -> tuple[type, dict[str, str]]:
  """A CLU Collection averaging each named scalar, and metric name -> collection field.

  Names like 'generator/loss' are not identifiers, so fields are 'm0', 'm1', ... in sorted order.
  """
  fields = {name: f"m{i}" for i, name in enumerate(sorted(names))}
  cls = metrics.Collection.create(**{f: metrics.Average.from_output(f) for f in fields.values()})
  return cls, fields


class Averager:
  """Accumulates per-step scalar dicts (device arrays) into a CLU collection; `compute` and reset."""

  def __init__(self):
    self._cls: Optional[type] = None
    self._fields: dict[str, str] = {}
    self._value = None

  def update(self, scalars: Mapping[str, jax.Array]) -> None:
    if self._cls is None:
      self._cls, self._fields = collection_for(scalars)
    update = self._cls.single_from_model_output(**{self._fields[k]: v for k, v in scalars.items()})
    self._value = update if self._value is None else self._value.merge(update)

  def compute_and_reset(self) -> dict[str, float]:
    if self._value is None:
      return {}
    computed = self._value.compute()
    out = {name: float(np.asarray(computed[field])) for name, field in self._fields.items()}
    self._value = None
    return out


def make_writer(logdir: str) -> metric_writers.MetricWriter:
  """TensorBoard + logging on process 0, logging only elsewhere."""
  return metric_writers.create_default_writer(
      logdir, just_logging=jax.process_index() > 0, asynchronous=True)


def to_image_grid(images: np.ndarray, max_images: int = 8) -> np.ndarray:
  """[N, H, W, C] in [0, 1] -> at most `max_images` images as uint8 for write_images."""
  images = np.asarray(images, np.float32)[:max_images]
  return (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8)
