"""Speed levers of ``srbench run``: ``--compile``, ``--channels-last``, ``--cudnn-benchmark`` (``Levers``).

They are execution options (``RunOptions``), not part of the request: each changes which kernels compute a forward,
not what it computes, so a row may move by float32 rounding only, the same kind of difference as ``--device`` (CPU
against CUDA kernels) or ``--workers`` (one intra-op thread instead of all), which are execution options too. A
resume may therefore switch a lever; run.json's ``execution`` keeps one entry per session saying which were on.
A number-changing choice (bf16, fp16, tf32) is ``--precision``, part of the request.

- ``--compile [BACKEND]``: ``torch.compile(dynamic=True)`` of each network's forward (default backend inductor),
  once per model in every process that evaluates. A network may name other methods in ``compiled_methods`` (ASDN
  and Meta-RDN: ``features``, the shared body that holds almost all of their FLOPs; ASDN's forward picks its
  reconstruction branch by a Python int, which would compile once per LFR level). Then one warm-up forward per model
  on a random 24x32 LR at the run's first scale and precision pays the compilation before the first image; the
  seconds of both go to run.json (``warmup_seconds``: a one-off cost a benchmark must not scale with the grid). Tiled
  forwards (``--tile``, an out-of-memory retry) run eager: a tile's image-wide statistics are Python state that a
  compiled graph would specialise on, tile after tile. A model whose warm-up fails compiled (no C compiler for
  inductor's CPU kernels, an op the backend cannot take) or that calls no compiled method runs eager, with a note.
- ``--channels-last``: the networks' weights in NHWC; each convolution then returns NHWC as well, the layout
  tensor cores and oneDNN prefer.
- ``--cudnn-benchmark``: ``torch.backends.cudnn.benchmark`` for the loop. cuDNN times its algorithms on every new
  input shape and keeps the fastest: it pays where shapes repeat, and may pick another summation order than the
  default heuristics (float32 last bits). No-op on a CPU (recorded all the same).
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import asdict, dataclass
from fractions import Fraction

import torch

from sr_bench.errors import UserError

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

    def flags(self) -> list[str]:
        """The command-line options that repeat these levers."""
        out = [] if self.compile is None else ["--compile"] + ([] if self.compile == DEFAULT_BACKEND
                                                               else [self.compile])
        return out + ["--channels-last"] * self.channels_last + ["--cudnn-benchmark"] * self.cudnn_benchmark

    def to_json(self) -> dict:
        return asdict(self)


def networks(model) -> list[torch.nn.Module]:
    """The networks a model holds: ``nn.Module`` attributes (directly, or in a dict, list or tuple) and its
    ``modules()``, each once."""
    found: dict[int, torch.nn.Module] = {}
    for value in vars(model).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        found.update((id(m), m) for m in items if isinstance(m, torch.nn.Module))
    listed = getattr(model, "modules", None)
    if callable(listed):
        try:
            found.update((id(m), m) for m in listed())
        except NotImplementedError:
            pass
    return list(found.values())


class _Compiled:
    """A network method replaced by its compiled version, except inside a tiled forward; counts its calls so that
    a model that never reaches it can be told."""

    def __init__(self, eager, backend: str):
        from sr_bench.models.tiling import tiling_active

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


def uncompile(net: torch.nn.Module) -> None:
    for name in getattr(net, "compiled_methods", ("forward",)):
        if isinstance(net.__dict__.get(name), _Compiled):
            del net.__dict__[name]


def engage(ctx, warm_up: bool = True) -> dict:
    """Apply the run's levers to the models of ``ctx`` (a process that evaluates); cudnn.benchmark is set for the
    process (``engaged`` restores it). Returns what happened, for run.json's execution entry."""
    levers: Levers = ctx.setup.levers
    report: dict = {}
    if levers.cudnn_benchmark and ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if not (levers.compile or levers.channels_last):
        return report
    compiled: dict[str, list[_Compiled]] = {}
    eager: dict[str, str] = {}
    start = time.perf_counter()  # torch.compile's first call also imports dynamo: seconds, counted with the warm-up
    for spec, model in ctx.models:
        nets = networks(model)
        if levers.channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)
        if levers.compile and nets:
            try:
                compiled[spec.name] = [c for net in nets for c in compile_network(net, levers.compile)]
            except Exception as e:  # e.g. a Python version dynamo does not support yet
                for net in nets:
                    uncompile(net)
                eager[spec.name] = f"torch.compile failed ({_first_line(e)})"
    if compiled:
        report["compiled"] = {name: [c.__name__ for c in calls] for name, calls in compiled.items()}
    if compiled and warm_up:
        eager.update(_warm_up(ctx, compiled))
        report["warmup_seconds"] = round(time.perf_counter() - start, 6)
    if eager:
        report["eager"] = eager
    return report


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"


def _warm_up(ctx, compiled: dict) -> dict[str, str]:
    """One forward per compiled model, compiled for the run's precision; a model that fails it, or never calls its
    compiled methods, goes back to eager. Returns model -> why, for those."""
    from sr_bench.imaging.resize import output_size
    from sr_bench.run.cost import timed_forward

    s = Fraction(ctx.request.scales[0])
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, *WARMUP_LR, generator=gen, dtype=torch.float64).to(ctx.device)
    eager: dict[str, str] = {}
    for spec, model in ctx.models:
        if spec.name not in compiled:
            continue
        why = ""
        try:
            timed_forward(model, lr, s, output_size(WARMUP_LR, s), ctx.request.precision)
            if not any(c.calls for c in compiled[spec.name]):
                why = "its super_resolve calls none of its networks' compiled methods"
        except Exception as e:  # the backend's own error types are not public API: any failure means eager
            why = f"the compiled warm-up forward failed ({_first_line(e)})"
        if why:
            for net in networks(model):
                uncompile(net)
            eager[spec.name] = why
    return eager


def notes(report: dict) -> list[str]:
    """One line per model that --compile left eager."""
    return [f"--compile: {model} runs eager: {why}" for model, why in (report.get("eager") or {}).items()]


@contextlib.contextmanager
def engaged(ctx):
    """``engage`` for this process's evaluation loop; cudnn.benchmark is restored afterwards."""
    before = torch.backends.cudnn.benchmark
    try:
        yield engage(ctx)
    finally:
        torch.backends.cudnn.benchmark = before


def session_entry(levers: Levers, executor: str, workers: int) -> dict:
    """This session's entry in run.json's ``execution``; the evaluating loop adds what ``engage`` did."""
    return {**levers.to_json(), "executor": executor, "workers": workers}


def record(manifest: dict, report: dict) -> None:
    """What ``engage`` did, into this session's execution entry; its notes on stderr and in run.json's notes."""
    import sys

    from tqdm import tqdm

    if manifest.get("execution"):
        manifest["execution"][-1].update(report)
    for line in notes(report):
        tqdm.write(f"note: {line}", file=sys.stderr)
        manifest.setdefault("notes", []).append(line)
