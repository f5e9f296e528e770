#!/usr/bin/env bash
# Issue 17's GPU check in one call of at most about 7.5 minutes (BUDGET_S, default 450 s; a session has 15
# device-minutes in all, so a rerun fits): the headline grid (`srbench run --models asdn,metasr --scales 1.5:4:0.1`
# over Set5/Set14/B100/Urban100) measured on a sample and extrapolated, in bf16 and fp32, each speed lever against
# the bf16 baseline, and CUDA = CPU parity of ASDN and Meta-RDN on one Set5 image at x2.5 in fp32.
#
# Here first (where ../shared is), once:   bash benchmarks/headline_gpu_check.sh prepare
#   fills the git-ignored .device/ (lpips wheel, AlexNet weights, Set5, two headline samples; about 25 MB)
# Then:   run(command="bash benchmarks/headline_gpu_check.sh", carry=[".device"], timeout_s=480)
# Every part writes to $OUT as it goes (headline_*.json/txt, parity.txt, summary.md, gpu.txt); the summary is the
# table docs/gpu-check.md wants. Parts, most important first; each has its own timeout, capped by the deadline:
#   (1) bf16, no lever: .device/headline (every 20th image, at most 3 per set: 8 images), all 26 scales, --profile:
#       the extrapolated full grid and the MFU of ASDN and Meta-RDN                            -> headline_bf16.*
#   (2) fp32 on the same sample at x1.5, x2.5, x4 (fp32 is 4-5x slower on this network)        -> headline_fp32.*
#   (3) CUDA = CPU: ASDN and Meta-RDN rows, Set5 butterfly x2.5, fp32, within 1e-4 dB               -> parity.txt
#   (4) levers on .device/levers (4 Urban100 images, x1.5, x2.5, x3.5; no FLOP counter), bf16: none, then
#       --channels-last, --cudnn-benchmark, --workers 2 (two processes on the GPU), Ray --gpus-per-worker 0.5 (when
#       Ray is installed), --compile --channels-last, fp32 with and without --channels-last, and the bf16
#       baseline again (the spread of two equal runs)                                         -> headline_lever_*.*
# The same logic on CPU at toy sizes (checks the script, not the GPU):
#   DEVICE=cpu QUICK=1 DATA=../shared/datasets bash benchmarks/headline_gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
DEV=${DEVICE_DIR:-.device}

if [ "${1:-}" = prepare ]; then
    set -e
    SHARED=${SRBENCH_SHARED:-../shared}
    DEVICE_MIB=12 bash benchmarks/prepare_device.sh  # wheel, weights, Set5 (and an Urban100 image or two)
    .venv/bin/python benchmarks/headline_grid.py --data-root "$SHARED/datasets" --prepare "$DEV/headline" \
        --every 20 --max-images 3
    .venv/bin/python benchmarks/headline_grid.py --data-root "$SHARED/datasets" --prepare "$DEV/levers" \
        --datasets urban100 --every 25 --max-images 4
    tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
    echo "$DEV: $(du -sb "$DEV" | cut -f1) bytes + working tree $tree bytes (a call carries at most 64 MiB)"
    exit 0
fi

DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
DEADLINE=$(( SECONDS + ${BUDGET_S:-450} ))
WORK=$(mktemp -d /tmp/srbench-headline.XXXXXX)
OUTDIR=${OUT:-$WORK/out}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu.txt"
if [ "$DEVICE" = cuda ]; then
    PY=python3
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$DEV"/whl/*.whl \
        || exit 1
    export PYTHONPATH="$PWD:/tmp/site"
    export SRBENCH_LPIPS_WEIGHTS="$PWD/$DEV/alexnet.pth"
    PARITY_DATA="$DEV/data"
else
    PY=${PY:-.venv/bin/python}
    PARITY_DATA=${DATA:-../shared/datasets}
fi

# part SECONDS CMD...: run CMD under `timeout`, at most until the deadline; a part with under 15 s left is skipped
part() {
    local limit=$1; shift
    local left=$(( DEADLINE - SECONDS ))
    (( left < limit )) && limit=$left
    if (( limit < 15 )); then echo "SKIPPED (deadline): $*" | tee -a "$LOG"; return 0; fi
    echo "== [$(date -u +%H:%M:%S), ${SECONDS}s] timeout ${limit}s: $*" | tee -a "$LOG"
    timeout "$limit" "$@"
    local rc=$?
    (( rc != 0 )) && echo "== exit $rc (124: timed out)" | tee -a "$LOG"
    return 0
}

