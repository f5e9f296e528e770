"""Speed levers of ``srbench run``: ``--compile``, ``--channels-last``, ``--cudnn-benchmark`` (``Levers``): execution
options, which kernels compute a forward and not what it computes, so a resume may switch one (run.json's
``execution`` has an entry per session). What each does and why: docs/gpu-check.md, "Speed levers"."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from dataclasses import dataclass
from fractions import Fraction

import torch
from tqdm import tqdm

from sr_bench.errors import UserError
from sr_bench.imaging.resize import output_size
from sr_bench.models.tiling import tiling_active
from sr_bench.run.cost import random_lr, timed_forward

DEFAULT_BACKEND = "inductor"
WARMUP_LR = (24, 32)  # not square: dynamo would otherwise assume equal sides and compile again for the first image


@dataclass(frozen=True)
class Levers:
    compile: str | None = None  # a torch.compile backend, None: eager
    channels_last: bool = False
    cudnn_benchmark: bool = False

    def __post_init__(self):
        if self.compile is not None:
            if not isinstance(self.compile, str) or not self.compile:
                raise UserError(f"--compile takes a torch.compile backend name (default {DEFAULT_BACKEND}), "
                                f"not {self.compile!r}")
            known = torch.compiler.list_backends(exclude_tags=())
            if self.compile not in known:
                raise UserError(f"--compile {self.compile}: torch.compile has no such backend; known: "
                                f"{', '.join(sorted(known))}")


def networks(model) -> list[torch.nn.Module]:
    """The networks a model holds, each once: ``nn.Module`` attributes (also in a dict, list, tuple), ``modules()``."""
    found: dict[int, torch.nn.Module] = {}
    for value in vars(model).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        found.update((id(m), m) for m in items if isinstance(m, torch.nn.Module))
    listed = getattr(model, "modules", None)
    if callable(listed):
        with contextlib.suppress(NotImplementedError):
            found.update((id(m), m) for m in listed())
    return list(found.values())


class _Compiled:
    """A network method replaced by its compiled version, except inside a tiled forward; counts its calls so that
    a model that never reaches it can be told."""

    def __init__(self, eager, backend: str):
        self.eager, self.tiled = eager, tiling_active
        self.compiled = torch.compile(eager, dynamic=True, backend=backend)
        self.calls = 0
        functools.update_wrapper(self, eager)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.eager(*args, **kwargs) if self.tiled() else self.compiled(*args, **kwargs)


def compile_network(net: torch.nn.Module, backend: str) -> list[_Compiled]:
    """Replace the network's ``compiled_methods`` (default: forward) by compiled ones, on the instance: the class,
    the weights and the state_dict keys stay as they are."""
    out = []
    for name in getattr(net, "compiled_methods", ("forward",)):
        out.append(_Compiled(getattr(net, name), backend))
        object.__setattr__(net, name, out[-1])
    return out


def uncompile(nets: list[torch.nn.Module]) -> None:
    for net in nets:
        for name in getattr(net, "compiled_methods", ("forward",)):
            if isinstance(net.__dict__.get(name), _Compiled):
                del net.__dict__[name]


def engage(ctx, warm_up: bool = True) -> dict:
    """Apply the run's levers to the models of ``ctx`` (a process that evaluates); cudnn.benchmark is set for the
    process (``engaged`` restores it). A compiled model runs one warm-up forward, compiled for the run's precision;
    one that fails it, or never calls its compiled methods, goes back to eager. Returns what happened, for run.json's
    execution entry."""
    levers: Levers = ctx.setup.levers
    report: dict = {}
    if levers.cudnn_benchmark and ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if not (levers.compile or levers.channels_last):
        return report
    compiled: dict[str, list[str]] = {}
    eager: dict[str, str] = {}
    s = Fraction(ctx.request.scales[0])
    start = time.perf_counter()  # torch.compile's first call also imports dynamo: seconds, counted with the warm-up
    for spec, model in ctx.models:
        nets = networks(model)
        if levers.channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)
        if not (levers.compile and nets):
            continue
        try:
            calls = [c for net in nets for c in compile_network(net, levers.compile)]
        except Exception as e:  # e.g. a Python version dynamo does not support yet
            uncompile(nets)
            eager[spec.name] = f"torch.compile failed ({_first_line(e)})"
            continue
        compiled[spec.name] = [c.__name__ for c in calls]
        if warm_up:
            try:
                timed_forward(model, random_lr(WARMUP_LR, ctx.device), s, output_size(WARMUP_LR, s),
                              ctx.request.precision)
                if not any(c.calls for c in calls):
                    eager[spec.name] = "its super_resolve calls none of its networks' compiled methods"
            except Exception as e:  # the backend's own error types are not public API: any failure means eager
                eager[spec.name] = f"the compiled warm-up forward failed ({_first_line(e)})"
            if spec.name in eager:
                uncompile(nets)
    if compiled:
        report["compiled"] = compiled
    if compiled and warm_up:
        report["warmup_seconds"] = round(time.perf_counter() - start, 6)
    if eager:
        report["eager"] = eager
    return report


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"


@contextlib.contextmanager
def engaged(ctx, manifest: dict):
    """``engage`` for this process's evaluation loop, what it did recorded in this session's execution entry (models
    left eager also as notes: stderr, run.json); cudnn.benchmark is restored afterwards."""
    before = torch.backends.cudnn.benchmark
    try:
        report = engage(ctx)
        if manifest.get("execution"):
            manifest["execution"][-1].update(report)
        for model, why in (report.get("eager") or {}).items():
            line = f"--compile: {model} runs eager: {why}"
            tqdm.write(f"note: {line}", file=sys.stderr)
            manifest.setdefault("notes", []).append(line)
        yield
    finally:
        torch.backends.cudnn.benchmark = before
