#!/usr/bin/env bash
# Installs everything the tests need and runs them on 8 fake CPU devices:
#  1. the whole suite in .venv (Python 3.11, jax 0.10.x, PyTorch CPU for the parity tests);
#  2. the core, model and data tests again in .venv312 (Python 3.12, current jax 0.12) — what pod
#     users run. Extra arguments go to the first pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=3
tools/setup_env.sh --test
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
PYTHON_VERSION=3.12 tools/setup_env.sh --test
.venv312/bin/python -m pytest -q -p no:cacheprovider tests/test_core_sharding.py \
  tests/test_core_errors.py tests/test_vqgan.py tests/test_records.py tests/test_pipelines.py \
  tests/test_audio.py tests/test_conv_ops.py
