#!/usr/bin/env bash
# Train on a Slurm cluster, one task per GPU.
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options...]
# GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun flags),
# SIGNAL_LEAD (seconds before the time limit at which Slurm sends SIGUSR1; default 300).
#
# Preemption: on SIGTERM (preemption) or SIGUSR1 (the time limit is near) every task finishes its
# iteration, rank 0 saves a checkpoint, and they exit with status 75. Inside a batch job the
# job is then requeued (scontrol requeue); the requeued job (SLURM_RESTART_COUNT > 0) resumes
# from that checkpoint. Outside one, the script exits 75 and prints the command that continues.
set -uo pipefail
PREEMPTED=75  # PREEMPTED_EXIT in projects/mmcityscapes/engine/hooks/preemption_hook.py
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=${4:-work_dirs/$(basename "${CONFIG%.*}")}
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
RESUME=()
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
  RESUME=(--resume)
fi
srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 --signal=USR1@"${SIGNAL_LEAD:-300}" ${SRUN_ARGS:-} \
    "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${RESUME[@]}" "${@:5}"
status=$?
if [ "$status" -eq "$PREEMPTED" ]; then
  # only a batch job can be requeued; an srun or salloc session is told how to continue
  if [ -n "${SLURM_JOB_ID:-}" ] && scontrol requeue "$SLURM_JOB_ID"; then
    echo "preempted: job $SLURM_JOB_ID requeued; it resumes from the checkpoint in $WORK_DIR" >&2
  else
    echo "preempted: continue with: bash $0 $* --resume" >&2
  fi
fi
exit "$status"