HEADLINE="$DEV/headline"; LEVERS="$DEV/levers"
GRID=(--device "$DEVICE" --drift-images 0)
if [ "$QUICK" = 1 ]; then  # the same commands on CPU-sized work: samples of 24 px crops, tiny ASDN
    DATA=${DATA:-../shared/datasets}
    HEADLINE=$WORK/headline; LEVERS=$WORK/levers
    $PY benchmarks/headline_grid.py --data-root "$DATA" --prepare "$HEADLINE" --every 50 --max-images 1 --size 24
    $PY benchmarks/headline_grid.py --data-root "$DATA" --prepare "$LEVERS" --datasets set5 --every 5 \
        --max-images 1 --size 24
    GRID+=(--models srcnn,metasr --metrics psnr,ssim)
    S_BF16=2; S_FP32=2; S_LEVERS=2,2.5; PRECISION=bf16; COMPILE=(--compile aot_eager); WORKERS=2
    PARITY=(--against cpu --model-opt asdn.n_dab=1)
else
    S_BF16=1.5:4:0.1; S_FP32=1.5,2.5,4; S_LEVERS=1.5,2.5,3.5; PRECISION=bf16; COMPILE=(--compile); WORKERS=2
    PARITY=()
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
    $PY -c "import torch; print('torch', torch.__version__)"
    $PY -c "import ray; print('ray', ray.__version__)" 2>/dev/null || echo "ray: not installed"
} 2>&1 | tee -a "$LOG"

# headline NAME SECONDS SAMPLE ARGS...: one benchmarks/headline_grid.py measurement into $OUT/headline_NAME.*
headline() {
    local name=$1 limit=$2 sample=$3; shift 3
    part "$limit" $PY benchmarks/headline_grid.py --sample "$sample" "${GRID[@]}" --json "$OUTDIR/headline_$name.json" \
        "$@" 2>&1 | grep -v "^protocol: " | tee "$OUTDIR/headline_$name.txt"
}

# (1) the headline extrapolation and the MFU, (2) fp32
headline bf16 150 "$HEADLINE" --precision bf16 --scales "$S_BF16"
headline fp32 100 "$HEADLINE" --precision fp32 --scales "$S_FP32"
# (3) CUDA = CPU parity of the headline models (the CPU side takes most of it)
part 100 $PY benchmarks/cuda_parity.py --data-root "$PARITY_DATA" --models asdn,metasr --scale 2.5 \
    --image butterfly --model-tol 1e-4 --models-only "${PARITY[@]}" 2>&1 | grep -v "^protocol: \|^saved " \
    | tee "$OUTDIR/parity.txt"
# (4) each lever against the bf16 baseline on the same small sample, timed without the FLOP counter
LEVER=(--precision "$PRECISION" --scales "$S_LEVERS" --no-profile)
headline lever_none 40 "$LEVERS" "${LEVER[@]}"
headline lever_channels_last 40 "$LEVERS" "${LEVER[@]}" --channels-last
headline lever_cudnn_benchmark 40 "$LEVERS" "${LEVER[@]}" --cudnn-benchmark
headline lever_workers2 50 "$LEVERS" "${LEVER[@]}" --workers "$WORKERS"
if [ "$DEVICE" = cuda ] && $PY -c "import ray" 2>/dev/null; then
    headline lever_ray_half_gpu 60 "$LEVERS" "${LEVER[@]}" --workers 2 --gpus-per-worker 0.5
else
    echo "SKIPPED: Ray --gpus-per-worker 0.5 (no GPU, or Ray is not installed; --workers 2 shares a GPU the same" \
        "way)" | tee -a "$LOG"
fi
headline lever_compile_channels_last 170 "$LEVERS" "${LEVER[@]}" "${COMPILE[@]}" --channels-last
headline lever_fp32 40 "$LEVERS" --precision fp32 --scales "$S_LEVERS" --no-profile
headline lever_fp32_channels_last 40 "$LEVERS" --precision fp32 --scales "$S_LEVERS" --no-profile --channels-last
headline lever_none_again 40 "$LEVERS" "${LEVER[@]}"  # the baseline once more: how far two equal runs differ

$PY benchmarks/headline_summary.py "$OUTDIR" 2>&1 | tee "$OUTDIR/summary.md"
echo "done in ${SECONDS}s; results in $OUTDIR" | tee -a "$LOG"
