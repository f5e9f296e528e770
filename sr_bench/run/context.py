"""A request made live in one process: its models, metrics and protocol on a device (``build_context``).

``Setup`` is the plain, picklable part (the request and where it runs), so every process of a run — this one, a
pool worker, a Ray actor, training validation, ``compare --visual`` — builds its context the same way.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import torch

from sr_bench.errors import UserError, unknown
from sr_bench.metrics import (
    MetricUnavailable,
    create_metric,
    is_builtin,
    is_pyiqa,
    list_metrics,
    metric_info,
    metric_options,
    metric_source,
)
from sr_bench.metrics.lpips import LPIPS
from sr_bench.models import load_plugin
from sr_bench.models.building import build_model, check_model_opts
from sr_bench.models.interface import Upscaler
from sr_bench.protocols import Protocol, get_protocol
from sr_bench.provenance import device_name, package_versions_json, resolve_device
from sr_bench.run.grid import ModelSpec
from sr_bench.run.levers import Levers, engage
from sr_bench.run.memory import keep_freed_memory, load_guard
from sr_bench.run.precision import check_precision, hold_tf32_switches
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

    @property
    def request(self) -> RunRequest:
        return self.setup.request

    @functools.cached_property
    def drift_psnr(self):
        """The PSNR the precision drift uses: the run's own, or one made for it when the run measures no PSNR."""
        if "psnr" in self.metrics:
            return self.metrics["psnr"]
        metric = create_metric("psnr")
        metric.load(self.device)
        return metric


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
    metrics, prov = _load_metrics(req, device, notes)
    return Context(setup=setup, protocol=get_protocol(req.protocol), models=models, metrics=metrics, device=device,
                   device_label=precision_label(device_name(device), req.precision), versions=package_versions_json(),
                   metric_prov=json.dumps(prov, sort_keys=True), notes=notes)


def worker_context(setup: Setup) -> tuple[Context, dict]:
    """The context of a process that only evaluates (a pool worker, a Ray actor): the precision checked on the
    device it got (a Ray actor's GPU is not the driver's device), its TF32 switches held and its speed levers engaged
    for good; and what the levers did."""
    keep_freed_memory()
    ctx = build_context(setup)
    check_precision(setup.request.precision, ctx.device.type)
    hold_tf32_switches(setup.request.precision, ctx.device)
    return ctx, engage(ctx)


def _load_metrics(req: RunRequest, device, notes: list[str]) -> tuple[dict, dict]:
    """The request's metrics loaded, and their provenance; a default metric that cannot load is left out with a
    note, a requested one is an error."""
    known = list_metrics()
    for n in req.metric_names:
        if is_pyiqa(n):
            metric_info(n)  # an unknown pyiqa name (or pyiqa not installed) fails here, before any weights load
        elif n not in known:
            raise unknown("metric", n, known)
    loaded, provenance = {}, {}
    for n in req.metric_names:
        m = LPIPS(weights=req.lpips_weights) if n == "lpips" else create_metric(n, metric_options(n, req.metric_opts))
        try:
            m.load(device)
        except MetricUnavailable as e:
            if req.metrics is not None:
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
            provenance[f"{n}_plugin"] = metric_source(n, metric_options(n, req.metric_opts))
    return loaded, provenance
