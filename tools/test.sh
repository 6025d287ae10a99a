#!/usr/bin/env bash
# Installs everything the tests need (.venv, Python 3.11 + PyTorch CPU for parity tests) and runs
# the whole suite on 8 fake CPU devices. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_env.sh --test
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=3
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
