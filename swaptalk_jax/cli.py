"""The `swaptalk` console script: `swaptalk <command> [flags]`.

Each command lives in `swaptalk_jax/commands/<name>.py` with a `main(argv)` run under absl; only the
chosen command's module is imported, so each keeps its own absl flags.
"""
import importlib
import sys

COMMANDS = {
    "prepare": "Prepare a dataset (synthetic, hdtf, voxceleb2, folder) into TFDS ArrayRecord shards.",
    "train": "Train a stage: --config=configs/<stage>.py:<variant> --workdir=DIR.",
    "encode": "Encode a prepared dataset into VQ index records with a trained VQGAN.",
    "convert": "Convert a user-supplied pretrained checkpoint (arcface, lpips, inception, syncnet) to Flax.",
    "eval": "Evaluate a trained stage with the paper's metrics.",
    "generate": "Source photo + target video + driving audio -> talking-face mp4.",
    "export": "Export a checkpoint to a standalone inference bundle.",
}


def _usage() -> str:
  lines = ["usage: swaptalk <command> [flags]", "", "commands:"]
  lines += [f"  {name:<10}{text}" for name, text in COMMANDS.items()]
  return "\n".join(lines)


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  name = argv[1]
  if name not in COMMANDS:
    print(f"swaptalk: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
    sys.exit(2)
  try:
    module = importlib.import_module(f"swaptalk_jax.commands.{name}")
  except ModuleNotFoundError as e:
    if e.name == f"swaptalk_jax.commands.{name}":
      print(f"swaptalk: command {name!r} is not implemented yet", file=sys.stderr)
      sys.exit(2)
    raise
  module.main([f"swaptalk {name}"] + argv[2:])


if __name__ == "__main__":
  main()
