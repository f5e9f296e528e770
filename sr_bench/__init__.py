"""sr_bench: benchmark single-image super-resolution at integer and decimal scales.

The names plugins need are importable from here (``from sr_bench import Upscaler, ScaleSupport, LumaUpscaler,
read_weights, register_model``); they load on first use so that ``import sr_bench`` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    "Upscaler": "sr_bench.models.interface",
    "ScaleSupport": "sr_bench.models.interface",
    "LumaUpscaler": "sr_bench.models.luma",  # Y-channel networks in the authors' MATLAB colour pipeline
    "luma_pipeline": "sr_bench.models.luma",
    "read_weights": "sr_bench.models.weights",  # checkpoints: one file, or one per scale
    "load_weights": "sr_bench.models.weights",
    "WeightsFile": "sr_bench.models.weights",
    "UserError": "sr_bench.errors",
    "Metric": "sr_bench.metrics.base",  # metric plugins
    "MetricInfo": "sr_bench.metrics.base",
    "MetricUnavailable": "sr_bench.metrics.base",
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
