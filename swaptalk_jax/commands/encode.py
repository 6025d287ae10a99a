"""usage: swaptalk encode --checkpoint=WORKDIR --data=DATASET --out=DIR [--config=...] [--splits=...]

A prepared dataset -> VQ token indices of every frame with a trained VQGAN ("encode once, train
many"): <out>/<split>.array_record + <out>/metadata.json.

The library parts are `data/encode_tokens.py` (encoding) and `data/token_records.py` (the record
layout and its reader); the params come from `core/checkpoint.load_params`.
"""
import os

from absl import app, flags
from ml_collections import config_flags

from swaptalk_jax import cli_support

EXAMPLE = ("swaptalk encode --checkpoint=outputs/vqgan_tiny --data=data/synthetic "
           "--out=data/synthetic_vq")

_CONFIG = config_flags.DEFINE_config_file("config", None, "The VQGAN config the checkpoint was "
                                          "trained with, e.g. configs/vqgan.py:f16 (default: the "
                                          "config stored in the checkpoint).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A training workdir (latest checkpoint), its "
                                  "checkpoints/ folder, or one step folder checkpoints/<step>.")
_STEP = flags.DEFINE_integer("step", None, "The checkpoint step to use (default: the latest).")
_DATA = flags.DEFINE_string("data", None, "Prepared dataset: <data_dir>/<name>[/<version>].")
_OUT = flags.DEFINE_string("out", None, "Output directory for the VQ index records.")
_SPLITS = flags.DEFINE_list("splits", None, "Splits to encode (default: all in the dataset).")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Frames per encoder call.")
_EMA = flags.DEFINE_bool("ema", True, "Use the generator's EMA params (else the raw params).")


def _main(argv):
  from swaptalk_jax.core import checkpoint  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.data import encode_tokens  # pylint: disable=import-outside-toplevel
  cli_support.no_positional(argv)
  cli_support.require(checkpoint=_CHECKPOINT.value, data=_DATA.value, out=_OUT.value)
  dataset_dir = encode_tokens.resolve_dataset_dir(_DATA.value)
  params, step, stored = checkpoint.load_params(_CHECKPOINT.value, "generator", _EMA.value,
                                                _STEP.value)
  config = _CONFIG.value or stored
  info = encode_tokens.encode_dataset(config, params, str(dataset_dir), _OUT.value, _SPLITS.value,
                                      _BATCH.value, checkpoint=f"{_CHECKPOINT.value} (step {step})")
  for split, c in info["splits"].items():
    print(f"{split}: {c['records']} records, {c['frames']} frames -> "
          f"{os.path.join(_OUT.value, split + '.array_record')}")
  print(f"token grid {info['token_grid']} (upper rows {info['upper_rows']}), codebooks of "
        f"{info['num_codes']}; metadata in {os.path.join(_OUT.value, 'metadata.json')}")


def main(argv):
  app.run(_main, argv=argv)
