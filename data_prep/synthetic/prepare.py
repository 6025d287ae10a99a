"""The synthetic set as a prepared dataset (what `swaptalk prepare synthetic` writes): identities
[0, N - M) train, [N - M, N) test, rendered clip by clip (optionally in worker processes) through
the same TFDS record builder as real footage."""
import multiprocessing
import pathlib

from swaptalk_jax.errors import UserError


def _render_clip(args: tuple):
  """make_clip(identity, clip_index, seed, seconds, resolution, partners) in a worker process."""
  from data_prep.synthetic.clips import make_clip  # pylint: disable=import-outside-toplevel
  identity, index, seed, seconds, resolution, partners = args
  return make_clip(identity, index, seed, seconds, resolution, partners=partners)


def synthetic_source(identities: int, clips_per_identity: int, seconds: float, resolution: int,
                     seed: int, test_identities: int, workers: int = 0):
  """The built-in synthetic talking heads: identities [0, N - M) train, [N - M, N) test. Swap and
  re-sync ground-truth partners are drawn within a clip's own split, so no test face leaks.
  workers > 0 renders clips in that many processes (same clips, same order). Returns a
  `tfds_builder.ClipSource`."""
  from data_prep.synthetic.clips import make_clip  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.data import records, tfds_builder  # pylint: disable=import-outside-toplevel
  if not 2 <= test_identities <= identities - 2:
    raise UserError(f"--test_identities must be in [2, identities - 2] (each split needs two "
                    f"identities for swap partners), got {test_identities} of {identities}")
  split_ids = dict(train=list(range(identities - test_identities)),
                   test=list(range(identities - test_identities, identities)))

  def clips(split, manual_dir):
    del manual_dir
    ids = split_ids[split]
    jobs = [(i, c, seed, seconds, resolution, ids) for i in ids for c in range(clips_per_identity)]
    if workers <= 0:
      yield from map(_render_clip, jobs)
      return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      yield from pool.imap(_render_clip, jobs)

  probe = make_clip(0, 0, seed, min(seconds, 0.2), resolution, partners=[0, 1])
  return tfds_builder.ClipSource(
      name="synthetic", clips=clips, extras=records.infer_extras_spec(probe),
      params=dict(identities=identities, clips_per_identity=clips_per_identity, seconds=seconds,
                  resolution=resolution, seed=seed, test_identities=test_identities),
      description=f"swaptalk synthetic talking heads: {identities} identities x "
                  f"{clips_per_identity} clips x {seconds} s at {resolution}px, seed {seed}, "
                  f"last {test_identities} identities = test")


def prepare_synthetic(out: str | pathlib.Path, identities: int = 8, clips_per_identity: int = 2,
                      seconds: float = 4.0, resolution: int = 256, seed: int = 0,
                      test_identities: int = 2, jpeg_quality: int = 95,
                      workers: int = 0) -> pathlib.Path:
  """Writes the synthetic set under `out` and returns the dataset directory."""
  from swaptalk_jax.data import tfds_builder  # pylint: disable=import-outside-toplevel
  source = synthetic_source(identities, clips_per_identity, seconds, resolution, seed,
                            test_identities, workers)
  return tfds_builder.prepare(source, out, tfds_builder.RecordOptions(jpeg_quality=jpeg_quality))
