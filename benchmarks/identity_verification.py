"""Held-out verification of a trained identity net (`configs/identity.py` run) next to its own
random init and the raw-pixel cosine, on the same pairs (evaluators/verification.py: balanced
same/different pairs of the eval split's frames, same-identity pairs across clips, threshold
chosen on the train split's pairs; chance 0.5).

  python benchmarks/identity_verification.py --run WORKDIR [--frames_per_clip 16]

The data is the run's own (its stored config.data). Prints one row per embedder: accuracy, AUC,
threshold, and the number of eval pairs.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

import jax  # noqa: E402
import ml_collections  # noqa: E402

from swaptalk_jax.core import checkpoint  # noqa: E402
from swaptalk_jax.evaluators import common as evaluators  # noqa: E402
from swaptalk_jax.trainers.registry import build_trainer  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="a configs/identity.py run directory")
  parser.add_argument("--frames_per_clip", type=int, default=16)
  parser.add_argument("--max_pairs", type=int, default=100_000)
  args = parser.parse_args()
  directory = checkpoint.step_dir(args.run)
  config = ml_collections.ConfigDict(json.loads((directory / "config" / "metadata").read_text()))
  if config.get("stage") != "identity":
    sys.exit(f"{args.run} is a {config.get('stage')!r} run, not configs/identity.py's")
  config.evals = dict(verification=dict(type="verification", frames_per_clip=args.frames_per_clip,
                                        max_pairs=args.max_pairs, seed=0))
  trainer = build_trainer(config, args.run, devices=jax.devices()[:1])
  with trainer.scope():
    state = trainer.restore_or_init()
    trained = evaluators.run_all(trainer.evaluators, trainer.eval_params(state))
    init = evaluators.run_all(trainer.evaluators,
                              trainer.eval_params(trainer.init_fn(jax.random.PRNGKey(config.seed))))
  v = "verification/"
  rows = [(f"trained (step {int(state.step)}, EMA)", trained[f"{v}accuracy"], trained[f"{v}auc"]),
          ("same net, random init", init[f"{v}accuracy"], init[f"{v}auc"]),
          ("raw-pixel cosine", trained[f"{v}pixel_accuracy"], trained[f"{v}pixel_auc"]),
          ("chance", 0.5, 0.5)]
  print(f"held-out verification, {int(trained[v + 'pairs'])} pairs "
        f"({args.frames_per_clip} frames per clip)")
  print(f"{'embedder':32s} {'accuracy':>9s} {'AUC':>7s}")
  for name, accuracy, auc in rows:
    print(f"{name:32s} {accuracy:9.3f} {auc:7.3f}")


if __name__ == "__main__":
  main()
