"""A request made live in one process: its models, metrics and protocol on a device (``build_context``).

``Setup`` is the plain, picklable part (the request and where it runs), so every process of a run — this one, a
pool worker, a Ray actor, training validation, ``compare --visual`` — builds its context the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from sr_bench.errors import UserError, unknown
from sr_bench.metrics import (
    DEFAULT_METRICS,
    MetricUnavailable,
    create_metric,
    is_builtin,
    is_pyiqa,
    list_metrics,
    metric_info,
    metric_source,
)
from sr_bench.models import load_plugin
from sr_bench.models.building import build_model, check_model_opts
from sr_bench.models.interface import Upscaler
from sr_bench.protocols import Protocol, get_protocol
from sr_bench.provenance import device_name, package_versions_json, resolve_device
from sr_bench.run.grid import ModelSpec
from sr_bench.run.levers import Levers
from sr_bench.run.memory import load_guard
from sr_bench.run.precision import device_label as precision_label
from sr_bench.run.request import RunRequest


@dataclass(frozen=True)
class Setup:
    """Everything a process needs to rebuild the evaluation (plain, picklable values)."""

    request: RunRequest
    run_id: str
    device: str = "auto"
    threads: int = 1
    max_memory: int | None = None  # --max-memory in bytes (run/memory.py)
    levers: Levers = Levers()  # applied by the processes that evaluate (run/levers.py), not by build_context


@dataclass
class Context:
    """A Setup made live: models, metrics and protocol objects in this process."""

    setup: Setup
    protocol: Protocol
    models: list[tuple[ModelSpec, Upscaler]]
    metrics: dict
    device: torch.device
    device_label: str
    versions: str
    metric_prov: str
    notes: list[str] = field(default_factory=list)
    drift_metric: object = None  # a PSNR for the precision drift when the run's metrics have none

    @property
    def request(self) -> RunRequest:
        return self.setup.request

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The requested metrics (each a row column, also one that could not load)."""
        return DEFAULT_METRICS if self.request.metrics is None else self.request.metrics


def build_context(setup: Setup, extra: tuple[tuple[ModelSpec, Upscaler], ...] = ()) -> Context:
    """The live context of ``setup``; ``extra``: models already built (training validation's network in training)."""
    req = setup.request
    for p in req.plugins:
        load_plugin(p)
    torch.set_num_threads(setup.threads)
    device = resolve_device(setup.device)
    opts = dict(req.model_opts)
    check_model_opts([spec.name for spec in req.specs], opts, {spec.name: spec.checkpoint for spec in req.specs})
    models = [(spec, build_model(spec.name, spec.checkpoint, opts, device, req.allow_untrained))
              for spec in req.specs] + list(extra)
    if setup.max_memory is not None and device.type == "cpu":
        load_guard()
    notes: list[str] = []
    explicit = req.metrics is not None
    metrics, prov = _load_metrics(req.metrics if explicit else DEFAULT_METRICS, explicit, device, req.lpips_weights,
                                  notes, req.metric_options)
    return Context(setup=setup, protocol=get_protocol(req.protocol), models=models, metrics=metrics, device=device,
                   device_label=precision_label(device_name(device), req.precision), versions=package_versions_json(),
                   metric_prov=json.dumps(prov, sort_keys=True), notes=notes)


def _load_metrics(names, explicit: bool, device, lpips_weights, notes, options_of=lambda name: {}):
    known = list_metrics()
    for n in names:
        if is_pyiqa(n):
            metric_info(n)  # an unknown pyiqa name (or pyiqa not installed) fails here, before any weights load
        elif n not in known:
            raise unknown("metric", n, known)
    loaded, provenance = {}, {}
    for n in names:
        m = _lpips(lpips_weights) if n == "lpips" else create_metric(n, options_of(n))
        try:
            m.load(device)
        except MetricUnavailable as e:
            if explicit:
                raise UserError(str(e)) from None
            notes.append(f"{e} (continuing without {n}; its column stays empty)")
            continue
        except Exception as e:
            if is_builtin(n):
                raise
            raise UserError(f"metric {n!r} ({metric_source(n)}) failed to load: {type(e).__name__}: {e}") from None
        loaded[n] = m
        for attr in ("weights_sha256", "weights_source"):
            if getattr(m, attr, None):
                provenance[f"{n}_{attr}"] = getattr(m, attr)
        if not is_builtin(n):  # every row then names the package (and version) that computed the column
            provenance[f"{n}_plugin"] = metric_source(n, options_of(n))
    return loaded, provenance


def _lpips(weights: str | None):
    from sr_bench.metrics.lpips import LPIPS

    return LPIPS(weights=weights)
