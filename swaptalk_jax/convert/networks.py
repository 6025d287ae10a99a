"""The networks `swaptalk convert` knows: name -> its converter (imported only when chosen) and the
options it takes; `convert_file` runs one and returns the written file's header."""
import importlib
import os

from swaptalk_jax import params_file
from swaptalk_jax.errors import MissingFileError, UserError

CONVERTERS = {
    "arcface": "swaptalk_jax.convert.arcface:convert",
    "lpips": "swaptalk_jax.convert.lpips:convert",
    "inception": "swaptalk_jax.convert.inception:convert",
    "syncnet": "swaptalk_jax.convert.syncnet:convert",
}

# The options each network's converter takes (others are an error, not silently ignored).
OPTIONS = {"arcface": ("variant",), "lpips": ("heads",), "inception": (), "syncnet": ()}


def converter(network: str):
  """The convert function registered for `network`: function(SRC, DST, **options)."""
  if network not in CONVERTERS:
    raise UserError(f"unknown network {network!r}; choose from {', '.join(CONVERTERS)}")
  module_name, function = CONVERTERS[network].split(":")
  return getattr(importlib.import_module(module_name), function)


def convert_file(network: str, source: str, destination: str, overwrite: bool = False,
                 **options) -> dict[str, str]:
  """Converts `source` to the params file `destination`; returns its header. Options that are None
  count as not given."""
  if not os.path.isfile(source):
    raise MissingFileError(f"{source!r} does not exist; expected "
                           f"{params_file.SOURCES.get(network, 'the original checkpoint')}")
  if os.path.exists(destination) and not overwrite:
    raise UserError(f"{destination!r} exists; pass --overwrite to replace it")
  options = {k: v for k, v in options.items() if v is not None}
  wrong = sorted(set(options) - set(OPTIONS.get(network, ())))
  if wrong:
    raise UserError(f"--{', --'.join(wrong)} does not apply to {network}")
  converter(network)(source, destination, **options)
  return params_file.read_metadata(destination)
