"""MATLAB ``imresize(..., 'bicubic')`` (``imresize.m``, R2013+) in torch, for any exact scale and for explicit output
sizes. The semantics reproduced, and the two departures on purpose (coordinates from the exact fraction of the scale;
no rounding between the axis passes, so callers round once at the end), are in docs/protocols.md ("Shared
definitions", "Exact decimal sizes"). As in MATLAB, all-zero tap columns are dropped and rows go first on a tie.
"""

from __future__ import annotations

import functools
import math
import warnings
from fractions import Fraction

import numpy as np
import torch


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


@functools.lru_cache(maxsize=512)
def contributions(in_len: int, out_len: int, scale: Fraction) -> tuple[np.ndarray, np.ndarray]:
    """Tap weights (out_len, P) float64 and 0-based input indices (out_len, P) for one axis.

    All coordinates are exact rationals over a common denominator, so the only rounding is the final division.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"cannot resize an axis of length {in_len} to {out_len}")
    inv = Fraction(1) / Fraction(scale)
    n, d = inv.numerator, inv.denominator  # 1/scale = n/d
    x = np.arange(1, out_len + 1, dtype=np.int64)
    # u = x*n/d + (1 - n/d)/2 = (2*x*n + d - n) / (2d)
    u_num = 2 * x * n + d - n
    den = 2 * d
    shrink = scale < 1
    width = Fraction(4) * inv if shrink else Fraction(4)  # downscaling antialiases: the kernel stretched by 1/scale
    # left = floor(u - width/2), exactly
    half = width / 2
    left = np.floor_divide(u_num * half.denominator - half.numerator * den, den * half.denominator)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.int64)[None, :]  # 1-based, as in MATLAB
    dist_num = u_num[:, None] - idx * den  # u - idx = dist_num / den
    if shrink:
        # h(x) = scale * cubic(scale * x); scale * (dist_num/den) = dist_num / (den * n / d) = dist_num / (2n)
        w = float(scale) * _cubic(dist_num / float(2 * n))
    else:
        w = _cubic(dist_num / float(den))
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx0 = mirror[np.mod(idx - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return np.ascontiguousarray(w[:, keep]), np.ascontiguousarray(idx0[:, keep])


@functools.lru_cache(maxsize=256)
def _matrix(in_len: int, out_len: int, scale: Fraction, device: str, dtype: torch.dtype) -> torch.Tensor:
    """The (out_len, in_len) resampling matrix of one axis: row i has output pixel i's weights at its taps' columns
    (mirrored taps add up). On CPU it is sparse CSR: the matrix is banded (a handful of taps a row), and CSR matmul is
    3-10x faster than a dense one there. On CUDA dense matmul is faster still."""
    w, idx = contributions(in_len, out_len, scale)
    rows = np.repeat(np.arange(w.shape[0]), w.shape[1])
    coo = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, idx.ravel()])), torch.from_numpy(w.ravel()), (w.shape[0], in_len),
        check_invariants=False,  # indices are in range by construction
    ).coalesce()
    if torch.device(device).type != "cpu":
        return coo.to_dense().to(device=device, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return coo.to(dtype).to_sparse_csr()


def output_size(in_hw: tuple[int, int], scale: Fraction) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ceil(scale * in), exact."""
    s = Fraction(scale)
    return math.ceil(in_hw[0] * s), math.ceil(in_hw[1] * s)


def imresize(x: torch.Tensor, scale: Fraction | int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """MATLAB bicubic ``imresize`` (antialiased when shrinking, as MATLAB's default) of the last two axes of ``x``
    (``(..., H, W)``, any float dtype, any device).

    Give ``scale`` (an exact Fraction; ints are fine) for ``imresize(A, scale)``: output ``ceil(scale*in)``. Give only
    ``size`` for ``imresize(A, [h w])``: per-axis scale ``out/in``. Give both to keep the scale's coordinate mapping
    but return ``size`` pixels (the first rows/columns of the scale-mapped output; a crop or extension of it).
    Values are not rounded or clipped.
    """
    if not torch.is_floating_point(x):
        raise TypeError("imresize expects a floating-point tensor; convert uint8 with .double() first")
    if x.dim() < 2:
        raise ValueError("imresize expects (..., H, W)")
    if torch.is_autocast_enabled(x.device.type):
        # inside a model forward under --precision bf16/fp16: a resize is no matmul to speed up but a filter to
        # keep exact, so it runs as autocast runs its float32 ops (half inputs upcast; float64 stays float64)
        with torch.autocast(x.device.type, enabled=False):
            return imresize(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x, scale, size)
    in_h, in_w = x.shape[-2], x.shape[-1]
    if scale is None and size is None:
        raise ValueError("give scale or size")
    if scale is not None:
        s = Fraction(scale)
        if s <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (s, s)
        out = size if size is not None else output_size((in_h, in_w), s)
    else:
        out = (int(size[0]), int(size[1]))
        scales = (Fraction(out[0], in_h), Fraction(out[1], in_w))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"output size {out} is empty")
    for axis, n, s in sorted([(-2, out[0], scales[0]), (-1, out[1], scales[1])], key=lambda a: a[2]):
        # sorted is stable: rows first on ties, as MATLAB. One axis: its matrix times the image with that axis first
        moved = x.movedim(axis, 0)
        y = _matrix(moved.shape[0], n, s, str(x.device), x.dtype) @ moved.reshape(moved.shape[0], -1)
        x = y.reshape(n, *moved.shape[1:]).movedim(0, axis)
    return x
