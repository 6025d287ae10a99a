"""The training loop every stage runs: restore or init, step, log, evaluate, checkpoint, and stop
cleanly on SIGTERM (a final checkpoint, then exit) so a preempted run resumes where it was."""
import logging
import signal
import time
from typing import Optional

import jax
import numpy as np
from clu import periodic_actions

from swaptalk_jax.core import checkpoint, reporting
from swaptalk_jax.core.trainer import Trainer, global_batch
from swaptalk_jax.evaluators import common as evaluators


class _Preemption:
  """Turns SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    logging.warning("SIGTERM received: checkpointing and exiting after this step")
    self.requested = True

  def __exit__(self, *exc):
    signal.signal(signal.SIGTERM, self._previous)


def _agreed(flag: bool) -> bool:
  """True on every process if any process saw the flag (saves are collective)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def evaluate(trainer: Trainer, state, writer, step: int) -> dict:
  """Runs every evaluator of config.evals (default: the batch mean of Task.eval_metrics over
  config.train.eval_batches) on the eval params and writes 'eval/<prefix><metric>', then the
  Task's image summaries of the first eval batch. Returns the scores."""
  params = trainer.eval_params(state)
  scores = evaluators.run_all(trainer.evaluators, params)
  writer.write_scalars(step, {f"eval/{k}": v for k, v in scores.items()})
  write_summaries(trainer, state, writer, step)
  return scores


def write_summaries(trainer: Trainer, state, writer, step: int) -> None:
  """The Task's TensorBoard images (`Task.summaries`) of the first eval batch, as 'eval/*'."""
  batch = next(trainer.eval_context.batches(1), None)
  if batch is not None:
    images = trainer.summary_fn(trainer.eval_params(state), batch)
    writer.write_images(step, {f"eval/{k}": reporting.to_image_grid(v) for k, v in images.items()})


def run(trainer: Trainer, stop_after: Optional[int] = None):
  """Trains to config.train.num_steps (or `stop_after` more steps); returns the final state."""
  config = trainer.config
  tc = config.train
  writer = reporting.make_writer(trainer.workdir)
  with trainer.scope(), _Preemption() as preemption:
    state = trainer.restore_or_init()
    step = int(state.step)
    if step == 0:
      writer.write_hparams({k: v for k, v in config.train.items()})
    end = tc.num_steps if stop_after is None else min(tc.num_steps, step + stop_after)
    report = periodic_actions.ReportProgress(num_train_steps=tc.num_steps, writer=writer,
                                             every_steps=tc.log_every)
    averager = reporting.Averager()
    global_batch_size = trainer.batch_spec[next(iter(trainer.batch_spec))].shape[0]
    last_log = (time.perf_counter(), step)
    logging.info("training %s from step %d to %d in %s", config.stage, step, end, trainer.workdir)
    while step < end:
      local = next(trainer.train_iter)
      state, step_metrics = trainer.train_step(state, global_batch(local, trainer.batch_sharding))
      step += 1
      averager.update(step_metrics)
      report(step)
      if step % tc.log_every == 0 or step == end:
        scalars = averager.compute_and_reset()
        now = time.perf_counter()
        scalars["examples_per_sec"] = global_batch_size * (step - last_log[1]) / (now - last_log[0])
        scalars["nonfinite_steps_total"] = int(state.nonfinite_steps)
        last_log = (now, step)
        writer.write_scalars(step, scalars)
      if tc.eval_every and (step % tc.eval_every == 0 or step == tc.num_steps):
        evaluate(trainer, state, writer, step)
      elif tc.get("summary_every", 0) and step % tc.summary_every == 0:
        write_summaries(trainer, state, writer, step)
      preempted = _agreed(preemption.requested)
      stop = preempted or step == end
      if step % tc.checkpoint_every == 0 or stop:
        checkpoint.save(trainer.manager, step, state, trainer.train_iter, config, force=stop)
      if preempted:
        logging.warning("stopping at step %d after SIGTERM", step)
        break
    trainer.manager.wait_until_finished()
    writer.flush()
  return state
