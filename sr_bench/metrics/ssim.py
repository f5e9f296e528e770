"""SSIM exactly as Wang et al.'s ``ssim_index.m``: Gaussian 11x11, sigma 1.5, K = (0.01, 0.03), L = 255,
'valid' filtering, mean of the SSIM map. No automatic downsampling (the version shipped with RCAN/DBDN)."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from sr_bench.imaging.resize import banded_matrix
from sr_bench.metrics.base import Metric, MetricInfo

WINDOW = 11
SIGMA = 1.5


def gaussian_1d(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    # fspecial('gaussian') is the normalised outer product of this vector with itself
    r = (size - 1) / 2.0
    x = np.arange(-r, r + 1)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


@functools.lru_cache(maxsize=256)
def _valid_filter_matrix(n: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """(n - 10, n) banded matrix: 1-D 'valid' correlation with the Gaussian."""
    out = n - WINDOW + 1
    idx = np.arange(out)[:, None] + np.arange(WINDOW)[None, :]
    return banded_matrix(np.tile(gaussian_1d(), (out, 1)), idx, n, device, dtype)


def _filter_valid(stack: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of maps stacked as (H, N, W) -> (H - 10, N, W - 10).

    Rows: one banded-matrix product on the (H, N*W) view, no copy. Columns: eleven shifted multiply-adds along the
    contiguous last axis, which beats transposing for a second matrix product.
    """
    h, n, w = stack.shape
    rows = _valid_filter_matrix(h, str(stack.device), stack.dtype) @ stack.reshape(h, n * w)
    rows = rows.reshape(h - WINDOW + 1, n, w)
    g = gaussian_1d()
    out_w = w - WINDOW + 1
    acc = rows[..., :out_w] * float(g[0])
    for k in range(1, WINDOW):
        acc.add_(rows[..., k : k + out_w], alpha=float(g[k]))
    return acc


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0) -> float:
    """Mean SSIM of two single-channel planes (any leading dims of size 1), float64."""
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    x = a.double().reshape(a.shape[-2], a.shape[-1])
    y = b.double().reshape(b.shape[-2], b.shape[-1])
    if min(x.shape) < WINDOW:
        return math.nan
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    maps = torch.empty((x.shape[0], 5, x.shape[1]), dtype=x.dtype, device=x.device)
    maps[:, 0], maps[:, 1] = x, y
    torch.mul(x, x, out=maps[:, 2])
    torch.mul(y, y, out=maps[:, 3])
    torch.mul(x, y, out=maps[:, 4])
    mu1, mu2, xx, yy, xy = _filter_valid(maps).unbind(1)
    mu12 = mu1 * mu2
    mu1.square_()
    mu2.square_()
    # in place: the maps are image-sized and this runs once per image and scale
    num = (2 * mu12 + c1).mul_(xy.sub_(mu12).mul_(2).add_(c2))
    den = (mu1 + mu2 + c1).mul_(xx.sub_(mu1).add_(yy.sub_(mu2)).add_(c2))
    return num.div_(den).mean().item()


class SSIM(Metric):
    info = MetricInfo(
        name="ssim", higher_is_better=True, lower=-1.0, upper=1.0, view="y_ssim", decimals=4,
        description="Wang et al. ssim_index: Gaussian 11x11 sigma 1.5, valid windows, on the protocol's luma",
    )

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        return ssim(sr, hr)
