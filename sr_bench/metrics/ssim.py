"""SSIM exactly as Wang et al.'s ``ssim_index.m``: Gaussian 11x11, sigma 1.5, K = (0.01, 0.03), L = 255,
'valid' filtering, mean of the SSIM map. No automatic downsampling (the version shipped with RCAN/DBDN)."""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np
import torch

from sr_bench.metrics.base import Metric, MetricInfo
from sr_bench.threads import one_thread, total

WINDOW = 11
SIGMA = 1.5


def gaussian_1d(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    # fspecial('gaussian') is the normalised outer product of this vector with itself
    r = (size - 1) / 2.0
    x = np.arange(-r, r + 1)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


_TAPS = tuple(float(v) for v in gaussian_1d())


def _shifted_sum(src: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """'valid' correlation with the Gaussian along ``dim``: eleven shifted multiply-adds (n outputs)."""
    acc = src.narrow(dim, 0, n) * _TAPS[0]
    for k in range(1, WINDOW):
        acc.add_(src.narrow(dim, k, n), alpha=_TAPS[k])
    return acc


class _PlaneStatistics:
    """The filtered ``y`` and ``y * y`` of one full plane, kept while that plane lives.

    A run compares the SR of every scale of an image with a window of the same full-size HR luma (the protocols crop
    it top-left and shave it; ``HRSource`` computes it once per image). The Gaussian-filtered statistics of the HR side
    at an output pixel depend only on the 11x11 window under it, and each filtered value is the same chain of
    multiply-adds wherever it is computed, so filtering the full plane once gives, sliced, the very numbers filtering
    each window would (``tests/test_threads.py`` compares the two). Keyed by a weak reference to the plane: a new
    plane, or one changed in place, is filtered anew.
    """

    def __init__(self):
        self._ref, self._version, self._maps = None, None, None

    def window(self, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(filtered y, filtered y*y) over the 'valid' outputs of ``b`` when ``b`` is a plain window of a larger 2-D
        plane on the CPU, else None."""
        base = b._base
        if base is None or base.device.type != "cpu" or base.dim() != 2 or not base.is_contiguous() \
                or base.dtype != torch.float64 or b.dtype != torch.float64 or tuple(b.stride()[-2:]) != base.stride():
            return None
        oy, ox = divmod(b.storage_offset() - base.storage_offset(), base.stride(0))
        h, w = b.shape[-2], b.shape[-1]
        if oy + h > base.shape[0] or ox + w > base.shape[1]:
            return None
        if self._ref is None or self._ref() is not base or self._version != base._version:
            H, W = base.shape
            if min(H, W) < WINDOW:
                return None
            maps = torch.empty((H, 2, W), dtype=base.dtype)
            maps[:, 0] = base
            torch.mul(base, base, out=maps[:, 1])
            self._maps = _shifted_sum(_shifted_sum(maps, 0, H - WINDOW + 1), 2, W - WINDOW + 1).unbind(1)
            self._ref, self._version = weakref.ref(base), base._version
        out_h, out_w = h - WINDOW + 1, w - WINDOW + 1
        return tuple(m[oy:oy + out_h, ox:ox + out_w] for m in self._maps)


_PLANES = threading.local()  # per thread: the pipeline's helper threads score images of their own


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0, block_rows: int = 128, band_rows: int = 32) -> float:
    """Mean SSIM of two single-channel planes (any leading dims of size 1), float64.

    The SSIM map is summed in blocks of ``block_rows`` output rows (``total``: the sum torch computes with the
    configured intra-op threads), and each block is filtered and combined in bands of ``band_rows`` rows so that a
    band's intermediates stay in cache: 2-3x faster than filtering a whole 128-row block at once (measured on
    B100/Set14-sized planes). When ``b`` is a window of a larger plane (the HR of one scale of an image), that plane's
    statistics are filtered once for every window (``_PlaneStatistics``). Every map value is the same chain of
    multiply-adds whatever the band or the window, so neither changes a bit of the result; the block size sets the
    summation order (~1e-16).
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    with one_thread():
        x = a.double().reshape(a.shape[-2], a.shape[-1])
        y = b.double().reshape(b.shape[-2], b.shape[-1])
        h, w = x.shape
        if min(h, w) < WINDOW:
            return math.nan
        c1 = (0.01 * peak) ** 2
        c2 = (0.03 * peak) ** 2
        out_h, out_w = h - WINDOW + 1, w - WINDOW + 1
        planes = getattr(_PLANES, "stats", None) or _PlaneStatistics()
        _PLANES.stats = planes
        hr = planes.window(y) if x.device.type == "cpu" else None
        # (H, k, W): the rows of the maps to filter side by side, so one row shift moves all of them
        if hr is None:
            maps = torch.empty((h, 5, w), dtype=x.dtype, device=x.device)
            maps[:, 0], maps[:, 1] = x, y
            torch.mul(x, x, out=maps[:, 2])
            torch.mul(y, y, out=maps[:, 3])
            torch.mul(x, y, out=maps[:, 4])
        else:
            maps = torch.empty((h, 3, w), dtype=x.dtype, device=x.device)
            maps[:, 0] = x
            torch.mul(x, x, out=maps[:, 1])
            torch.mul(x, y, out=maps[:, 2])
        if x.device.type != "cpu":
            block_rows = band_rows = out_h  # one launch per step beats cache blocking on a GPU
        ratio = torch.empty((min(block_rows, out_h), out_w), dtype=x.dtype, device=x.device)
        total_ = torch.zeros((), dtype=torch.float64, device=x.device)
        for r0 in range(0, out_h, block_rows):
            n = min(block_rows, out_h - r0)
            for b0 in range(0, n, band_rows):
                m = min(band_rows, n - b0)
                rows = _shifted_sum(maps[r0 + b0 : r0 + b0 + m + WINDOW - 1], 0, m)
                filtered = _shifted_sum(rows, 2, out_w).unbind(1)
                if hr is None:
                    mu1, mu2, xx, yy, xy = filtered
                else:  # the plane's statistics are shared: read, never written
                    mu1, xx, xy = filtered
                    mu2, yy = (t[r0 + b0 : r0 + b0 + m] for t in hr)
                mu12 = mu1 * mu2
                mu1.square_()
                mu2 = mu2 * mu2
                num = (2 * mu12 + c1).mul_(xy.sub_(mu12).mul_(2).add_(c2))
                den = (mu1 + mu2 + c1).mul_(xx.sub_(mu1).add_(torch.sub(yy, mu2)).add_(c2))
                torch.div(num, den, out=ratio[b0 : b0 + m])
            total_ += total(ratio[:n])
        return (total_ / (out_h * out_w)).item()


class SSIM(Metric):
    info = MetricInfo(
        name="ssim", higher_is_better=True, lower=-1.0, upper=1.0, view="y_ssim", decimals=4,
        description="Wang et al. ssim_index: Gaussian 11x11 sigma 1.5, valid windows, on the protocol's luma",
    )

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        return ssim(sr, hr)
