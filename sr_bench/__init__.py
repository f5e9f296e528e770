"""sr_bench: benchmark single-image super-resolution at integer and decimal scales.

The names plugins need are importable from here (``from sr_bench import Upscaler, ScaleSupport, LumaUpscaler,
read_weights, register_model``); they load on first use so that ``import sr_bench`` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {name: module for module, names in {
    "sr_bench.models.interface": ("Upscaler", "ScaleSupport"),
    "sr_bench.models.luma": ("LumaUpscaler", "luma_pipeline"),  # Y networks in the authors' MATLAB colour pipeline
    "sr_bench.models.weights": ("read_weights", "load_weights", "WeightsFile"),  # checkpoints: one or one per scale
    "sr_bench.errors": ("UserError",),
    "sr_bench.metrics.base": ("Metric", "MetricInfo", "MetricUnavailable"),  # metric plugins
    "sr_bench.models.registry": ("register_model", "create_model", "list_models"),
}.items() for name in names}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sr_bench' has no attribute {name!r}")
