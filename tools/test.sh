#!/usr/bin/env bash
# Installs everything the tests need and runs them on 8 fake CPU devices:
#  1. the whole suite in .venv (Python 3.11, jax 0.10.x, PyTorch CPU for the parity tests), in two
#     pytest-xdist workers: much of the suite is single-threaded (compilation, subprocess start-up,
#     dlib, I/O) and leaves a core idle; tests/conftest.py groups the tests so that each shared
#     trained fixture is made once (the stage-fixture modules run together, first);
#  2. the core, model and data tests again in .venv312 (Python 3.12, current jax 0.12) — what pod
#     users run. Extra arguments go to the first pytest run.
# Run 2 (its venv setup included) goes in the background, alongside run 1, at a lower priority
# (nice 5): run 1 is the longer, so it keeps most of the CPU it wants and run 2 takes what it
# leaves (much of the suite is single-threaded compilation, subprocess start-up and I/O), on a
# 2-core machine, instead of adding its minutes after run 1's.
# Run 2's output goes to a log printed after run 1; the script fails if either run failed.
# The 3.11 setup finishes before run 2's setup starts (they share the checkout's egg-info, pip's
# cache and the apt-get of opencv-doc).
set -euo pipefail
cd "$(dirname "$0")/.."
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=3
tools/setup_env.sh --test

log312=$(mktemp "${TMPDIR:-/tmp}/swaptalk_test312.XXXXXX.log")
# Its own process group (job control on while it starts), so an early exit of this script stops
# the whole run 2 as well; stdin from /dev/null, as a background job must not read the terminal.
set -m
nice -n 5 bash -c 'set -euo pipefail
  PYTHON_VERSION=3.12 tools/setup_env.sh --test
  exec .venv312/bin/python -m pytest -q -p no:cacheprovider tests/test_core_sharding.py \
    tests/test_core_errors.py tests/test_vqgan.py tests/test_records.py tests/test_pipelines.py \
    tests/test_audio.py tests/test_conv_ops.py tests/test_remat.py' </dev/null >"$log312" 2>&1 &
pid312=$!
set +m
trap 'kill -- -"$pid312" 2>/dev/null || true' EXIT

status311=0
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 -n 2 --dist loadgroup "$@" \
  || status311=$?
status312=0
wait "$pid312" || status312=$?
echo
echo "=== Python 3.12 run (.venv312: setup and tests; ran alongside the 3.11 suite) ==="
cat "$log312"
rm -f "$log312"
echo "tools/test.sh: Python 3.11 suite exit ${status311}, Python 3.12 run exit ${status312}"
(( status311 == 0 && status312 == 0 ))
