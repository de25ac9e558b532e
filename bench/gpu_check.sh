#!/usr/bin/env bash
# One command for a lent GPU (fits in 8 minutes on one H100); everything it produces goes under $OUT.
#   OUT=/some/dir bash bench/gpu_check.sh
# Runs: the CUDA tests, bench/learned.py for alexnet (fast path against the d2l-style reference),
# and the full `python runner.py --only alexnet --gpu` (paper preset: 60k images, 10 epochs).
#
# The lent machine has torch, numpy, pandas and matplotlib but no internet: bring tqdm and pytest as
# wheels in .whl/ (git-ignored via .git/info/exclude; see /work/.library/device/README.md), e.g.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     -d .whl tqdm pytest pluggy iniconfig packaging
# and the data as data/fashion-mnist/*.gz; this script installs .whl/ into /tmp/site when present.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=5

failed=()
step() {  # step NAME COMMAND...: run one step; a non-zero exit is recorded and named, the next step still runs
  local name=$1 rc
  shift
  echo "== $name"
  "$@"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAILED: $name (exit $rc)"
    failed+=("$name")
  fi
}

main() {
  step "machine" nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  step "CUDA available to torch" $PY -c "import sys, torch; print('torch', torch.__version__, 'cuda', torch.version.cuda); \
sys.exit(0 if torch.cuda.is_available() else 1)"
  if [ ${#failed[@]} -gt 0 ]; then  # without a GPU every step below fails too: say so once
    echo "no usable CUDA GPU: the CUDA steps were not run"
  else
    step "CUDA tests" $PY -m pytest -q -m cuda tests/test_learned.py -p no:cacheprovider
    step "bench/learned.py alexnet (fast against reference)" \
      $PY bench/learned.py --model alexnet --device cuda --steps 30 --warmup 5 --workers 4
    local start
    start=$(date +%s)
    step "runner.py --only alexnet --gpu (paper preset)" $PY runner.py --only alexnet --gpu --results-dir "$OUT/results"
    echo "wall seconds for the runner command: $(( $(date +%s) - start ))"
  fi
  if [ ${#failed[@]} -gt 0 ]; then
    printf 'gpu_check failed: %s\n' "$(IFS=';'; echo "${failed[*]}")"
    return 1
  fi
  echo "gpu_check passed: every step"
}

main 2>&1 | tee "$OUT/gpu_check.log"
status=${PIPESTATUS[0]}  # main's own status (the pipe's last command is tee)
cp "$OUT/results/summary.csv" "$OUT/summary.csv" 2>/dev/null
cp "$OUT/results/figures/alexnet_conv1.png" "$OUT/alexnet_conv1.png" 2>/dev/null
rm -rf "$OUT/results/checkpoints" "$OUT/results/predictions"
exit "$status"
