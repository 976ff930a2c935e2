#!/usr/bin/env bash
# The paper's protocol on one GPU in one time-boxed command (benchmarks/gpu_protocol.py; docs/performance.md, "On a GPU").
#
#   benchmarks/gpu.sh [BUDGET_S] [gpu_protocol.py options]   # on the GPU machine; BUDGET_S defaults to 540
#   benchmarks/gpu.sh --vendor                              # here, before: copy pytest into build/gpu-vendor (to carry)
#   benchmarks/gpu.sh 60 --device cpu --tiny                # the dry run on a CPU (seconds)
#
# Reports go to $OUT when set (the `run` tool's folder that comes back), else outputs/gpu; runs to outputs/gpu-runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3 || command -v python)}
VENDOR=${MEMNB_GPU_VENDOR:-build/gpu-vendor}  # where --vendor copies pytest, and where a run looks for it

if [ "${1:-}" = "--vendor" ]; then
    # pytest is pure Python: its packages from this interpreter work on the GPU machine's Python 3.12
    site=$("$PY" -c "import pytest, os; print(os.path.dirname(os.path.dirname(pytest.__file__)))")
    rm -rf "$VENDOR" && mkdir -p "$VENDOR"
    for name in _pytest pytest pluggy iniconfig packaging py.py; do
        if [ -e "$site/$name" ]; then cp -r "$site/$name" "$VENDOR/"; fi
    done
    find "$VENDOR" -name __pycache__ -prune -exec rm -rf {} +
    echo "copied pytest from $site into $VENDOR ($(du -sh "$VENDOR" | cut -f1)); carry it: carry=[\"$VENDOR\"]"
    exit 0
fi

BUDGET=540
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; then BUDGET=$1; shift; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d "$VENDOR" ]; then export PYTHONPATH="$PYTHONPATH:$(cd "$VENDOR" && pwd)"; fi
echo "benchmarks/gpu.sh: $("$PY" --version 2>&1), budget ${BUDGET} s"
exec "$PY" benchmarks/gpu_protocol.py --budget-s "$BUDGET" "$@"
