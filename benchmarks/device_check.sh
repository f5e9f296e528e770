#!/usr/bin/env bash
# Everything the GPU machine is for, in one call of about 6 minutes (a session has 15 device-minutes in all).
# Here first: bash benchmarks/prepare_device.sh   (fills the git-ignored .device/, about 12 MB)
# Then:       run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=480)
# The device image has python3 with torch, pandas, pyarrow, scikit-image, click, tqdm, matplotlib; sr_bench runs from
# the checkout (PYTHONPATH), lpips comes as a carried wheel. Every result is also written under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/whl/*.whl || exit 1
export PYTHONPATH="$PWD:/tmp/site" SRBENCH_LPIPS_WEIGHTS="$PWD/.device/alexnet.pth"
OUTDIR=${OUT:-.device/out}
mkdir -p "$OUTDIR"
SRBENCH="python3 -m sr_bench.cli"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUTDIR/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" | tee -a "$OUTDIR/gpu.txt"
# 1. CUDA = CPU: resize, colour, PSNR/SSIM (1e-6), LPIPS (1e-4), the runner's rows on Set5
timeout 150 python3 benchmarks/cuda_parity.py --data-root .device/data 2>&1 | tee "$OUTDIR/cuda_parity.txt"
# 2. training throughput against the bare loop (gpu.md: 67 it/s for EDSR-baseline x2, batch 16, patch 48, H200)
timeout 90 python3 benchmarks/train_throughput.py --device cuda --steps 300 --warm 100 2>&1 | tee "$OUTDIR/train_throughput.txt"
# 3. learning works on the GPU: 3,000 steps on Set5, evaluated on the same images (a learning check, not a benchmark)
timeout 150 $SRBENCH train edsr-baseline --scale 2 --data .device/data/Set5 --device cuda --steps 3000 \
    --out .device/w/edsr_x2.pt --overwrite --no-progress --log-every 500 2>&1 | tee "$OUTDIR/train.txt"
timeout 60 $SRBENCH run --models bicubic,edsr-baseline=.device/w/edsr_x2.pt --datasets .device/data/Set5 \
    --scales 2 --device cuda --metrics psnr,ssim --out .device/run --no-progress 2>&1 | tee "$OUTDIR/train_eval.txt"
