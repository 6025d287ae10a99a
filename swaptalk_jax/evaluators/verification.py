"""Face verification of the identity net on held-out identities (`configs/identity.py`):

  c.evals.verification = dict(type="verification", frames_per_clip=8, max_pairs=4000, seed=0)

Frames: `frames_per_clip` evenly spaced frames of every clip of the eval split (held-out
identities) and of the train split, at the net's input size. Pairs (metrics/verification.py):
balanced same/different identity, same-identity pairs across clips. The threshold on the cosine
of the embeddings is the most accurate one on the TRAIN split's pairs, then applied to the eval
split's pairs (never tuned on the pairs it scores). Figures: accuracy (chance 0.5), auc,
threshold, and the same for the raw-pixel cosine of the frames (pixel_accuracy, pixel_auc): the
trivial baseline the net must beat. `pairs`: eval pairs scored.
"""
import jax
import ml_collections
import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.evaluators.common import EvalContext
from swaptalk_jax.metrics import verification


class Evaluator:

  def __init__(self, config: ml_collections.ConfigDict, context: EvalContext):
    self.context = context
    self.frames_per_clip = int(config.get("frames_per_clip", 8))
    self.max_pairs = int(config.get("max_pairs", 4000))
    self.seed = int(config.get("seed", 0))
    if not hasattr(context.task, "embed"):
      raise UserError(f"config.evals.verification: the {type(context.task).__name__} has no "
                      "embed(params, images) method (it evaluates identity nets)")
    self.predict = context.jit_predict(lambda params, batch: context.task.embed(params,
                                                                                batch["image"]))
    self._splits = None

  def _read(self) -> dict:
    """split -> (uint8 frames, pairs, same), read once and reused at every eval."""
    from swaptalk_jax.data import dataset, pipelines  # pylint: disable=import-outside-toplevel
    data = self.context.config.data
    path = pipelines.dataset_path(dict(data.sources[0]))
    out = {}
    for key, split in (("train", data.train_split), ("eval", data.eval_split)):
      frames, labels, clips = dataset.labelled_frames(path, split, self.frames_per_clip,
                                                      int(data.image_size))
      try:
        pairs, same = verification.make_pairs(labels, clips, self.max_pairs, self.seed)
      except ValueError as e:
        raise UserError(f"{path} {split}: {e}") from None
      out[key] = (frames, pairs, same)
    return out

  def _embed(self, params, frames: np.ndarray) -> np.ndarray:
    """Embeddings of uint8 frames in global batches of data.batch_size (last one padded)."""
    batch = int(self.context.config.data.batch_size)
    pid, count = jax.process_index(), jax.process_count()
    local = batch // count
    images = frames.astype(np.float32) * (2.0 / 255.0) - 1.0
    out = []
    for start in range(0, len(images), batch):
      chunk = images[start:start + batch]
      n = len(chunk)
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, 0)])
      part = chunk[pid * local:(pid + 1) * local]
      global_batch = self.context.to_global({"image": part,
                                             "label": np.zeros(local, np.int32)})
      out.append(np.asarray(self.predict(params, global_batch))[:n])
    return np.concatenate(out)

  def run(self, params) -> dict[str, float]:
    if self._splits is None:
      self._splits = self._read()
    scores = {}
    for key, (frames, pairs, _) in self._splits.items():
      scores[key] = (verification.cosine_scores(self._embed(params, frames), pairs),
                     verification.cosine_scores(frames.astype(np.float32) / 127.5 - 1.0, pairs))
    (train_net, train_pix), (eval_net, eval_pix) = scores["train"], scores["eval"]
    same_train, same_eval = self._splits["train"][2], self._splits["eval"][2]
    net = verification.verification(train_net, same_train, eval_net, same_eval)
    pixel = verification.verification(train_pix, same_train, eval_pix, same_eval)
    return {**net, **{f"pixel_{k}": v for k, v in pixel.items() if k != "threshold"},
            "pairs": float(len(same_eval))}
