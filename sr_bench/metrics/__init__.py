"""Metric registry. Built-ins load lazily by ``module:attr``; third parties use the ``sr_bench.metrics`` entry points.

A metric's registered name is its row column (``sr_bench.store.schema.row_schema``), so a plugin's ``info.name``
must equal its entry-point name, and neither may shadow a built-in or another plugin.

pyiqa's metrics are a third source, resolved by name rather than listed: ``pyiqa:NAME`` (column ``pyiqa_NAME``, see
``sr_bench.metrics.pyiqa_bridge``) when pyiqa is installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import get_args

from sr_bench.errors import UserError, unknown
from sr_bench.metrics.base import Metric, MetricInfo, MetricUnavailable, View

__all__ = ["Metric", "MetricInfo", "MetricUnavailable", "create_metric", "is_builtin", "is_pyiqa", "list_metrics",
           "metric_column", "metric_info", "metric_source"]

_BUILTIN = {
    "psnr": "sr_bench.metrics.psnr:PSNR",
    "ssim": "sr_bench.metrics.ssim:SSIM",
    "lpips": "sr_bench.metrics.lpips:LPIPS",
}
DEFAULT_METRICS = ("psnr", "ssim", "lpips")
GROUP = "sr_bench.metrics"


@dataclass(frozen=True)
class _Entry:
    target: str  # module:attr
    source: str  # where it comes from, for errors and provenance


def _entries() -> dict[str, _Entry]:
    found = {n: _Entry(t, "built-in") for n, t in _BUILTIN.items()}
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        source = f"entry point {ep.name} = {ep.value}" + (f" of {dist.name} {dist.version}" if dist else "")
        if ep.name in found and found[ep.name].target != ep.value:
            raise UserError(f"metric {ep.name!r} is registered twice: {found[ep.name].source} and {source}; rename "
                            f"one of the entry points in group {GROUP}")
        found.setdefault(ep.name, _Entry(ep.value, source))
    return found


def list_metrics() -> list[str]:
    return sorted(_entries())


def is_builtin(name: str) -> bool:
    return name in _BUILTIN


def is_pyiqa(name: str) -> bool:
    """Whether ``name`` is a pyiqa metric's (``pyiqa:NAME`` or its column ``pyiqa_...``), known or not."""
    return name.startswith(("pyiqa:", "pyiqa_"))


def metric_column(name: str) -> str:
    """The row column a metric name writes: ``pyiqa:ms_ssim`` -> ``pyiqa_ms_ssim``; other names as given."""
    if not is_pyiqa(name):
        return name
    from sr_bench.metrics.pyiqa_bridge import canonical

    return canonical(name)


def metric_source(name: str) -> str:
    """``built-in``, or the entry point and the distribution (name, version) that provides a plugin metric, or pyiqa's
    version with the metric and its options."""
    if is_pyiqa(name):
        from sr_bench.metrics.pyiqa_bridge import source

        return source(name)
    return _entry(name).source


def _entry(name: str) -> _Entry:
    entries = _entries()
    if name not in entries:
        err = unknown("metric", name, entries)
        raise UserError(f"{err} (a plugin metric is found once its package, with an entry point in group {GROUP}, "
                        "is installed)")
    return entries[name]


def _load_class(name: str) -> type[Metric]:
    entry = _entry(name)
    if entry.source == "built-in":
        module, _, attr = entry.target.partition(":")
        return getattr(importlib.import_module(module), attr)
    try:
        cls = EntryPoint(name=name, value=entry.target, group=GROUP).load()
    except Exception as e:  # a broken plugin is the plugin's fault: one line, naming it
        raise UserError(f"metric {name!r} ({entry.source}) failed to load: {type(e).__name__}: {e}") from None
    _check_plugin(name, cls, entry.source)
    return cls


def _check_plugin(name: str, cls, source: str) -> None:
    from sr_bench.store.schema import check_metric_name

    def bad(why: str) -> UserError:
        return UserError(f"metric {name!r} ({source}): {why}")

    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise bad("is not a subclass of sr_bench.metrics.Metric")
    info = getattr(cls, "info", None)
    if not isinstance(info, MetricInfo):
        raise bad("has no `info = MetricInfo(...)` class attribute")
    why = check_metric_name(name)
    if why:
        raise bad(f"its name becomes a row column, and {why}")
    if info.name != name:
        raise bad(f"declares info.name {info.name!r}; it must equal the entry-point name {name!r} (the row column)")
    if info.view not in get_args(View):
        raise bad(f"view {info.view!r} is not one of {', '.join(get_args(View))}")
    if not (isinstance(info.decimals, int) and 0 <= info.decimals <= 12) or not info.lower <= info.upper:
        raise bad(f"needs 0 <= decimals <= 12 and lower <= upper (has {info.decimals}, [{info.lower}, {info.upper}])")


def create_metric(name: str) -> Metric:
    if is_pyiqa(name):
        from sr_bench.metrics.pyiqa_bridge import PyiqaMetric

        return PyiqaMetric(name)
    cls = _load_class(name)
    if is_builtin(name):
        return cls()
    try:
        return cls()
    except Exception as e:
        raise UserError(f"metric {name!r} ({metric_source(name)}) failed to start: {type(e).__name__}: {e}") from None


def metric_info(name: str) -> MetricInfo:
    if is_pyiqa(name):
        from sr_bench.metrics.pyiqa_bridge import info

        return info(name)
    return _load_class(name).info
