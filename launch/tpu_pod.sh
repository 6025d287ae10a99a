#!/usr/bin/env bash
# Runs the same `swaptalk train` on every worker of a Cloud TPU VM slice (v4, v5e, v5p, v6e, any
# size), from your workstation. jax.distributed detects the slice on each worker (coordinator,
# process count and id from the TPU metadata), so every worker runs the identical command.
#
#   launch/tpu_pod.sh TPU_NAME ZONE [--project=P] -- --config=configs/vqgan.py:f16 \
#       --workdir=gs://bucket/runs/vqgan_f16 [--config.key=value ...]
#
# Set once: the repository is checked out at $SWAPTALK_REMOTE_DIR (default ~/swaptalk_jax) on every
# worker with `pip install -e '.[tpu]'` done (docs/launch_tpu_pod.md shows the setup command), and
# the data and workdir are on storage all workers read (GCS, Filestore). Knobs: SWAPTALK_REMOTE_DIR,
# SWAPTALK_REMOTE_PYTHON (default python3), SWAPTALK_DRY_RUN=1 (print what runs, run nothing).
set -euo pipefail
usage="usage: $0 TPU_NAME ZONE [--project=PROJECT] -- SWAPTALK_TRAIN_FLAGS..."
[[ $# -ge 4 ]] || { echo "$usage" >&2; exit 2; }
name=$1; zone=$2; shift 2
gcloud_extra=()
while [[ $# -gt 0 && "$1" != "--" ]]; do gcloud_extra+=("$1"); shift; done
[[ "${1:-}" == "--" ]] || { echo "$usage" >&2; exit 2; }
shift
[[ $# -ge 1 ]] || { echo "$usage" >&2; exit 2; }
remote_dir=${SWAPTALK_REMOTE_DIR:-'~/swaptalk_jax'}
python=${SWAPTALK_REMOTE_PYTHON:-python3}
train_args=$(printf '%q ' "$@")
# What every worker runs (the same line on all of them).
worker_cmd="cd ${remote_dir} && SWAPTALK_AUTO_DISTRIBUTED=1 ${python} -m swaptalk_jax.cli train ${train_args% }"
line=(gcloud compute tpus tpu-vm ssh "$name" "--zone=$zone" "${gcloud_extra[@]}" --worker=all
      "--command=$worker_cmd")
if [[ "${SWAPTALK_DRY_RUN:-0}" == 1 ]]; then
  echo "every worker of ${name} runs: ${worker_cmd}"
  printf '%q ' "${line[@]}"; echo
  exit 0
fi
exec "${line[@]}"
