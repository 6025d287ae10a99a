"""`swaptalk convert <network> SRC DST [flags]`: a user-supplied pretrained checkpoint -> our params file.

  swaptalk convert arcface backbone.pth|model.onnx arcface_r50.safetensors [--variant r50]
  swaptalk convert lpips vgg16-397923af.pth lpips_vgg16.safetensors --heads .../lpips/weights/v0.1/vgg.pth
  swaptalk convert inception pt_inception-2015-12-05-6726825d.pth inception_fid.safetensors
  swaptalk convert syncnet syncnet_v2.model syncnet_v2.safetensors

Each network's converter is `module:function` in CONVERTERS, imported only when chosen; it is called
as function(SRC, DST, **options) with the options below (None when not given). Configs point at DST.
"""
import importlib
import os
import sys

from absl import flags

from swaptalk_jax.convert import params_io

CONVERTERS = {
    "arcface": "swaptalk_jax.convert.arcface:convert",
    "lpips": "swaptalk_jax.convert.lpips:convert",
    "inception": "swaptalk_jax.convert.inception:convert",
    "syncnet": "swaptalk_jax.convert.syncnet:convert",
}

# The flags each network's converter takes (others are an error, not silently ignored).
OPTIONS = {"arcface": ("variant",), "lpips": ("heads",), "inception": (), "syncnet": ()}


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


def converter(network: str):
  """The convert function registered for `network`."""
  if network not in CONVERTERS:
    raise KeyError(f"unknown network {network!r}; choose from {', '.join(CONVERTERS)}")
  module_name, function = CONVERTERS[network].split(":")
  return getattr(importlib.import_module(module_name), function)


def run(network: str, source: str, destination: str, overwrite: bool = False,
        **options) -> dict[str, str]:
  """Converts and returns the written file's header."""
  if not os.path.isfile(source):
    raise FileNotFoundError(f"{source!r} does not exist; expected "
                            f"{params_io.SOURCES.get(network, 'the original checkpoint')}")
  if os.path.exists(destination) and not overwrite:
    raise FileExistsError(f"{destination!r} exists; pass --overwrite to replace it")
  options = {k: v for k, v in options.items() if v is not None}
  wrong = sorted(set(options) - set(OPTIONS.get(network, ())))
  if wrong:
    raise ValueError(f"--{', --'.join(wrong)} does not apply to {network}")
  converter(network)(source, destination, **options)
  return params_io.read_metadata(destination)


def _usage(program: str) -> str:
  return (f"usage: {program} <network> SRC DST [--variant V] [--heads PATH] [--overwrite]\n"
          f"  networks: {', '.join(CONVERTERS)}\n\n"
          + "\n".join(f"  {name}: {text}" for name, text in params_io.SOURCES.items()))


def main(argv) -> None:
  program = argv[0] if argv else "swaptalk convert"
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage(program))
    sys.exit(0 if len(argv) >= 2 else 2)
  fv = _flags()
  try:
    positional = fv([program] + list(argv[1:]))[1:]
  except flags.Error as e:
    print(f"{program}: {e}\n{_usage(program)}", file=sys.stderr)
    sys.exit(2)
  if len(positional) != 3 or positional[0] not in CONVERTERS:
    print(f"{program}: expected <network> SRC DST, got {positional}\n{_usage(program)}",
          file=sys.stderr)
    sys.exit(2)
  network, source, destination = positional
  try:
    header = run(network, source, destination, overwrite=fv.overwrite, variant=fv.variant,
                 heads=fv.heads)
  except (OSError, ValueError, KeyError) as e:
    print(f"{program} {network}: {e}", file=sys.stderr)
    sys.exit(1)
  size_mb = os.path.getsize(destination) / 2 ** 20
  print(f"wrote {destination} ({size_mb:.1f} MiB): "
        + ", ".join(f"{k}={v}" for k, v in sorted(header.items())))
