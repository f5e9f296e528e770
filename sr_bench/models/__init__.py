"""Models: registry, the Upscaler interface, architectures and decimal-scale strategies."""

from sr_bench.models.interface import ScaleSupport, Upscaler
from sr_bench.models.registry import create_model, list_models, load_plugin, register_model

__all__ = ["ScaleSupport", "Upscaler", "create_model", "list_models", "load_plugin", "register_model"]
