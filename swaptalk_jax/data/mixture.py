"""A dataset mixture written as one flag-friendly string, so the command line can change it:

  --config.data.mixture="synthetic:data:1.0,hdtf:/datasets:0.5,my_clips:/mnt/prepared"

Comma-separated `name:data_dir[:weight]` (weight 1.0 when left out): `name` is the prepared
dataset's folder under `data_dir` (the `--out` of `swaptalk prepare`), the weight its relative
sampling rate. When set, it replaces `config.data.sources` (pipelines.resolve_config).
"""
import math

from swaptalk_jax.errors import UserError


def parse_mixture(text: str) -> list[dict]:
  """'name:data_dir[:weight],...' -> config.data.sources entries; bad input is one clear line."""
  sources = []
  for part in (p.strip() for p in text.split(",")):
    if not part:
      raise UserError(f"data.mixture={text!r}: empty entry; write name:data_dir[:weight],...")
    fields = part.split(":")
    if len(fields) < 2 or not fields[0] or not fields[1]:
      raise UserError(f"data.mixture entry {part!r}: write name:data_dir[:weight]")
    weight = 1.0
    if len(fields) > 2:
      try:
        weight = float(fields[-1])
        fields = fields[:-1]
      except ValueError:   # a ':' inside data_dir, no weight given
        pass
    if not (math.isfinite(weight) and weight > 0):
      raise UserError(f"data.mixture entry {part!r}: weight must be > 0, got {weight:g}")
    sources.append(dict(name=fields[0], data_dir=":".join(fields[1:]), weight=weight))
  names = [(s["name"], s["data_dir"]) for s in sources]
  if len(set(names)) != len(names):
    raise UserError(f"data.mixture={text!r} names a dataset twice")
  return sources
