"""sr_bench: benchmark single-image super-resolution at integer and decimal scales.

The names plugins need are importable from here (``from sr_bench import Upscaler, ScaleSupport, LumaUpscaler,
read_weights, register_model``); they load on first use so that ``import sr_bench`` stays cheap.
"""

import os

__version__ = "0.1.0"

# Before anything loads torch (and with it libgomp, which reads this once): after each parallel region torch's
# OpenMP threads otherwise spin on their cores for ~300,000 iterations, and on a machine with few cores they take
# them from the threads that run the C kernels (sr_bench.native) between torch ops. 1,000 is libgomp's own value for
# threads that outnumber the cores. Measured on 2 cores (Urban100 x 6 scales, bicubic, PSNR + SSIM): 16.1 s -> 12.0 s,
# the same rows (README, Development). A value set by the user wins; torch imported before sr_bench keeps its default.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

_LAZY = {
    "Upscaler": "sr_bench.models.interface",
    "ScaleSupport": "sr_bench.models.interface",
    "LumaUpscaler": "sr_bench.models.luma",  # Y-channel networks in the authors' MATLAB colour pipeline
    "luma_pipeline": "sr_bench.models.luma",
    "read_weights": "sr_bench.models.weights",  # checkpoints: one file, or one per scale
    "load_weights": "sr_bench.models.weights",
    "WeightsFile": "sr_bench.models.weights",
    "UserError": "sr_bench.errors",
    "register_model": "sr_bench.models.registry",
    "create_model": "sr_bench.models.registry",
    "list_models": "sr_bench.models.registry",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sr_bench' has no attribute {name!r}")
