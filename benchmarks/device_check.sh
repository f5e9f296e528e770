#!/usr/bin/env bash
# Everything the GPU machine is for, in one call of at most about 9 minutes (a session has 15 device-minutes in all).
# Here first: bash benchmarks/prepare_device.sh   (fills the git-ignored .device/, under 60 MiB)
# Then:       run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=590)
# The device image has python3 with torch, pandas, pyarrow, scikit-image, click, tqdm, matplotlib; sr_bench runs from
# the checkout (PYTHONPATH), lpips comes as a carried wheel.
#
# Parts, most important first; each has its own timeout, capped by a deadline (BUDGET_S, default 530 s from the
# start), and writes to $OUT as it goes, so a failed or skipped part leaves the others' results:
#   (a) srbench run throughput, RCAN x2 and Meta-RDN x2 (random weights) over the carried Urban100 images in
#       fp32/tf32/bf16: images/s, share of the loop outside forwards, PSNR drift vs fp32     -> infer.txt, infer.json
#   (b) srbench train in bf16 vs a bare loop: a reduced ASDN (n_dab=2, 96 px HR patches) and EDSR-baseline x2,
#       batch 16, trained on those Urban100 images; checkpoints come back          -> train.txt, *_x2.pt, train.json
#   (c) CUDA = CPU parity (ops, bicubic rows, RCAN rows on Set5), then training extras: full-size ASDN bare loop,
#       channels-last, EDSR fp32, torch.compile                                                    -> device.txt
# Back here, evaluate the checkpoints on Set5 (FILES = the folder the files came back to):
#   srbench run --models bicubic,asdn=$FILES/asdn_x2.pt,edsr-baseline=$FILES/edsr_x2.pt --model-opt n_dab=2 \
#       --datasets set5 --scales 2 --metrics psnr,ssim --device cpu --out results/gpu-trained
# Locally, the same logic on CPU in a few minutes: DEVICE=cpu QUICK=1 bash benchmarks/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
DEADLINE=$(( SECONDS + ${BUDGET_S:-530} ))
WORK=$(mktemp -d /tmp/srbench-device.XXXXXX)  # checkpoints and resume files: never inside the carried .device
OUTDIR=${OUT:-$WORK/out}
mkdir -p "$OUTDIR" "$WORK/w"
if [ "$DEVICE" = cuda ]; then
    PY=python3
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/whl/*.whl || exit 1
    export PYTHONPATH="$PWD:/tmp/site"
else
    PY=${PY:-.venv/bin/python}
fi
export SRBENCH_LPIPS_WEIGHTS="$PWD/.device/alexnet.pth"
URBAN=.device/data/Urban100
LOG="$OUTDIR/device.txt"

# part SECONDS CMD...: run CMD under `timeout`, at most until the deadline; a part with under 15 s left is skipped
part() {
    local limit=$1; shift
    local left=$(( DEADLINE - SECONDS ))
    (( left < limit )) && limit=$left
    if (( limit < 15 )); then echo "SKIPPED (deadline): $*"; return 0; fi
    echo "== [$(date -u +%H:%M:%S), ${SECONDS}s] timeout ${limit}s: $*"
    timeout "$limit" "$@"
    local rc=$?
    (( rc != 0 )) && echo "== exit $rc (124: timed out)"
    return 0
}

if [ "$QUICK" = 1 ]; then  # the same commands at toy sizes, to check the script itself
    IMAGES=$(mktemp -d); cp .device/data/Set5/bird.png .device/data/Set5/butterfly.png "$IMAGES/"; URBAN=$IMAGES
    INFER="--models edsr-baseline --precisions fp32,bf16 --drift-images 1"
    ASDN="--batch 2 --patch 16 --steps 6 --warm 2"; EDSR="--batch 2 --patch 16 --steps 6 --warm 2"
    FULL="--batch 1 --patch 8 --steps 3 --warm 1"; PARITY=""; LEGACY="--batch 2 --patch 16 --steps 4 --warm 2"
else
    INFER="--models rcan,metasr --precisions fp32,tf32,bf16 --drift-images 5"
    ASDN="--batch 16 --patch 48 --steps 2000 --warm 300 --bare-steps 400 --bare-warm 100"
    EDSR="--batch 16 --patch 48 --steps 4000 --warm 500 --bare-steps 700 --bare-warm 200"
    FULL="--batch 16 --patch 48 --steps 40 --warm 10"; PARITY="--models rcan"
    LEGACY="--batch 16 --patch 48 --steps 600 --warm 100"
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
    $PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
    echo "carried Urban100 images: $(ls $URBAN | wc -l)"
} 2>&1 | tee "$LOG"

# (a) inference throughput, precision drift (and prefetch 0 for bf16: what the prefetching loop saves)
part 200 $PY benchmarks/inference_throughput.py --data "$URBAN" --device "$DEVICE" --scale 2 $INFER --sequential \
    --json "$OUTDIR/infer.json" 2>&1 | grep -v "^protocol: " | tee "$OUTDIR/infer.txt"

# (b) bf16 training against the bare loop; the checkpoints come back
# (checkpoints also every 500 steps: a part cut by its timeout still returns one, with PATH.json saying its step)
part 120 $PY benchmarks/train_throughput.py --model asdn --model-opt n_dab=2 --scale 2 --data "$URBAN" \
    --device "$DEVICE" --precision bf16 $ASDN --save-every 500 --out $WORK/w/asdn_x2.pt 2>&1 | tee "$OUTDIR/train.txt"
part 120 $PY benchmarks/train_throughput.py --model edsr-baseline --scale 2 --data "$URBAN" \
    --device "$DEVICE" --precision bf16 $EDSR --save-every 500 --out $WORK/w/edsr_x2.pt 2>&1 | tee -a "$OUTDIR/train.txt"
for name in asdn_x2 edsr_x2; do [ -f "$WORK/w/$name.pt" ] && cp "$WORK/w/$name.pt" "$OUTDIR/"; done
$PY - "$OUTDIR/train.json" $WORK/w/asdn_x2.pt.json $WORK/w/edsr_x2.pt.json <<'PY'
import json, pathlib, sys
records = {p: json.loads(pathlib.Path(p).read_text()) for p in sys.argv[2:] if pathlib.Path(p).is_file()}
pathlib.Path(sys.argv[1]).write_text(json.dumps(records, indent=1))
PY

# (c) CUDA = CPU parity, then the training extras
if [ "$DEVICE" = cuda ]; then
    part 90 $PY benchmarks/cuda_parity.py --data-root .device/data $PARITY 2>&1 | tee -a "$LOG"
fi
part 40 $PY benchmarks/train_throughput.py --model asdn --scale 2 --device "$DEVICE" --precision bf16 $FULL \
    --bare-only 2>&1 | tee -a "$LOG"  # full-size ASDN (16 blocks): gpu.md's 8.3 it/s
part 40 $PY benchmarks/train_throughput.py --model asdn --scale 2 --device "$DEVICE" --precision bf16 $FULL \
    --bare-only --channels-last 2>&1 | tee -a "$LOG"
part 50 $PY benchmarks/train_throughput.py --model edsr-baseline --scale 2 --data "$URBAN" --device "$DEVICE" \
    $LEGACY 2>&1 | tee -a "$LOG"  # fp32: gpu.md's 67 it/s
part 70 $PY benchmarks/train_throughput.py --model edsr-baseline --scale 2 --device "$DEVICE" --precision bf16 \
    $LEGACY --bare-only --compile 2>&1 | tee -a "$LOG"
echo "done in ${SECONDS}s; results in $OUTDIR" | tee -a "$LOG"
