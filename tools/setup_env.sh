#!/usr/bin/env bash
# Create .venv with the pinned OpenMMLab stack. Idempotent: a second run with unchanged
# requirements is a no-op. mmcv 2.1.0 is compiled from its sdist once and the wheel is cached
# outside the repo (CPU ops here; CUDA ops where nvcc and a GPU are present).
#
#   bash tools/setup_env.sh             # or: make setup
# Environment overrides:
#   PYTHON=python3.11                    interpreter used to create the venv
#   VENV=/path/to/venv                   default: <repo>/.venv
#   MMCITYSCAPES_CACHE=~/.cache/mmcityscapes   where the built mmcv wheel is kept
#   MMCV_WITH_CUDA=0|1                   force CPU-only or CUDA ops (default: CUDA iff nvcc and a GPU)
#   TORCH_CUDA_ARCH_LIST="8.0;9.0"       CUDA architectures to compile (default: the visible GPUs')
#   MAX_JOBS=N                           parallel compile jobs (default: number of cores)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
CACHE=${MMCITYSCAPES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmcityscapes}
MMCV_VERSION=2.1.0
REQ=$ROOT/requirements

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "interpreter '$PYTHON' not found (set PYTHON=...)"
stamp=$(cat "$REQ"/*.txt "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)-$("$PYTHON" -c 'import sys; print("py%d%d" % sys.version_info[:2])')
if [ -f "$VENV/.mmcityscapes-ready" ] && [ "$(cat "$VENV/.mmcityscapes-ready")" = "$stamp" ]; then
  log "environment $VENV is up to date ($stamp)"
  exit 0
fi

# Any failure from here on removes the venv, so a half-installed one is never mistaken for ready.
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "FAILED (exit $rc); removing the incomplete $VENV" >&2
    rm -rf "$VENV"
  fi
  [ -n "${BUILD_DIR:-}" ] && rm -rf "$BUILD_DIR"
  return $rc
}
trap cleanup EXIT

rm -rf "$VENV"
log "creating $VENV with $("$PYTHON" --version)"
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --quiet --progress-bar off)
"${PIP[@]}" --upgrade pip
log "installing torch/torchvision (first run downloads several GB of CUDA libraries)"
# One resolve for both files: torch must not pull a setuptools that lacks pkg_resources.
"${PIP[@]}" -r "$REQ/torch.txt" -r "$REQ/build.txt"

# ---- mmcv: CPU or CUDA ops, cached per (python, torch, device, arch list) ----
if [ -z "${MMCV_WITH_CUDA:-}" ]; then
  MMCV_WITH_CUDA=0
  if command -v nvcc >/dev/null && "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    MMCV_WITH_CUDA=1
  fi
fi
torch_tag=$("$PY" -c 'import torch, sys; print("py%d%d-torch%s" % (*sys.version_info[:2], torch.__version__.replace("+", "_")))')
if [ "$MMCV_WITH_CUDA" = 1 ]; then
  export FORCE_CUDA=1
  : "${TORCH_CUDA_ARCH_LIST:=$("$PY" -c 'import torch; print(";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})))')}"
  export TORCH_CUDA_ARCH_LIST
  device_tag="cuda$("$PY" -c 'import torch; print(torch.version.cuda)')-sm${TORCH_CUDA_ARCH_LIST//[;. ]/_}"
else
  export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=""  # keep torch.cuda.is_available() False in mmcv's setup.py
  device_tag=cpu
fi
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$torch_tag-$device_tag"

if ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  log "reusing cached mmcv wheel from $WHEEL_DIR"
else
  BUILD_DIR=$(mktemp -d)
  mkdir -p "$CACHE/logs"
  build_log="$CACHE/logs/mmcv-$MMCV_VERSION-$torch_tag-$device_tag.log"
  log "downloading the mmcv $MMCV_VERSION sdist"
  "$PY" -m pip download --quiet --no-deps --no-binary mmcv --no-build-isolation -d "$BUILD_DIR" "mmcv==$MMCV_VERSION"
  tar -xzf "$BUILD_DIR"/mmcv-*.tar.gz -C "$BUILD_DIR"
  src=$(echo "$BUILD_DIR"/mmcv-"$MMCV_VERSION")
  # torch >= 2.13 headers need C++20; mmcv 2.1.0 hard-codes C++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q 'std=c++20' "$src/setup.py" || die "could not patch the C++ standard in mmcv's setup.py"
  export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
  csrc="$src/mmcv/ops/csrc/pytorch"  # the sources mmcv's setup.py compiles for this device
  n_sources=$(ls "$csrc"/*.cpp "$csrc"/cpu/*.cpp $([ "$MMCV_WITH_CUDA" = 1 ] && echo "$csrc"/cuda/*.cu "$csrc"/cuda/*.cpp) 2>/dev/null | wc -l)
  log "compiling mmcv $MMCV_VERSION ops ($device_tag, ~$n_sources sources, $MAX_JOBS jobs; CPU build ~15 min on 2 cores)"
  log "full compiler output: $build_log"
  ( cd "$src" && "$PY" -m pip wheel --no-deps --no-build-isolation -w "$BUILD_DIR/dist" . ) >"$build_log" 2>&1 &
  build_pid=$!
  start=$SECONDS
  while kill -0 $build_pid 2>/dev/null; do
    sleep 30
    done_objs=$(find "$src/build" -name '*.o' 2>/dev/null | wc -l)
    log "  ... mmcv build running $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s, $done_objs/$n_sources objects compiled"
  done
  if ! wait $build_pid; then
    tail -n 30 "$build_log" >&2
    die "mmcv build failed; see $build_log"
  fi
  mkdir -p "$WHEEL_DIR.partial"
  cp "$BUILD_DIR"/dist/mmcv-*.whl "$WHEEL_DIR.partial/"
  rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.partial" "$WHEEL_DIR"  # appears only when complete
  log "mmcv wheel cached in $WHEEL_DIR ($(( (SECONDS - start) / 60 )) min)"
fi
log "installing the OpenMMLab stack and tools"
"${PIP[@]}" -r "$REQ/runtime.txt" -r "$REQ/deploy.txt" -r "$REQ/tests.txt"
"${PIP[@]}" --no-deps "$WHEEL_DIR"/mmcv-*.whl  # its dependencies come with runtime.txt
"${PIP[@]}" --no-deps -r "$REQ/cityscapes.txt"
# mmengine pulls the GUI build of OpenCV; the project uses the headless one.
"$PY" -m pip uninstall --quiet -y opencv-python
"${PIP[@]}" --force-reinstall --no-deps "$(grep -E '^opencv-python-headless' "$REQ/runtime.txt" | cut -d' ' -f1)"
# The plugin itself, editable: `mmcityscapes` imports from any folder (pyproject.toml).
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

log "checking imports (from outside the repository: the plugin must come from the install)"
(cd / && "$PY" -) <<'PY'
import cv2, mmcv, mmdet, mmengine, mmseg, torch, torchvision, cityscapesscripts, optuna, pycocotools
import mmcityscapes.components  # the plugin, installed and registering
from mmcv.ops import RoIAlign, nms  # compiled ops are present
print(f'torch {torch.__version__} (cuda available: {torch.cuda.is_available()}), torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'opencv {cv2.__version__}')
PY
echo "$stamp" >"$VENV/.mmcityscapes-ready"
log "done: activate with 'source $VENV/bin/activate'"
