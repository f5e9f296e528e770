"""CUDA path == CPU path: resize, colour, PSNR, SSIM (float64) within 1e-6, LPIPS within 1e-4, and the runner's rows.

Run on the GPU machine (`../shared` does not travel there; copy Set5 into a git-ignored folder first):

    mkdir -p .device/data && cp -r ../shared/datasets/Set5 .device/data/
    python benchmarks/cuda_parity.py --data-root .device/data

Prints one line per check with the largest difference and PASS/FAIL; exits 1 if any check fails.

``--models rcan,metasr`` also compares a learned model's rows (random weights, fp32, x2): the network runs in float32
on both devices, whose kernels sum in different orders, so a few SR pixels may round to the other integer; the
tolerance (0.01 dB PSNR, 1e-4 SSIM) is far above that and far below any real difference between two models.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.imaging.color import rgb2y_linear, rgb2y_matlab_uint8
from sr_bench.imaging.resize import imresize
from sr_bench.metrics.psnr import psnr
from sr_bench.metrics.ssim import ssim
from sr_bench.run.runner import run
from sr_bench.scales import parse_scales

TOL = 1e-6
failed = False


def check(name: str, diff: float, tol: float = TOL) -> None:
    global failed
    ok = diff <= tol
    failed |= not ok
    print(f"{'PASS' if ok else 'FAIL'}  {name}: max |cuda - cpu| = {diff:.3e} (tolerance {tol:g})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=".device/data")
    ap.add_argument("--models", default="", help="learned models whose fp32 rows are compared too, e.g. rcan")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on the GPU machine")
    cuda = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(cuda)}, torch {torch.__version__}")
    g = torch.Generator().manual_seed(0)
    for shape, scales in (((3, 321, 480), ("1/2", "1/3", "5/7", "10/37")), ((3, 77, 53), ("2", "3", "23/10", "4"))):
        x = torch.randint(0, 256, shape, generator=g).double()
        for s in scales:
            f = Fraction(s)
            a, b = imresize(x, scale=f), imresize(x.to(cuda), scale=f).cpu()
            check(f"imresize {tuple(shape)} x{s}", (a - b).abs().max().item())
    x = torch.randint(0, 256, (3, 300, 200), generator=g).double()
    y = (x + torch.randn(x.shape, generator=g, dtype=torch.float64) * 8).round().clamp(0, 255)
    check("rgb2y_matlab_uint8", (rgb2y_matlab_uint8(x) - rgb2y_matlab_uint8(x.to(cuda)).cpu()).abs().max().item(), 0)
    check("rgb2y_linear", (rgb2y_linear(x) - rgb2y_linear(x.to(cuda)).cpu()).abs().max().item())
    ya, yb = rgb2y_matlab_uint8(x), rgb2y_matlab_uint8(y)
    check("psnr", abs(psnr(ya, yb) - psnr(ya.to(cuda), yb.to(cuda))))
    check("ssim", abs(ssim(ya, yb) - ssim(ya.to(cuda), yb.to(cuda))))

    rows = {}
    for device in ("cpu", "cuda"):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = run(models=["bicubic"], datasets=["set5"], scales=parse_scales("2,3,4"), protocol="matlab",
                         out=Path(tmp) / "r", data_root=args.data_root, device=device, progress=False)
            print(f"runner on {device}: {time.perf_counter() - start:.2f} s for {len(result.rows)} rows")
            rows[device] = result.rows.sort_values(["image", "scale_text"]).reset_index(drop=True)
    for metric, tol in (("psnr", TOL), ("ssim", TOL), ("lpips", 1e-4)):
        if rows["cpu"][metric].notna().any():
            check(f"runner rows: {metric}", (rows["cpu"][metric] - rows["cuda"][metric]).abs().max(), tol)
    for model in filter(None, args.models.split(",")):
        rows = {}
        for device in ("cpu", "cuda"):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = run(models=[model], datasets=["set5"], scales=parse_scales("2"), protocol="matlab",
                             metrics=["psnr", "ssim"], out=Path(tmp) / "r", data_root=args.data_root, device=device,
                             allow_untrained=True, precision="fp32", progress=False)
                print(f"{model} x2 fp32 on {device}: {time.perf_counter() - start:.2f} s for {len(result.rows)} rows, "
                      f"mean PSNR {result.rows['psnr'].mean():.4f}")
                rows[device] = result.rows.sort_values("image").reset_index(drop=True)
        check(f"{model} rows: psnr (dB)", (rows["cpu"]["psnr"] - rows["cuda"]["psnr"]).abs().max(), 0.01)
        check(f"{model} rows: ssim", (rows["cpu"]["ssim"] - rows["cuda"]["ssim"]).abs().max(), 1e-4)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
