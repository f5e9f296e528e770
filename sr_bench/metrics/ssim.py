"""SSIM exactly as Wang et al.'s ``ssim_index.m``: Gaussian 11x11, sigma 1.5, K = (0.01, 0.03), L = 255,
'valid' filtering, mean of the SSIM map. No automatic downsampling (the version shipped with RCAN/DBDN)."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import torch

from sr_bench import native
from sr_bench.metrics.base import Metric, MetricInfo
from sr_bench.native import ssim_map
from sr_bench.threads import configured as threads_configured
from sr_bench.threads import total as threads_total

WINDOW = 11
SIGMA = 1.5


def gaussian_1d(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    # fspecial('gaussian') is the normalised outer product of this vector with itself
    r = (size - 1) / 2.0
    x = np.arange(-r, r + 1)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


_TAPS = tuple(float(v) for v in gaussian_1d())


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0, block_rows: int = 128) -> float:
    """Mean SSIM of two single-channel planes (any leading dims of size 1), float64.

    The SSIM map is summed in blocks of ``block_rows`` output rows; that blocking sets the summation order (~1e-16).
    On CPU the map comes from the C kernel where it is active (``sr_bench.native.ssim_map``, the same bits), else from
    its torch operations one block at a time.
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    x = a.double().reshape(a.shape[-2], a.shape[-1])
    y = b.double().reshape(b.shape[-2], b.shape[-1])
    h, w = x.shape
    if min(h, w) < WINDOW:
        return math.nan
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    out_h, out_w = h - WINDOW + 1, w - WINDOW + 1
    kernel = ssim_map.kernel() if x.device.type == "cpu" else None
    if kernel is not None:
        ratio = _ratio_map(kernel, _rows(x), _rows(y), c1, c2)
        total = torch.zeros((), dtype=torch.float64)
        for r0 in range(0, out_h, block_rows):
            # torch's sum with the run's threads, on this thread: waking an OpenMP team for each block costs more
            # than the whole map (sr_bench.threads)
            total += threads_total(ratio[r0 : r0 + block_rows])
        return (total / (out_h * out_w)).item()
    maps = ssim_map.stat_maps(x, y)
    if x.device.type != "cpu":
        block_rows = out_h  # one launch per step beats cache blocking on a GPU
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for r0 in range(0, out_h, block_rows):
        n = min(block_rows, out_h - r0)
        total += ssim_map.torch_rows(maps[r0 : r0 + n + WINDOW - 1], n, _TAPS, c1, c2).sum()
    return (total / (out_h * out_w)).item()


_TAPS_C = (ctypes.c_double * WINDOW)(*_TAPS)
_MIN_PART_ROWS = 64  # below this a second thread costs more than it saves


def _rows(plane: torch.Tensor) -> torch.Tensor:
    """The plane itself when its rows are contiguous (a cropped or shaved view reads in place), else a copy."""
    return plane if plane.stride(1) == 1 or plane.shape[1] == 1 else plane.contiguous()


def _ratio_map(kernel, x: torch.Tensor, y: torch.Tensor, c1: float, c2: float) -> torch.Tensor:
    """The whole SSIM map of float64 planes with contiguous rows, its rows split over the run's intra-op threads."""
    h, w = x.shape
    out_h, out_w = h - WINDOW + 1, w - WINDOW + 1
    ratio = torch.empty((out_h, out_w), dtype=torch.float64)

    def rows(r0: int, r1: int) -> None:
        work = torch.empty(5 * w, dtype=torch.float64)
        out = ratio.data_ptr() + r0 * out_w * ratio.element_size()
        if kernel(x.data_ptr(), _row_stride(x), y.data_ptr(), _row_stride(y), h, w, r0, r1 - r0, _TAPS_C, c1, c2,
                  out, work.data_ptr()):
            raise RuntimeError(f"ssim_map kernel refused rows {r0}..{r1} of a {h}x{w} plane")

    native.split(out_h, _MIN_PART_ROWS, rows, threads_configured())
    return ratio


def _row_stride(plane: torch.Tensor) -> int:
    return plane.stride(0) if plane.shape[0] > 1 else plane.shape[1]


class SSIM(Metric):
    info = MetricInfo(
        name="ssim", higher_is_better=True, lower=-1.0, upper=1.0, view="y_ssim", decimals=4,
        description="Wang et al. ssim_index: Gaussian 11x11 sigma 1.5, valid windows, on the protocol's luma",
    )

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        return ssim(sr, hr)
