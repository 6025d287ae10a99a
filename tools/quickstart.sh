#!/usr/bin/env bash
# The main job on the built-in default, on a fresh machine: installs swaptalk_jax into .venv,
# renders the synthetic talking-head set, and trains the stage-0 VQGAN at tiny size on it
# (loss falling in the log, TensorBoard summaries in the workdir). About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_env.sh
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=3
out=${SWAPTALK_OUT:-outputs}
mkdir -p "$out"
# `data` is where the configs look by default (config.data.sources).
.venv/bin/swaptalk prepare synthetic --out data --identities 10 --clips_per_identity 2 \
  --seconds 4 --resolution 64 --test_identities 2 --seed 0
.venv/bin/swaptalk train --config=configs/vqgan.py:tiny --workdir="$out/vqgan_tiny" \
  2>&1 | tee "$out/vqgan_tiny.log"
echo
echo "quickstart: done."
echo "  synthetic dataset:   data/synthetic"
echo "  VQGAN checkpoints:   $out/vqgan_tiny/checkpoints"
echo "  TensorBoard logs:    $out/vqgan_tiny   (tensorboard --logdir $out/vqgan_tiny)"
echo "  training log:        $out/vqgan_tiny.log"
