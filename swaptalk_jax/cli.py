"""The `swaptalk` console script: `swaptalk <command> [flags]`.

Each command lives in `swaptalk_jax/commands/<name>.py` with a `main(argv)`; only the chosen
command's module is imported (each keeps its own absl flags), and nothing else imports them. A
`UserError` (a config, data or command-line mistake) is printed as one line and exits 1; any other
exception is a bug and keeps its traceback.
"""
import importlib
import importlib.util
import sys

from swaptalk_jax import cli_support
from swaptalk_jax.errors import UserError

COMMANDS = {
    "prepare": "Prepare a dataset (synthetic, hdtf, voxceleb2, folder) into TFDS ArrayRecord shards.",
    "train": "Train a stage: --config=configs/<stage>.py:<variant> --workdir=DIR.",
    "encode": "Encode a prepared dataset into VQ token records with a trained VQGAN.",
    "convert": "Convert a user-supplied pretrained checkpoint (arcface, lpips, inception, syncnet) to Flax.",
    "compile": "Compile a stage's train step ahead of time for a device topology; report its memory.",
    "eval": "The paper's Table 1 (self- or cross-driven) of a trained chain on the synthetic test split.",
    "generate": "Source photo + target video + driving audio -> talking-face mp4.",
    "export": "Export a checkpoint to a standalone inference bundle.",
}


def available(name: str) -> bool:
  """Whether the command's module exists in this installation (others are still to come)."""
  return importlib.util.find_spec(f"swaptalk_jax.commands.{name}") is not None


def _usage() -> str:
  ready = [n for n in COMMANDS if available(n)]
  coming = [n for n in COMMANDS if n not in ready]
  lines = ["usage: swaptalk <command> [flags]    (swaptalk <command> --help: its flags and an example)",
           "", "commands:"]
  lines += [f"  {name:<10}{COMMANDS[name]}" for name in ready]
  if coming:
    lines += ["", f"coming (not in this version yet): {', '.join(coming)}"]
  return "\n".join(lines)


def global_flags_help(module) -> str | None:
  """The help page of a command whose flags are absl's global flags (defined at module level):
  its docstring, its flags and its EXAMPLE. None for commands that parse their own flags (they
  answer --help themselves)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  if not flags.FLAGS.flags_by_module_dict().get(module.__name__):
    return None
  return cli_support.help_text(module.__doc__ or "", getattr(module, "EXAMPLE", ""),
                               flags.FLAGS.module_help(module.__name__))


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  name = argv[1]
  if name not in COMMANDS:
    print(f"swaptalk: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
    sys.exit(2)
  if not available(name):
    print(f"swaptalk: command {name!r} is not in this version yet\n\n{_usage()}", file=sys.stderr)
    sys.exit(2)
  module = importlib.import_module(f"swaptalk_jax.commands.{name}")
  if cli_support.wants_help(argv[1:]):
    page = global_flags_help(module)
    if page is not None:
      print(page)
      sys.exit(0)
  try:
    module.main([f"swaptalk {name}"] + argv[2:])
  except UserError as e:
    print(f"swaptalk {name}: error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  main()
