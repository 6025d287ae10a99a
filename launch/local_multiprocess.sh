#!/usr/bin/env bash
# Runs N copies of a swaptalk command on this machine as one jax.distributed job over loopback
# (CPU collectives over gloo): the multi-host code path without a cluster.
#
#   launch/local_multiprocess.sh NUM_PROCESSES DEVICES_PER_PROCESS -- swaptalk train --config=... --workdir=...
#
# Each process gets DEVICES_PER_PROCESS fake CPU devices. Exits non-zero if any process fails.
set -euo pipefail
if [[ $# -lt 4 || "$3" != "--" ]]; then
  echo "usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS -- COMMAND [ARGS...]" >&2
  exit 2
fi
num=$1; per=$2; shift 3
port=${SWAPTALK_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
logdir=${SWAPTALK_LOGDIR:-$(mktemp -d)}
pids=()
for ((i = 0; i < num; i++)); do
  SWAPTALK_COORDINATOR="127.0.0.1:${port}" SWAPTALK_NUM_PROCESSES="$num" SWAPTALK_PROCESS_ID="$i" \
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=${per}" \
    "$@" >"${logdir}/process_${i}.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "process $i failed; its log: ${logdir}/process_${i}.log" >&2
    tail -n 20 "${logdir}/process_${i}.log" >&2
    status=1
  fi
done
echo "logs: ${logdir}"
exit $status
