#!/usr/bin/env bash
# Train with N processes per node via torchrun (one per GPU; gloo processes on a CPU-only machine).
#   bash tools/dist_train.sh CONFIG N [tools/train.py options...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT.
set -euo pipefail
CONFIG=$1
NPROC=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
