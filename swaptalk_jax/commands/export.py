"""usage: swaptalk export --run=DIR [--stages=vqgan,swap,lipsync] --out=BUNDLE
                       [--dtype=bfloat16] [--noema] [--vqgan=DIR --swap=DIR --lipsync=DIR]

Writes a standalone inference bundle: each stage's inference params (EMA by default) as safetensors
with a JSON manifest, and each stage function (encode, decode, swap, lipsync) serialised with
`jax.export` (StableHLO, symbolic batch, lowered for cpu, cuda and tpu).
`swaptalk_jax/inference/bundle.py` loads and runs it with jax alone (no flax, orbax or training
code). Stage run directories are `<run>/<stage>` (as for `swaptalk generate --run`) or given one by
one (--vqgan, --swap, --lipsync).
"""
from absl import flags

from swaptalk_jax import cli_support

EXAMPLE = "swaptalk export --run=outputs/tiny --stages=vqgan,swap --out=bundles/tiny"


def _flags() -> flags.FlagValues:
  """The command's own flags (its own FlagValues: no clash with other commands' --out, --ema)."""
  fv = flags.FlagValues()
  flags.DEFINE_string("run", None, "A directory holding one `swaptalk train` run per stage: "
                      "<run>/vqgan, <run>/swap, <run>/lipsync.", flag_values=fv)
  flags.DEFINE_string("vqgan", None, "The vqgan run directory (default: <run>/vqgan).",
                      flag_values=fv)
  flags.DEFINE_string("swap", None, "The swap run directory (default: <run>/swap).", flag_values=fv)
  flags.DEFINE_string("lipsync", None, "The lipsync run directory (default: <run>/lipsync).",
                      flag_values=fv)
  flags.DEFINE_list("stages", ["vqgan"], "Stages to export (vqgan is always needed).",
                    flag_values=fv)
  flags.DEFINE_string("out", None, "The bundle directory to write.", flag_values=fv)
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Params stored and computed in "
                    "this dtype (inputs stay float32).", flag_values=fv)
  flags.DEFINE_bool("ema", True, "Export the EMA params where the run kept them (else raw).",
                    flag_values=fv)
  flags.DEFINE_list("platforms", ["cpu", "cuda", "tpu"], "Platforms to lower for.", flag_values=fv)
  flags.DEFINE_bool("overwrite", False, "Replace an existing --out.", flag_values=fv)
  flags.DEFINE_string("savedmodel", None, "Also write the bundle as a TensorFlow SavedModel here "
                      "(jax2tf native serialisation of the same StableHLO; needs tensorflow).",
                      flag_values=fv)
  return fv


def main(argv) -> None:
  fv = _flags()
  cli_support.no_positional(cli_support.parse_flags(fv, argv, __doc__, EXAMPLE))
  cli_support.require(out=fv.out)
  from swaptalk_jax.export import writer  # pylint: disable=import-outside-toplevel
  dirs = writer.stage_dirs(fv.run, fv.stages, vqgan=fv.vqgan, swap=fv.swap,
                            lipsync=fv.lipsync)
  info = writer.export_bundle(fv.out, dirs, ema=fv.ema, dtype=fv.dtype, platforms=fv.platforms,
                              overwrite=fv.overwrite)
  for stage, seconds in info["export_seconds"].items():
    print(f"{stage}: " + ", ".join(f"{fn} ({s:.1f} s)" for fn, s in seconds.items()))
  if fv.savedmodel:
    from swaptalk_jax.export import savedmodel  # pylint: disable=import-outside-toplevel
    names = savedmodel.write_savedmodel(fv.out, fv.savedmodel)
    print(f"SavedModel {fv.savedmodel}: signatures {names}")
  print(f"bundle {fv.out}: stages {info['stages']}, {info['dtype']}, platforms "
        f"{info['platforms']}; load it with swaptalk_jax.inference.bundle.load_bundle")
