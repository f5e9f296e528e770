"""Metric registry. Built-ins load lazily by ``module:attr``; third parties use the ``sr_bench.metrics`` entry points."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from sr_bench.errors import unknown
from sr_bench.metrics.base import Metric, MetricInfo, MetricUnavailable

__all__ = ["Metric", "MetricInfo", "MetricUnavailable", "create_metric", "list_metrics", "metric_info"]

_BUILTIN = {
    "psnr": "sr_bench.metrics.psnr:PSNR",
    "ssim": "sr_bench.metrics.ssim:SSIM",
    "lpips": "sr_bench.metrics.lpips:LPIPS",
}
DEFAULT_METRICS = ("psnr", "ssim", "lpips")


def _entries() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group="sr_bench.metrics"):
        found.setdefault(ep.name, ep.value)
    return found


def list_metrics() -> list[str]:
    return sorted(_entries())


def _load_class(name: str) -> type[Metric]:
    entries = _entries()
    if name not in entries:
        raise unknown("metric", name, entries)
    module, _, attr = entries[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def create_metric(name: str) -> Metric:
    return _load_class(name)()


def metric_info(name: str) -> MetricInfo:
    return _load_class(name).info
