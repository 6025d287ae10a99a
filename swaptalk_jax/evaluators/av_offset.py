"""Stage 2's split-level evaluator: SyncNet-style AV-offset detection with the lip expert over the
eval split's whole clips (held-out identities), in sync and with the audio delayed by +-N frames
(trainers/lip_expert.offset_evaluation, metrics/av_offset.py):

  c.evals.av_offset = dict(type="av_offset", delays=(0, 5, -5))

Figures: offset_acc, offset_acc_1, clip_offset_acc, offset_margin of the in-sync track and, per
delay d, delay{d}_clip_offset_acc / delay{d}_sign_acc / delay{d}_offset_acc_1.
"""
import ml_collections

from swaptalk_jax.evaluators.common import EvalContext


class Evaluator:

  def __init__(self, config: ml_collections.ConfigDict, context: EvalContext):
    self.context = context
    self.delays = tuple(int(d) for d in config.get("delays", (0, 5, -5)))
    self._clips = None

  def run(self, params) -> dict[str, float]:
    from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
    from swaptalk_jax.metrics import av_offset  # pylint: disable=import-outside-toplevel
    from swaptalk_jax.trainers import lip_expert  # pylint: disable=import-outside-toplevel
    config = self.context.config
    if self._clips is None:   # read once, reused at every eval
      sources = config.data.sources
      self._clips = av_offset.read_clips(str(pipelines.dataset_path(dict(sources[0]))),
                                         config.data.eval_split, config.data.image_size,
                                         config.offset_eval.max_clips)
    scores, _ = lip_expert.offset_evaluation(config, self.context.task, params["expert"],
                                             delays=self.delays, clips=self._clips)
    return scores
