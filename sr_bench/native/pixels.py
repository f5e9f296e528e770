"""One-pass versions of the per-pixel conversions in ``sr_bench.imaging`` (``native/pixels.c``).

Each function returns what its torch formulation returns, the same bits laid out the same way (the layout decides
the order of every later sum), or None when it does not apply (no kernel, not a CPU float64 tensor, autograd
watching, a layout it does not read); the caller then runs the torch formulation (``torch_luma_*`` for the lumas).
"""

from __future__ import annotations

import ctypes

import torch

from sr_bench import native
from sr_bench.threads import configured, is_dense

MIN_PART = 1 << 16  # values below which a second thread costs more than it saves
_P, _L, _D = ctypes.c_void_p, ctypes.c_long, ctypes.POINTER(ctypes.c_double)
_SIGNATURES = {
    "srb_round_u8": [_P, _P, _L, _L],
    "srb_unit_round_u8": [_P, _P, _L, _L],
    "srb_planes": [_P, _L, _L, _L, _L, ctypes.c_int, _P, _L, _L, _L, _P, _L, _L, _D, _P, _L, _L, _D, _L, _L],
}


def _kernels() -> dict | None:
    return native.kernel("pixels", lambda lib: {s: native.declare(lib, s, a) for s, a in _SIGNATURES.items()},
                         _probe)


def unavailable() -> str:
    _kernels()
    return native.unavailable("pixels")


def _applies(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float64 and x.numel() > 0
            and not (x.requires_grad and torch.is_grad_enabled()))


