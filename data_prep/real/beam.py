"""Apache Beam path for clusters: the same per-item staging as `parallel.py`, as a Beam pipeline.

  specs -> Reshuffle -> ParDo(StageItemFn) -> ItemResults as JSON lines in the staging directory
  -> (driver) failures.csv + TFDS build
Beam is imported only when this path runs (it is not a dependency of the rest); the staging
directory must be a shared filesystem every worker can write to (items are written with a rename,
so retried bundles are harmless: an item staged twice is the same file).
"""
import dataclasses
import glob
import json
import os
from typing import Sequence

from data_prep.real import manifest
from data_prep.real.config import PrepConfig
from data_prep.real.spec import ClipSpec


class StageItemFn:
  """The per-element function (a Beam DoFn's body): one spec -> one ItemResult.

  Loads the landmark model once per worker (`setup`), like a DoFn does.
  """

  def __init__(self, config: PrepConfig, staging: str):
    self.config, self.staging, self._predictor = config, staging, None

  def setup(self):
    from swaptalk_jax.face.landmarks import LandmarkPredictor  # pylint: disable=g-import-not-at-top
    self._predictor = LandmarkPredictor()

  def process(self, spec: ClipSpec):
    if self._predictor is None:
      self.setup()
    yield manifest.stage_item(spec, self.config, self.staging, self._predictor)


def run_beam(specs: Sequence[ClipSpec], config: PrepConfig, staging: str,
             pipeline_args: Sequence[str] = ()) -> list[manifest.ItemResult]:
  """Runs the staging as a Beam pipeline (DirectRunner unless `pipeline_args` say otherwise)."""
  try:
    import apache_beam as beam  # pylint: disable=g-import-not-at-top
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("the Beam path needs `pip install apache-beam`; or use --workers N for "
                      "processes on one machine") from e

  fn = StageItemFn(config, staging)

  class _DoFn(beam.DoFn):
    def setup(self):
      fn.setup()

    def process(self, spec):
      yield from fn.process(spec)

  prefix = os.path.join(staging, "beam_results")
  for old in glob.glob(prefix + "*"):
    os.remove(old)
  with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as p:
    _ = (p | "Specs" >> beam.Create(list(specs)) | "Spread" >> beam.Reshuffle()
         | "Stage" >> beam.ParDo(_DoFn())
         | "ToJson" >> beam.Map(lambda r: json.dumps(dataclasses.asdict(r)))
         | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))
  results = []
  for path in sorted(glob.glob(prefix + "*.jsonl")):
    with open(path) as f:
      results += [manifest.ItemResult(**json.loads(line)) for line in f if line.strip()]
  return results
