"""``csr @ dense`` for float64 CPU tensors through the MKL routine torch's own CSR matmul calls, called directly.

torch computes ``m @ b`` (``m`` sparse CSR, ``b`` dense) by zero-filling an output, copying zeros into it once more,
converting ``m``'s indices to 32 bits and handing everything to ``mkl_sparse_d_mm`` (``SparseBlasImpl.cpp``,
``addmm_dense_result``). Here the same MKL function of the same loaded library gets the same arguments (the same
matrix, layout, leading dimensions, alpha 1 and beta 0, from the same thread with the same MKL thread count), so it
runs the same kernel and returns the same bits, without the two extra passes over the output and with the matrix
handle built once per resampling matrix. A probe at first use compares the two on matrices and widths of every
kind the resize makes (among them the narrow widths that take MKL's special kernels) and keeps torch's path unless
every bit agrees; ``tests/test_native.py`` compares them on real layouts. ``SRBENCH_NATIVE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import torch

from sr_bench import native

_OPERATION_NON_TRANSPOSE, _MATRIX_GENERAL, _FILL_LOWER, _DIAG_NON_UNIT = 10, 20, 40, 50
_INDEX_BASE_ZERO, _LAYOUT_ROW_MAJOR, _SUCCESS = 0, 101, 0


class _Descr(ctypes.Structure):  # struct matrix_descr, passed by value
    _fields_ = [("type", ctypes.c_int), ("mode", ctypes.c_int), ("diag", ctypes.c_int)]


_lock = threading.Lock()
_state: dict[str, object] = {}


class CsrHandle:
    """An MKL handle of a CPU float64 CSR matrix; the 32-bit index arrays it points into live as long as it."""

    def __init__(self, lib, m: torch.Tensor):
        self._lib = lib
        self.shape = tuple(m.shape)
        self._crow = m.crow_indices().to(torch.int32)
        self._col = m.col_indices().to(torch.int32)
        self._values = m.values().contiguous()
        self._handle = ctypes.c_void_p()
        status = lib.mkl_sparse_d_create_csr(ctypes.byref(self._handle), _INDEX_BASE_ZERO, self.shape[0],
                                             self.shape[1], self._crow.data_ptr(), self._crow.data_ptr() + 4,
                                             self._col.data_ptr(), self._values.data_ptr())
        if status != _SUCCESS:
            self._handle = None
            raise RuntimeError(f"mkl_sparse_d_create_csr failed with status {status}")

    def __del__(self):
        if getattr(self, "_handle", None):
            self._lib.mkl_sparse_destroy(self._handle)
            self._handle = None

    def matmul(self, b: torch.Tensor) -> torch.Tensor:
        """``m @ b`` for a (k, n) float64 ``b`` (``applies(b)``): a new contiguous (rows, n) tensor."""
        n = b.shape[1]
        # as torch prepares the dense operand: used in place when its rows are contiguous and do not overlap
        # (the leading dimension then its row stride), otherwise copied contiguous
        if not (b.stride(1) == 1 and b.stride(0) >= max(1, n)):
            b = b.contiguous()
        out = torch.empty((self.shape[0], n), dtype=torch.float64)
        status = self._lib.mkl_sparse_d_mm(_OPERATION_NON_TRANSPOSE, 1.0, self._handle,
                                           _Descr(_MATRIX_GENERAL, _FILL_LOWER, _DIAG_NON_UNIT), _LAYOUT_ROW_MAJOR,
                                           b.data_ptr(), n, max(1, b.stride(0)), 0.0, out.data_ptr(), n)
        if status != _SUCCESS:
            raise RuntimeError(f"mkl_sparse_d_mm failed with status {status}")
        return out


def handle(m: torch.Tensor) -> CsrHandle | None:
    """A handle for ``m`` (sparse CSR, float64, CPU), or None when the direct call is unavailable here
    (``unavailable()`` says why)."""
    lib = _library()
    if lib is None or m.layout != torch.sparse_csr or m.dtype != torch.float64 or m.device.type != "cpu" \
            or m.values().numel() == 0 or max(m.shape) >= 2**31:
        return None
    return CsrHandle(lib, m)


def applies(b: torch.Tensor) -> bool:
    """Whether the direct call is available and takes ``b``: a CPU float64 matrix, no autograd watching, small
    enough for MKL's 32-bit sizes."""
    return (b.device.type == "cpu" and b.dtype == torch.float64 and b.dim() == 2 and 0 < b.shape[1]
            and b.numel() < 2**31 and max(b.stride()) < 2**31 and not (b.requires_grad and torch.is_grad_enabled())
            and _library() is not None)


def unavailable() -> str:
    _library()
    return str(_state.get("why", ""))


def forget() -> None:
    """Look again on the next call (tests)."""
    with _lock:
        _state.clear()


def _library():
    with _lock:
        if "lib" not in _state:
            _state["lib"] = _load()
        return _state["lib"]


def _load():
    if os.environ.get(native.ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        _state["why"] = f"{native.ENV_SWITCH}=0"
        return None
    if not torch.backends.mkl.is_available():
        _state["why"] = "this torch is built without MKL"
        return None
    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        lib = ctypes.CDLL(str(path))  # already loaded by torch: this only looks its symbols up
        create, mm, destroy = lib.mkl_sparse_d_create_csr, lib.mkl_sparse_d_mm, lib.mkl_sparse_destroy
    except (OSError, AttributeError) as e:
        _state["why"] = f"MKL's sparse routines are not reachable in {path}: {e}"
        return None
    p, i = ctypes.c_void_p, ctypes.c_int
    create.argtypes, create.restype = [ctypes.POINTER(p), i, i, i, p, p, p, p], i
    mm.argtypes = [i, ctypes.c_double, p, _Descr, i, p, i, i, ctypes.c_double, p, i]
    mm.restype = i
    destroy.argtypes, destroy.restype = [p], i
    why = _probe(lib)
    if why:
        _state["why"] = why
        return None
    return lib


def _probe(lib) -> str:
    """"" when the direct call gives torch's bits on resampling matrices of every kind (shrinking and enlarging,
    integer and decimal factors) times dense operands of narrow and wide widths; otherwise why not (a 64-bit index
    build of MKL, say, reads the 32-bit arrays wrongly)."""
    from fractions import Fraction

    from sr_bench.imaging.resize import _matrix

    gen = torch.Generator().manual_seed(0)
    try:
        for k, scale in ((37, Fraction(10, 27)), (23, Fraction(3, 2)), (9, Fraction(4)), (50, Fraction(1, 4))):
            m = _matrix(k, max(1, int(k * scale)), scale, True, "cpu", torch.float64)
            h = CsrHandle(lib, m)
            for n in (1, 3, 4, 7, 8, 12, 16, 20, 24, 31, 64, 301):
                b = torch.rand(k, n, generator=gen, dtype=torch.float64) * 255
                if not torch.equal(h.matmul(b), m @ b):
                    return f"calling MKL directly gave other bits than torch (k={k}, n={n}); torch's path is used"
    except RuntimeError as e:
        return str(e)
    return ""
