"""The sync hook backed by SyncNet (syncnet_v2) when the user supplies its converted weights.

`swaptalk convert syncnet` turns syncnet_python's `syncnet_v2.model` into a params file; no weights
ship with any package here, so nothing runs this by default. The hook scores the *aligned* crops
(resized to 224, BGR) with the repo's LSE offset search (`metrics.lse`); those crops are framed
a little differently from syncnet_python's detector crops, so the confidence is a filter signal
close to, not identical with, published LSE-C.
"""
import numpy as np

SAMPLES_PER_FRAME = 640


class SyncNetOffset:
  """Picklable sync_fn: (crops uint8 [T,S,S,3] RGB, audio float32 [T*640]) -> (offset, confidence).

  offset follows PrepConfig's convention (> 0: the audio is late by that many frames), i.e. minus
  metrics.lse's offset (> 0 there: the audio leads). Weights load on first use in each process.
  """

  def __init__(self, params_path: str, vshift: int = 15):
    self.params_path, self.vshift = params_path, vshift
    self._embedders = None

  def __getstate__(self):
    return dict(params_path=self.params_path, vshift=self.vshift, _embedders=None)

  def _load(self):
    from swaptalk_jax.metrics import lse  # pylint: disable=g-import-not-at-top
    from swaptalk_jax.models import syncnet  # pylint: disable=g-import-not-at-top
    return lse.make_embedders(syncnet.load_variables(self.params_path))

  def __call__(self, crops: np.ndarray, audio: np.ndarray) -> tuple[int, float]:
    import cv2  # pylint: disable=g-import-not-at-top
    from swaptalk_jax.metrics import lse  # pylint: disable=g-import-not-at-top
    from swaptalk_jax.models.syncnet import LIP_SIZE  # pylint: disable=g-import-not-at-top
    if self._embedders is None:
      self._embedders = self._load()
    frames_bgr = np.stack([cv2.resize(c, (LIP_SIZE, LIP_SIZE), interpolation=cv2.INTER_AREA)[..., ::-1]
                           for c in crops])
    pcm = np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    scores = lse.evaluate_clip(self._embedders, frames_bgr, pcm, self.vshift)
    return -int(scores.offset), float(scores.confidence)