def round_u8(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor | None:
    """``torch.floor(x + 0.5).clamp_(0, 255)``, into ``out`` when given (``x`` itself, or laid out as ``x``)."""
    return _per_value(x, "srb_round_u8", out)


def unit_round_u8(x: torch.Tensor) -> torch.Tensor | None:
    """``(x * 255.0).add_(0.5).floor_().clamp_(0, 255)``."""
    return _per_value(x, "srb_unit_round_u8")


def _per_value(x: torch.Tensor, name: str, out: torch.Tensor | None = None, fns: dict | None = None):
    fns = fns or (_kernels() if _applies(x) and is_dense(x) else None)
    fn = fns[name] if fns else None
    if fn is None or (out is not None and (out.shape != x.shape or out.stride() != x.stride()
                                           or out.dtype != x.dtype or out.device != x.device)):
        return None
    if out is None:
        out = torch.empty_like(x)  # a dense input's strides: the layout torch's element-wise result has
    src, dst = x.data_ptr(), out.data_ptr()
    native.split(x.numel(), MIN_PART, lambda i0, i1: fn(src, dst, i0, i1), configured())
    return out


def luma_u8(rgb: torch.Tensor, t: tuple[float, float, float]) -> torch.Tensor | None:
    """``color.rgb2y_matlab_uint8`` with the coefficients ``t`` (already divided by 255)."""
    planes = _planes(rgb, unit=False, lin=None, u8=t)
    return None if planes is None else planes[2]


def luma_linear(rgb: torch.Tensor, c: tuple[float, float, float]) -> torch.Tensor | None:
    """``color.rgb2y_linear`` with the coefficients ``c``."""
    planes = _planes(rgb, unit=False, lin=c, u8=None)
    return None if planes is None else planes[1]


def unit_round_u8_with_lumas(x: torch.Tensor, c: tuple[float, float, float], t: tuple[float, float, float]):
    """(``unit_round_u8(x)``, ``luma_linear`` of it, ``luma_u8`` of it) from one read of ``x`` (3, H, W); None
    when it does not apply."""
    return _planes(x, unit=True, lin=c, u8=t) if is_dense(x) else None


def _planes(rgb: torch.Tensor, unit: bool, lin, u8, fns: dict | None = None):
    if not _applies(rgb) or rgb.dim() < 3 or rgb.shape[-3] != 3 or any(n != 1 for n in rgb.shape[:-3]):
        return None
    fns = fns or _kernels()
    if fns is None:
        return None
    fn = fns["srb_planes"]
    r = rgb.select(-3, 0)
    h, w = r.shape[-2:]
    # each output laid out as torch lays out the op it replaces: an element-wise result takes its input's order
    q = torch.empty_like(rgb) if unit else None
    ylin = torch.empty_like(r) if lin is not None else None
    yu8 = torch.empty_like(r) if u8 else None
    dims = [(n, rgb.stride(d), *(0 if t is None else t.stride(d) for t in (q, ylin, yu8)))
            for n, d in ((h, -2), (w, -1))]
    if h > 1 and w > 1 and dims[0][1] < dims[1][1]:  # visit the source's smaller stride innermost
        dims.reverse()
    (n_out, sh, qh, lh, uh), (n_in, sw, qw, lw, uw) = dims
    args = (rgb.data_ptr(), rgb.stride(-3), sh, sw, n_in, int(unit),
            _ptr(q), q.stride(-3) if unit else 0, qh, qw,
            _ptr(ylin), lh, lw, (ctypes.c_double * 3)(*(lin or (0.0, 0.0, 0.0))),
            _ptr(yu8), uh, uw, (ctypes.c_double * 3)(*(u8 or (0.0, 0.0, 0.0))))
    native.split(n_out, max(1, MIN_PART // max(1, n_in)), lambda r0, r1: fn(*args, r0, r1), configured())
    return (q, None if ylin is None else ylin.unsqueeze(-3), None if yu8 is None else yu8.unsqueeze(-3))


def _ptr(t: torch.Tensor | None) -> int | None:
    return t.data_ptr() if t is not None else None


def _probe(fns: dict) -> str:
    """"" when each kernel gives the bits of the torch operations ``imaging/quantize.py`` (written once more here: it
    imports this module) and ``torch_luma_*`` run on rounding ties, out-of-range values and random colours; otherwise
    the first that differs."""
    gen = torch.Generator().manual_seed(0)
    ties = torch.arange(-3, 260, dtype=torch.float64) + 0.5
    x = torch.cat([ties, ties / 255.0, torch.rand(3 * 17 * 23 - 2 * ties.numel(), generator=gen,
                                                  dtype=torch.float64) * 1.2 - 0.1])
    x = x[torch.randperm(x.numel(), generator=gen)].reshape(3, 17, 23)
    rgb = torch.randint(0, 256, (3, 17, 23), generator=gen).double()
    c, t = (0.25678906, 0.50412891, 0.09790625), (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
    unit = (x * 255.0).add_(0.5).floor_().clamp_(0, 255)
    checks = {
        "srb_round_u8": (_per_value(x * 255, "srb_round_u8", None, fns), torch.floor(x * 255 + 0.5).clamp_(0, 255)),
        "srb_unit_round_u8": (_per_value(x, "srb_unit_round_u8", None, fns), unit),
        "srb_planes": (torch.cat(_planes(x, unit=True, lin=c, u8=t, fns=fns)),
                       torch.cat([unit, torch_luma_linear(unit, c), torch_luma_u8(unit, t)])),
        "srb_planes, integers": (torch.cat(_planes(rgb, unit=False, lin=c, u8=t, fns=fns)[1:]),
                                 torch.cat([torch_luma_linear(rgb, c), torch_luma_u8(rgb, t)])),
    }
    for name, (ours, torchs) in checks.items():
        if not torch.equal(ours, torchs):
            return name
    return ""


def torch_luma_linear(rgb: torch.Tensor, c) -> torch.Tensor:
    """``color.rgb2y_linear`` in torch, where the kernel does not run."""
    r, g, b = rgb.unbind(-3)
    return (r * c[0]).add_(g, alpha=c[1]).add_(b, alpha=c[2]).unsqueeze(-3)


def torch_luma_u8(rgb: torch.Tensor, t) -> torch.Tensor:
    """``color.rgb2y_matlab_uint8`` in torch, where the kernel does not run: MATLAB's ``imlincomb`` order (T1*R + T2*G
    + T3*B + offset, in double), which is part of the definition: 194 of the 2^24 colours sit exactly on a .5 tie."""
    y = imlincomb(rgb, t, 16.0)
    y += 0.5  # separately: adding 16.5 at once could absorb the last bit that decides a tie
    return y.floor_().clamp_(0, 255).unsqueeze(-3)  # Y >= 16 > 0: half away from zero is floor(y + .5)


def imlincomb(x: torch.Tensor, t, offset: float) -> torch.Tensor:
    """``t . x + offset`` over the 3 channels of ``x`` in MATLAB ``imlincomb``'s order (T1*X1 + T2*X2 + T3*X3 +
    offset, in double); in-place ops keep that order while saving image-sized temporaries."""
    a, b, c = x.unbind(-3)
    y = a * t[0]
    y += b * t[1]
    y += c * t[2]
    y += offset
    return y
