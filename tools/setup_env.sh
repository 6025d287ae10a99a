#!/usr/bin/env bash
# Creates (or refreshes) a virtualenv with swaptalk_jax and everything it needs, idempotently.
#   tools/setup_env.sh [--test]        -> .venv   (Python 3.11: jax 0.10.x)
#   PYTHON_VERSION=3.12 tools/setup_env.sh --test  -> .venv312 (Python 3.12: current jax 0.12)
# --test adds the reference packages of the test suite (PyTorch CPU on 3.11, librosa, onnxruntime,
# the real media and models the registries ship) and Debian's opencv-doc (a real talking clip).
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0; [[ "${1:-}" == "--test" ]] && want_test=1
version=${PYTHON_VERSION:-3.11}
venv=.venv; [[ "$version" != "3.11" ]] && venv=.venv${version/./}
# (No `pyenv versions | grep -q` under pipefail: grep -q exits at the first match, pyenv may then
# die of SIGPIPE and the whole test fails at random.)
pyenv_match=""
if command -v pyenv >/dev/null 2>&1; then
  pyenv_match=$(pyenv versions --bare | grep "^${version}" | tail -1 || true)
fi
if [[ -n "$pyenv_match" ]]; then
  py=$(PYENV_VERSION=$pyenv_match pyenv which python3)
else
  py=$(command -v "python${version}" || true)
fi
[[ -n "$py" ]] && "$py" -c "import sys" 2>/dev/null \
  || { echo "setup_env: no working Python ${version} (pyenv or python${version})" >&2; exit 1; }

stamp="$venv/.swaptalk-stamp"
want="$(cat requirements.txt requirements-test.txt tools/setup_env.sh | sha1sum | cut -c1-12)-$want_test"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
pip="$venv/bin/python -m pip install -q --disable-pip-version-check"
$pip -r requirements.txt
$pip --no-deps -e .
if [[ $want_test == 1 ]]; then
  $pip -r requirements-test.txt "setuptools<81"
  # Shipped with registry packages, installed without their (heavy or conflicting) dependencies:
  # lpips' v0.1 linear heads, syncnet_python's reference model, insightface's sample photos, the
  # cpbd package (CPBD parity).
  $pip --no-deps lpips==0.1.4 syncnet-python==0.2.3 insightface==2.1 cpbd==1.0.7
  if [[ "$version" == "3.11" ]]; then
    $pip torch==2.13.0 "setuptools<81"          # CPU build (lies on this machine image's disk for Python 3.11)
  else   # libtpu (the `tpu` extra, ~640 MB) for `swaptalk compile` to TPU topologies on this CPU.
    # The extra itself, not jax[tpu]==<the jax just installed>: a jax can reach the registry before
    # its libtpu does (jax 0.12.1 wants libtpu 0.0.53, absent here on 2026-12-07), and then pip
    # picks the newest jax whose libtpu exists instead of failing the whole setup.
    $pip -e ".[tpu]"
  fi
  if [[ ! -f /usr/share/doc/opencv-doc/examples/data/Megamind.avi ]] && command -v apt-get >/dev/null \
      && [[ $(id -u) == 0 ]]; then
    (apt-get update -qq && apt-get install -y -qq opencv-doc >/dev/null) \
      || echo "setup_env: could not install Debian opencv-doc; the Megamind test will be skipped" >&2
  fi
fi
echo "$want" > "$stamp"
echo "setup_env: $venv ready ($("$venv/bin/python" -c 'import jax; print("jax", jax.__version__)'))"
