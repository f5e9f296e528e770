"""Metric registry. Built-ins load lazily by ``module:attr``; third parties use the ``sr_bench.metrics`` entry points;
pyiqa's metrics are resolved by name, ``pyiqa:NAME`` (``sr_bench.metrics.pyiqa_bridge``, docs/pyiqa.md).

A metric's registered name is its row column (``sr_bench.store.schema.row_schema``), so a plugin's ``info.name``
must equal its entry-point name, and neither may shadow a built-in or another plugin.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import get_args

from sr_bench.errors import UserError, closest, unknown
from sr_bench.metrics.base import Metric, MetricInfo, MetricUnavailable, View
from sr_bench.metrics.pyiqa_bridge import PyiqaMetric, canonical, info, source

__all__ = ["Metric", "MetricInfo", "MetricUnavailable", "create_metric", "is_builtin", "is_pyiqa", "list_metrics",
           "metric_column", "metric_info", "metric_options", "metric_source", "parse_metric_opts", "remember_infos"]

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


metric_column = canonical  # the row column a metric name writes: ``pyiqa:ms_ssim`` -> ``pyiqa_ms_ssim``


def metric_source(name: str, options: dict | None = None) -> str:
    """``built-in``, or the entry point and the distribution (name, version) that provides a plugin metric, or pyiqa's
    version with the metric and its options (pyiqa's defaults updated by ``options``)."""
    return source(name, options) if is_pyiqa(name) else _entry(name).source


def parse_metric_opts(pairs) -> dict:
    """``("pyiqa:psnr.crop_border=4", ...)`` -> ``{"pyiqa_psnr.crop_border": 4}``: METRIC.KEY=VALUE, the metric by
    either spelling (stored as its column), the value typed as ``--model-opt`` types it (``models/options.py``)."""
    from sr_bench.models.options import parse_value

    out: dict = {}
    for pair in pairs:
        target, sep, text = pair.partition("=")
        metric, dot, key = target.strip().rpartition(".")  # a metric name has no dot; an option name neither
        if not sep or not dot or not metric or not key.strip():
            raise UserError(f"bad --metric-opt {pair!r}: write METRIC.KEY=VALUE, e.g. pyiqa:psnr.crop_border=4")
        name = f"{metric_column(metric)}.{key.strip()}"
        if name in out:
            raise UserError(f"--metric-opt {name} is given twice; give each option once")
        try:
            out[name] = parse_value(text)
        except UserError as e:
            raise UserError(str(e).replace("--model-opt", "--metric-opt")) from None
    return out


def metric_options(column: str, opts) -> dict:
    """The options of ``opts`` ({"METRIC.KEY": value}, as ``parse_metric_opts`` makes) that go to metric ``column``."""
    return {key.rpartition(".")[2]: v for key, v in dict(opts or {}).items() if key.rpartition(".")[0] == column}


def check_metric_opts(opts, metrics) -> None:
    """Each option is addressed to a metric of the run (``metrics``: row columns) that takes options."""
    for key in dict(opts or {}):
        column = key.rpartition(".")[0]
        if column not in metrics:
            near = closest(column, metrics, n=1)
            hint = f"did you mean {near[0]}?" if near else f"metrics of this run: {', '.join(metrics)}"
            raise UserError(f"--metric-opt {key}=... is addressed to {column!r}, which is not in --metrics; {hint}")
        if not is_pyiqa(column):
            raise UserError(f"metric {column!r} takes no options (--metric-opt {key}=...); only pyiqa's metrics do, "
                            "e.g. --metric-opt pyiqa:psnr.crop_border=4")


# metric infos of pyiqa columns recorded in run.json, for reading a run where pyiqa is not installed
_RECORDED: dict[str, MetricInfo] = {}


def remember_infos(recorded: dict | None) -> None:
    """Keep the pyiqa metrics' ``metric_info`` of a run's run.json, for ``metric_info`` to fall back on when pyiqa
    cannot be imported here (the direction and range are pyiqa's metadata, which the run recorded)."""
    for name, fields in (recorded or {}).items():
        if not is_pyiqa(name) or not isinstance(fields, dict):
            continue
        with contextlib.suppress(TypeError, ValueError):
            known = {f.name for f in dataclasses.fields(MetricInfo)}
            _RECORDED[name] = MetricInfo(**{k: (float(v) if k in ("lower", "upper") else v)
                                            for k, v in fields.items() if k in known})


def _entry(name: str) -> _Entry:
    entries = _entries()
    if name not in entries:
        err = unknown("metric", name, entries)
        raise UserError(f"{err} (a plugin metric is found once its package, with an entry point in group {GROUP}, "
                        "is installed)")
    return entries[name]


def _load_class(name: str) -> type[Metric]:
    entry = _entry(name)
    try:
        cls = EntryPoint(name=name, value=entry.target, group=GROUP).load()
    except Exception as e:  # a broken plugin is the plugin's fault: one line, naming it
        raise UserError(f"metric {name!r} ({entry.source}) failed to load: {type(e).__name__}: {e}") from None
    if not is_builtin(name):
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


def create_metric(name: str, options: dict | None = None) -> Metric:
    """Metric ``name``; ``options`` (pyiqa metrics only) over its defaults."""
    if is_pyiqa(name):
        return PyiqaMetric(name, options)
    if options:
        raise UserError(f"metric {name!r} takes no options; only pyiqa's metrics do (--metric-opt)")
    cls = _load_class(name)
    try:
        return cls()
    except Exception as e:
        raise UserError(f"metric {name!r} ({metric_source(name)}) failed to start: {type(e).__name__}: {e}") from None


def metric_info(name: str) -> MetricInfo:
    if is_pyiqa(name):
        try:
            return info(name)
        except UserError:  # pyiqa not installed here: what the run recorded, if it is a column of a run read
            if canonical(name) in _RECORDED:
                return _RECORDED[canonical(name)]
            raise
    return _load_class(name).info
