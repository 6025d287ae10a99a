"""What every `swaptalk` command shares: `--help`/`-h` answered with the command's own usage, its
flags and an example (stdout, exit 0; `cli.py` does it for commands on absl's global flags,
`parse_flags` for commands with their own FlagValues), and flag checks that fail as one-line
UserErrors.

Commands (`swaptalk_jax/commands/*.py`) are imported only by `cli.py`; this module is what they
share, so no command imports another.
"""
import sys
from typing import Sequence

from absl import flags

from swaptalk_jax.errors import UserError

HELP_ARGS = ("-h", "--help", "--helpshort", "--helpfull")


def wants_help(argv: Sequence[str]) -> bool:
  return any(a in HELP_ARGS for a in argv[1:])


def help_text(doc: str, example: str, flag_help: str) -> str:
  """A command's help page: its docstring (usage), its flags, an example."""
  parts = [doc.strip(), "", "flags:", flag_help.rstrip() or "  (none)"]
  if example:
    parts += ["", "example:", f"  {example}"]
  return "\n".join(parts)


def print_help(doc: str, example: str, flag_help: str) -> None:
  """Prints the help page on stdout and exits 0."""
  print(help_text(doc, example, flag_help))
  sys.exit(0)


def parse_flags(fv: flags.FlagValues, argv: Sequence[str], doc: str, example: str) -> list[str]:
  """Parses argv[1:] into `fv` (a command's own FlagValues); --help/-h prints the help page.
  Returns the positional arguments; a bad flag is a UserError."""
  if wants_help(argv):
    print_help(doc, example, fv.get_help())
  try:
    return fv(list(argv))[1:]
  except flags.Error as e:
    raise UserError(f"{e} ({argv[0]} --help lists the flags)") from None


def no_positional(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {list(argv[1:])}")


def require(**values) -> None:
  """Raises UserError naming the first required flag (keyword name) that was not given."""
  for name, value in values.items():
    if value is None or value == "":
      raise UserError(f"--{name} is required")
