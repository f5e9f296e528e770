"""The SSIM map kernel (``native/ssim_map.c``), bound and probed against the torch operations it repeats
(``torch_rows``): ``sr_bench.metrics.ssim`` runs the kernel when ``kernel()`` returns it, those operations otherwise.
"""

from __future__ import annotations

import ctypes

import torch

from sr_bench import native

WINDOW = 11
_P, _N, _D = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
_ARGTYPES = [_P, _N, _P, _N, _N, _N, _N, _N, ctypes.POINTER(_D), _D, _D, _P, _P]


def kernel():
    """``srb_ssim_rows(x, xs, y, ys, h, w, r0, n, taps, c1, c2, out, work)`` once it has passed its probe, or None
    (``unavailable()`` says why)."""
    return native.kernel("ssim_map", lambda lib: native.declare(lib, "srb_ssim_rows", _ARGTYPES, ctypes.c_int), _probe)


def unavailable() -> str:
    kernel()
    return native.unavailable("ssim_map")


def _probe(fn) -> str:
    """"" when the kernel's map equals the torch operations' map bit for bit on planes whose rows end at every
    vector tail; otherwise the first plane that differs."""
    gen = torch.Generator().manual_seed(0)
    taps = torch.rand(WINDOW, generator=gen, dtype=torch.float64)
    taps /= taps.sum()
    taps_c = (ctypes.c_double * WINDOW)(*taps.tolist())
    c1, c2 = 6.5025, 58.5225
    for h, w in ((11, 11), (12, 14), (13, 19), (20, 27), (15, 44)):
        x = (torch.rand(h, w, generator=gen, dtype=torch.float64) - 0.3) * 300
        y = x * 0.7 + torch.randn(h, w, generator=gen, dtype=torch.float64) * 40
        out_h, out_w = h - WINDOW + 1, w - WINDOW + 1
        ours = torch.empty(out_h, out_w, dtype=torch.float64)
        work = torch.empty(5 * w, dtype=torch.float64)
        if fn(x.data_ptr(), w, y.data_ptr(), w, h, w, 0, out_h, taps_c, c1, c2, ours.data_ptr(), work.data_ptr()):
            return f"refused a {h}x{w} plane"
        if not torch.equal(ours, _torch_map(x, y, taps.tolist(), c1, c2)):
            return f"the map of a {h}x{w} plane"
    return ""


def _torch_map(x: torch.Tensor, y: torch.Tensor, taps: list[float], c1: float, c2: float) -> torch.Tensor:
    return torch_rows(stat_maps(x, y), x.shape[0] - WINDOW + 1, taps, c1, c2)


def stat_maps(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(H, 5, W): the rows of x, y, x*x, y*y and x*y side by side, so one row shift moves all five maps."""
    maps = torch.empty((x.shape[0], 5, x.shape[1]), dtype=x.dtype, device=x.device)
    maps[:, 0], maps[:, 1] = x, y
    torch.mul(x, x, out=maps[:, 2])
    torch.mul(y, y, out=maps[:, 3])
    torch.mul(x, y, out=maps[:, 4])
    return maps


def torch_rows(maps: torch.Tensor, n: int, taps, c1: float, c2: float) -> torch.Tensor:
    """``n`` rows of the 'valid' SSIM map from ``n + 10`` rows of ``stat_maps``, filtered with the Gaussian ``taps``."""
    rows = _shifted_sum(maps, 0, n, taps)
    mu1, mu2, xx, yy, xy = _shifted_sum(rows, 2, maps.shape[2] - WINDOW + 1, taps).unbind(1)
    mu12 = mu1 * mu2
    mu1.square_()
    mu2.square_()
    num = (2 * mu12 + c1).mul_(xy.sub_(mu12).mul_(2).add_(c2))
    den = (mu1 + mu2 + c1).mul_(xx.sub_(mu1).add_(yy.sub_(mu2)).add_(c2))
    return num.div_(den)


def _shifted_sum(src: torch.Tensor, dim: int, n: int, taps) -> torch.Tensor:
    """'valid' correlation with ``taps`` along ``dim``: eleven shifted multiply-adds (n outputs)."""
    acc = src.narrow(dim, 0, n) * taps[0]
    for k in range(1, WINDOW):
        acc.add_(src.narrow(dim, k, n), alpha=taps[k])
    return acc
