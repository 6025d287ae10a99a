"""usage: swaptalk convert <network> SRC DST [--variant V] [--heads PATH] [--overwrite]

A user-supplied pretrained checkpoint -> our params file (configs point at DST):
  swaptalk convert arcface backbone.pth|model.onnx arcface_r50.safetensors [--variant r50]
  swaptalk convert lpips vgg16-397923af.pth lpips_vgg16.safetensors --heads .../lpips/weights/v0.1/vgg.pth
  swaptalk convert inception pt_inception-2015-12-05-6726825d.pth inception_fid.safetensors
  swaptalk convert syncnet syncnet_v2.model syncnet_v2.safetensors
The converters are `swaptalk_jax/convert/` (`networks.py` lists them).
"""
import os
import sys

from absl import flags

from swaptalk_jax import cli_support, params_file
from swaptalk_jax.convert import networks

EXAMPLE = "swaptalk convert arcface backbone.pth weights/arcface_r50.safetensors --variant r50"


def _flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string("variant", None, "arcface: expected IResNet variant (r18, r34, r50, r100, "
                      "r200); checked against the checkpoint (found from it when not given).",
                      flag_values=fv)
  flags.DEFINE_string("heads", None, "lpips: the LPIPS v0.1 linear heads file (the lpips "
                      "package's weights/v0.1/vgg.pth); not needed for a full LPIPS state dict.",
                      flag_values=fv)
  flags.DEFINE_bool("overwrite", False, "Replace DST if it exists.", flag_values=fv)
  return fv


def _doc() -> str:
  sources = "\n".join(f"  {name}: {text}" for name, text in params_file.SOURCES.items())
  return f"{__doc__.strip()}\n\nwhere users get each original checkpoint:\n{sources}"


def main(argv) -> None:
  program = argv[0] if argv else "swaptalk convert"
  if len(argv) < 2:
    print(_doc(), file=sys.stderr)
    sys.exit(2)
  positional = cli_support.parse_flags(fv := _flags(), [program] + list(argv[1:]), _doc(), EXAMPLE)
  if len(positional) != 3 or positional[0] not in networks.CONVERTERS:
    print(f"{program}: expected <network> SRC DST with networks: "
          f"{', '.join(networks.CONVERTERS)}; got {positional}", file=sys.stderr)
    sys.exit(2)
  network, source, destination = positional
  header = networks.convert_file(network, source, destination, overwrite=fv.overwrite,
                                 variant=fv.variant, heads=fv.heads)
  size_mb = os.path.getsize(destination) / 2 ** 20
  print(f"wrote {destination} ({size_mb:.1f} MiB): "
        + ", ".join(f"{k}={v}" for k, v in sorted(header.items())))
