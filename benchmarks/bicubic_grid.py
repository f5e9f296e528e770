"""Time the bicubic decimal grid (4 datasets x 1.5:4:0.1 = 5,694 image evaluations under `metasr`, PSNR + SSIM)
through `srbench run`, and in the same process a reference pipeline built from basicsr's `imresize`,
`calculate_psnr` and `calculate_ssim` doing the same work.

The reference is slow, so by default it runs on every k-th image of each dataset (all scales) and its time is scaled
to the full image count per dataset; `--ref-every 1` runs it on everything. Both pipelines read each image once.

    python benchmarks/bicubic_grid.py [--data-root ../shared/datasets] [--ref-every 4] \\
        [--datasets set5,set14,b100,urban100]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
import time
import types
import warnings
from fractions import Fraction
from pathlib import Path

from sr_bench.openmp import SPIN

os.environ.setdefault("GOMP_SPINCOUNT", SPIN)  # before torch loads libgomp, as `srbench` does (sr_bench.openmp)

import numpy as np
import torch

from sr_bench.data import resolve_dataset
from sr_bench.protocols import get_protocol
from sr_bench.run.runner import run
from sr_bench.scales import parse_scales, scale_text


def _basicsr():
    spec = importlib.util.find_spec("basicsr")
    if spec is None:
        sys.exit("basicsr is not installed: pip install --no-build-isolation basicsr-fixed==1.4.2")
    pkg = types.ModuleType("basicsr")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    sys.modules.setdefault("basicsr", pkg)
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    from basicsr.utils.matlab_functions import imresize

    return imresize, calculate_psnr, calculate_ssim


def reference(datasets, scales, data_root, every):
    """basicsr pipeline on every ``every``-th image; sizes follow the metasr rules so the work is the same."""
    imresize, calculate_psnr, calculate_ssim = _basicsr()
    protocol = get_protocol("metasr")
    seconds, cpu, done, psnrs = {}, {}, {}, {}
    for name in datasets:
        ds = resolve_dataset(name, data_root=data_root)
        items = ds.items[::every]
        start, cpu_start = time.perf_counter(), time.process_time()
        hrs = [item.load() for item in items]
        for s in scales:
            vals = []
            for arr in hrs:
                hr = arr if arr.shape[2] == 3 else np.repeat(arr, 3, axis=2)
                h, w = hr.shape[:2]
                hc = h if (Fraction(h) / s).denominator == 1 else h - 4
                wc = w if (Fraction(w) / s).denominator == 1 else w - 4
                lr = imresize(hr[:hc, :wc].astype(np.float64) / 255.0, 1 / float(s))
                lr_h, lr_w = math.ceil(Fraction(hc) / s), math.ceil(Fraction(wc) / s)
                lr = np.clip(np.round(lr[:lr_h, :lr_w] * 255.0), 0, 255) / 255.0
                sr_h, sr_w = math.floor(lr_h * s), math.floor(lr_w * s)
                sr = np.clip(np.round(imresize(lr, float(s))[:sr_h, :sr_w] * 255.0), 0, 255)
                gt = hr[:sr_h, :sr_w].astype(np.float64)
                border = math.ceil(s)
                # basicsr expects BGR for its Y conversion
                vals.append(calculate_psnr(sr[..., ::-1], gt[..., ::-1], border, test_y_channel=True))
                calculate_ssim(sr[..., ::-1], gt[..., ::-1], border, test_y_channel=True)
            psnrs[(ds.name, scale_text(s))] = float(np.mean(vals))
        seconds[ds.name] = time.perf_counter() - start
        cpu[ds.name] = time.process_time() - cpu_start
        done[ds.name] = (len(items), len(ds.items))
    return seconds, done, psnrs, protocol, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=os.environ.get("SRBENCH_DATA", "../shared/datasets"))
    ap.add_argument("--datasets", default="set5,set14,b100,urban100")
    ap.add_argument("--scales", default="1.5:4:0.1")
    ap.add_argument("--ref-every", type=int, default=4, help="reference on every k-th image (time scaled up)")
    ap.add_argument("--workers", default="1,2", help="sr_bench worker counts to time, e.g. 1,2")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    datasets = args.datasets.split(",")
    scales = parse_scales(args.scales)
    n_evals = sum(len(resolve_dataset(d, data_root=args.data_root).items) for d in datasets) * len(scales)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
          f"{len(datasets)} datasets x {len(scales)} scales = {n_evals} image evaluations")

    timings, cpu_times = {}, {}
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu_start = time.perf_counter(), time.process_time()
            result = run(models=["bicubic"], datasets=datasets, scales=scales, protocol="metasr",
                         metrics=["psnr", "ssim"], out=Path(tmp) / "run", data_root=args.data_root, device="cpu",
                         progress=True, workers=workers)
            timings[workers] = time.perf_counter() - start
            cpu_times[workers] = time.process_time() - cpu_start  # this process only: not --workers > 1
        print(f"sr_bench --workers {workers}: {timings[workers]:.1f} s for {len(result.rows)} evaluations "
              f"({1e3 * timings[workers] / len(result.rows):.1f} ms each), including image reads and Parquet writes")
        assert (result.rows["error"] == "").all()

    ref_seconds, ref_done, ref_psnr, _, ref_cpu = reference(datasets, scales, args.data_root, args.ref_every)
    estimate = sum(ref_seconds[d] * total / sub for d, (sub, total) in ref_done.items())
    measured = sum(ref_seconds.values())
    subset = sum(sub for sub, _ in ref_done.values()) * len(scales)
    print(f"reference (basicsr imresize + calculate_psnr/ssim): {measured:.1f} s measured on {subset} evaluations "
          f"(every {args.ref_every}th image, all scales) -> {estimate:.1f} s estimated for all {n_evals}")
    for d, (sub, total) in ref_done.items():
        print(f"  {d}: {sub}/{total} images, {1e3 * ref_seconds[d] / (sub * len(scales)):.1f} ms per evaluation")
    for workers, seconds in timings.items():
        print(f"speed-up, --workers {workers}: {estimate / seconds:.2f}x (target >= 10x with --workers 1)")
    # on a shared machine the two phases may see different loads; CPU seconds of this process are steadier
    cpu_estimate = sum(ref_cpu[d] * total / sub for d, (sub, total) in ref_done.items())
    if 1 in cpu_times:
        print(f"CPU seconds of this process: sr_bench --workers 1 {cpu_times[1]:.1f} s, reference {cpu_estimate:.1f} s "
              f"estimated: {cpu_estimate / cpu_times[1]:.2f}x")

    # same work? compare PSNR means on the reference's subset (basicsr: float32 resize, Y from its bgr2ycbcr)
    rows = result.rows
    worst = 0.0
    for (d, s), ref in ref_psnr.items():
        names = [it.name for it in resolve_dataset(d, data_root=args.data_root).items[:: args.ref_every]]
        ours_mean = rows[(rows.dataset == d) & (rows.scale_text == s) & rows.image.isin(names)].psnr.mean()
        worst = max(worst, abs(ours_mean - ref))
    print(f"largest |mean PSNR difference| to the reference on its subset: {worst:.4f} dB")


if __name__ == "__main__":
    main()
