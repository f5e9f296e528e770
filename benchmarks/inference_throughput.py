"""``srbench run`` throughput per model and precision: images per second, the share of the evaluation loop's wall
time spent outside model forwards, and the PSNR drift of each precision against fp32.

Each (model, precision) is one real ``srbench run`` (the runner's API, random weights) over the images of --data at
one scale. From its run.json: the loop's wall time (``timing.wall_seconds``), the summed forward seconds of its rows
(``timing.forward_seconds``; each forward is timed with the device synchronised) and, for a non-fp32 run, the fp32
forwards of its first --drift-images images (``timing.fp32_reference_seconds``). The share outside forwards is
1 - (forward + fp32 reference) / wall: decoding, LR making, metrics and bookkeeping that the prefetching loop did not
hide. ``--sequential`` also runs the last precision with --prefetch 0, the loop without the helper thread, and
prints the largest PSNR/SSIM difference between the two runs' rows (the prefetching loop must not change a number).

    python benchmarks/inference_throughput.py --data .device/data/Urban100 --device cuda      # the GPU check
    python benchmarks/inference_throughput.py --data ../shared/datasets/Set5 --device cpu --models edsr-baseline \\
        --precisions fp32,bf16                                                                   # a CPU check

Reference figures (``../shared/docs/gpu.md``, H200, one Urban100-sized image, forward only, median of 5):
RCAN x2 195 / 108 / 71 ms and Meta-RDN x2 257 / 102 / 63 ms in fp32 / tf32 / bf16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.provenance import device_name, resolve_device
from sr_bench.run.runner import run

REFERENCE_MS = {("rcan", "fp32"): 195, ("rcan", "tf32"): 108, ("rcan", "bf16"): 71,
                ("metasr", "fp32"): 257, ("metasr", "tf32"): 102, ("metasr", "bf16"): 63}


def one_run(model: str, data: str, scale: Fraction, precision: str, device: str, metrics: list[str], drift: int,
            prefetch: int | None, out: Path) -> dict:
    start = time.perf_counter()
    result = run(models=[model], datasets=[data], scales=[scale], metrics=metrics, allow_untrained=True,
                 device=device, precision=precision, drift_images=drift, prefetch=prefetch, out=out, progress=False)
    process = time.perf_counter() - start
    t = result.timing
    rows = result.rows[result.rows["error"] == ""]
    drift_d = ((result.precision or {}).get("drift") or {}).get("models", {}).get(model)
    return {
        "model": model, "precision": precision, "prefetch": prefetch, "images": t["images"],
        "errors": int((result.rows["error"] != "").sum()),
        "wall_seconds": t["wall_seconds"], "call_seconds": round(process, 3),
        "images_per_second": t["images"] / t["wall_seconds"],
        "forward_ms_median": 1e3 * statistics.median(rows["seconds"]) if len(rows) else None,
        "outside_share": 1 - (t["forward_seconds"] + t["fp32_reference_seconds"]) / t["wall_seconds"],
        "fp32_reference_seconds": t["fp32_reference_seconds"],
        "psnr_mean": float(rows["psnr"].mean()) if len(rows) else None,
        "drift_mean_abs_db": drift_d["mean_abs_dpsnr"] if drift_d else None,
        "drift_max_abs_db": drift_d["max_abs_dpsnr"] if drift_d else None,
        "drift_evaluations": drift_d["evaluations"] if drift_d else 0,
        "device": result.rows["device"].iloc[0],
        "_rows": result.rows.sort_values(["image"]).reset_index(drop=True),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="dataset name or image folder")
    ap.add_argument("--models", default="rcan,metasr")
    ap.add_argument("--scale", default="2")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--metrics", default="psnr,ssim")
    ap.add_argument("--drift-images", type=int, default=5)
    ap.add_argument("--prefetch", type=int, default=None, help="default: the runner's (2 on CUDA, 0 on CPU)")
    ap.add_argument("--sequential", action="store_true", help="also run the last precision with --prefetch 0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None, help="write every result here (appended to as it goes)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    metrics = args.metrics.split(",")
    scale = Fraction(args.scale)
    print(f"device {device_name(device)}, torch {torch.__version__}; data {args.data}; x{args.scale}; "
          f"metrics {args.metrics}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            # warm-up on the first image: CUDA context, cuDNN and the model's first-call costs stay out of the numbers
            first = sorted(p for p in Path(args.data).iterdir() if p.is_file())[:1] if Path(args.data).is_dir() else []
            if first:
                warm = Path(tmp) / f"warm-{model}"
                warm.mkdir()
                (warm / first[0].name).symlink_to(first[0].resolve())
                one_run(model, str(warm), scale, "fp32", str(device), metrics, 0, args.prefetch,
                        Path(tmp) / f"w-{model}")  # a run folder holds one request
            plan = [(p, args.prefetch) for p in args.precisions.split(",")]
            if args.sequential:
                plan.append((plan[-1][0], 0))
            for precision, prefetch in plan:
                r = one_run(model, args.data, scale, precision, str(device), metrics,
                            args.drift_images if precision != "fp32" else 0, prefetch,
                            Path(tmp) / f"{model}-{precision}-{prefetch}")
                ref = REFERENCE_MS.get((model, precision)) if device.type == "cuda" else None
                r["reference_ms"] = ref
                rows = r.pop("_rows")
                if prefetch == 0 and args.sequential:
                    same = [q for q in results if q["model"] == model and q["precision"] == precision][0]
                    for metric in ("psnr", "ssim"):
                        if metric in metrics:
                            diff = float((rows[metric] - same["rows"][metric]).abs().max())
                            r[f"max_abs_diff_{metric}_vs_prefetch"] = diff
                            print(f"{model} {precision}: prefetch 0 vs prefetching rows, max |d{metric}| = {diff:.3g}")
                r["rows"] = rows
                results.append(r)
                drift = (f"; drift vs fp32 |dPSNR| mean {r['drift_mean_abs_db']:.4f} "
                         f"max {r['drift_max_abs_db']:.4f} dB "
                         f"({r['drift_evaluations']} evals)" if r["drift_evaluations"] else "")
                print(f"{model:8s} {precision:5s} prefetch {'auto' if prefetch is None else prefetch}: "
                      f"{r['images']} images, {r['images_per_second']:.2f} images/s, forward median "
                      f"{r['forward_ms_median']:.1f} ms" + (f" (H200 reference {ref} ms)" if ref else "")
                      + f", outside forwards {100 * r['outside_share']:.1f}% of {r['wall_seconds']:.1f} s"
                      + f", mean PSNR {r['psnr_mean']:.3f}{drift}; errors {r['errors']}", flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps([{k: v for k, v in q.items() if k != "rows"}
                                                           for q in results], indent=1))
    print("\nmodel    precision  images/s  forward ms  outside-forward  drift mean/max dB")
    for r in results:
        d = f"{r['drift_mean_abs_db']:.4f}/{r['drift_max_abs_db']:.4f}" if r["drift_evaluations"] else "-"
        tag = r["precision"] + ("" if r["prefetch"] is None else f"/p{r['prefetch']}")
        print(f"{r['model']:8s} {tag:10s} {r['images_per_second']:8.2f}  {r['forward_ms_median']:10.1f}  "
              f"{100 * r['outside_share']:14.1f}%  {d}")


if __name__ == "__main__":
    main()
