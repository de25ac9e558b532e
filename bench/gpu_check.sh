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
status=0
{
  echo "== machine"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "== CUDA tests"
  $PY -m pytest -q -m cuda tests/test_learned.py -p no:cacheprovider || status=1
  echo "== bench/learned.py alexnet (fast against reference)"
  $PY bench/learned.py --model alexnet --device cuda --steps 30 --warmup 5 --workers 4 || status=1
  echo "== runner.py --only alexnet --gpu (paper preset)"
  start=$(date +%s)
  $PY runner.py --only alexnet --gpu --results-dir "$OUT/results" || status=1
  echo "wall seconds for the runner command: $(( $(date +%s) - start ))"
} 2>&1 | tee "$OUT/gpu_check.log"
cp "$OUT/results/summary.csv" "$OUT/summary.csv" 2>/dev/null
cp "$OUT/results/figures/alexnet_conv1.png" "$OUT/alexnet_conv1.png" 2>/dev/null
rm -rf "$OUT/results/checkpoints" "$OUT/results/predictions"
exit $status
