"""What a model forward costs: seconds, FLOPs, peak memory, parameters (``srbench profile``, ``srbench run --profile``).

What each figure counts (FLOPs: matrix products and convolutions, 2 per multiply-add, not biases, element-wise ops,
pooling or the resizes' banded sparse products; peak memory: ``memory.ForwardMemory``): docs/tiling.md, "Cost".
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import re
import statistics
import time
from dataclasses import dataclass
from fractions import Fraction

import torch

from sr_bench.errors import UserError
from sr_bench.imaging.resize import output_size
from sr_bench.models import load_plugin
from sr_bench.models.building import build_model, check_model_opts, check_scales
from sr_bench.models.tiling import Tiling
from sr_bench.models.tiling import super_resolve as tiled_super_resolve
from sr_bench.provenance import device_name, resolve_device
from sr_bench.run.grid import ModelSpec
from sr_bench.run.memory import ForwardMemory, size_text
from sr_bench.run.peaks import flops_per_second, mfu, mfu_text, rate_text
from sr_bench.run.precision import check_precision, device_label, forward_precision
from sr_bench.scales import scale_text


def timed_forward(model, lr: torch.Tensor, scale: Fraction, size: tuple[int, int], precision: str = "fp32",
                  tiling: Tiling | None = None, memory: ForwardMemory | None = None,
                  count_flops: bool = False) -> tuple[torch.Tensor, float, int | None]:
    """(SR in [0, 1], seconds, FLOPs or None): ``model.super_resolve`` under inference mode and ``precision``,
    tiled by ``tiling``, inside ``memory`` (its peak is then on it)."""
    counter = _network_flops()(display=False) if count_flops else None
    with torch.inference_mode(), forward_precision(precision, lr.device), memory or contextlib.nullcontext():
        with counter or contextlib.nullcontext():
            start = time.perf_counter()
            sr01 = tiled_super_resolve(model, lr, scale, size, tiling)
            if sr01.device.type == "cuda":
                # this thread's stream only: a helper thread's metrics on another stream are not the model's time
                torch.cuda.current_stream(sr01.device).synchronize()
            seconds = time.perf_counter() - start
    return sr01, seconds, (int(counter.get_total_flops()) if counter is not None else None)


@functools.cache
def _network_flops():
    """FlopCounterMode without the products that have a sparse operand (the resizes' banded matrices: dense, the
    counter would count a few FLOPs per pixel as millions). Imported on first use: it takes a third of a second."""
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import FlopCounterMode

    class NetworkFlops(FlopCounterMode):
        def _count_flops(self, func_packet, out, args, kwargs):
            if any(isinstance(t, torch.Tensor) and t.layout != torch.strided for t in tree_leaves((args, kwargs))):
                return out
            return super()._count_flops(func_packet, out, args, kwargs)

    return NetworkFlops


def model_tiling(model, tile: int | None, overlap: int | None) -> Tiling | None:
    """``--tile N --tile-overlap K`` for ``model`` (K defaults to the model family's ``tile_overlap``)."""
    return Tiling(tile, model.tile_overlap if overlap is None else overlap) if tile else None


def random_lr(size: tuple[int, int], device) -> torch.Tensor:
    """A seeded random (1, 3, h, w) float64 LR in [0, 1): the input of profiles and compile warm-ups."""
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device)


@dataclass
class Profile:
    """One (model, scale) at one input size."""

    model: str
    scale: str
    lr_size: tuple[int, int]
    sr_size: tuple[int, int]
    strategy: str
    parameters: int
    flops: int
    seconds: float  # median of the timed runs
    runs: int
    peak_memory: int | None
    added_memory: int | None  # peak_memory minus the same measure when the forward started
    checkpoint: str  # sha256 of the weights, or "untrained" / "" (no weights)
    device: str = ""  # provenance.device_name: cuda:NVIDIA H100 80GB HBM3, cpu:x86_64:8threads
    precision: str = "fp32"


def profile_forward(name: str, model, scale: Fraction, lr_size: tuple[int, int], device: torch.device,
                    precision: str = "fp32", repeat: int = 3, tiling: Tiling | None = None) -> Profile:
    """A warm-up forward that counts the FLOPs (lazy builds, kernel choice and first-touch pages happen there, and
    the counter's per-op overhead stays out of the timings), then ``repeat`` timed forwards, the first also measuring
    peak memory; on a seeded random LR of ``lr_size``, the SR size MATLAB's ceil(scale * size)."""
    s = Fraction(scale)
    lr = random_lr(lr_size, device)
    size = output_size(lr_size, s)
    flops = timed_forward(model, lr, s, size, precision, tiling, count_flops=True)[2]
    times, peak, added = [], None, None
    for i in range(repeat):
        memory = ForwardMemory(device, release=True) if i == 0 else None
        times.append(timed_forward(model, lr, s, size, precision, tiling, memory)[1])
        if memory is not None and memory.peak is not None:
            peak = memory.peak
            added = peak - memory.before if memory.before is not None else None
    sha = model.checkpoint_sha256_for(s)
    return Profile(model=name, scale=scale_text(s), lr_size=tuple(lr_size), sr_size=tuple(size),
                   strategy=model.strategy_for(s), parameters=model.parameter_count(s), flops=flops,
                   seconds=statistics.median(times), runs=repeat, peak_memory=peak, added_memory=added,
                   checkpoint=sha or ("untrained" if model.untrained else ""), device=device_name(torch.device(device)),
                   precision=precision)


def parse_input_size(text: str) -> tuple[int, int]:
    """'256x256' / '320x240' (height x width) / '256' -> (h, w)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x×]\s*(\d+)\s*)?", str(text).lower())
    if m is None or int(m[1]) < 1 or int(m[2] or m[1]) < 1:
        raise UserError(f"--size {text!r} is not HEIGHTxWIDTH in pixels, e.g. 256x256")
    return int(m[1]), int(m[2] or m[1])


def profile_models(models: list[str], scales: list[Fraction], lr_size: tuple[int, int], device: str = "auto",
                   precision: str = "fp32", repeat: int = 3, model_opts: dict | None = None,
                   plugins: tuple[str, ...] = (), tile: int | None = None, tile_overlap: int | None = None,
                   progress=None) -> tuple[list[Profile], str]:
    """(``profile_forward`` of every (model, scale), the device label); models built as ``srbench run`` builds them,
    except that one given no checkpoint runs on seeded random weights (``weights``: ``untrained``): parameters,
    FLOPs, time and memory do not depend on the values of the weights."""
    if repeat < 1:
        raise UserError(f"--repeat must be >= 1, got {repeat}")
    if tile_overlap is not None and tile is None:
        raise UserError("--tile-overlap needs --tile N (the tile size in LR pixels)")
    for p in plugins:
        load_plugin(p)
    dev = resolve_device(device)
    check_precision(precision, dev.type)
    specs = [ModelSpec.parse(m) for m in models]
    opts = dict(model_opts or {})
    check_model_opts([spec.name for spec in specs], opts, {spec.name: spec.checkpoint for spec in specs})
    built = [(spec.name, build_model(spec.name, spec.checkpoint, opts, dev, allow_untrained=True)) for spec in specs]
    check_scales(built, scales)
    out = []
    for name, model in built:
        tiling = model_tiling(model, tile, tile_overlap)
        for s in scales:
            out.append(profile_forward(name, model, s, lr_size, dev, precision, repeat, tiling))
            if progress:
                progress(out[-1])
    return out, device_label(device_name(dev), precision)


def profiles_table(profiles: list[Profile], fmt: str = "markdown") -> str:
    """The profiles as a Markdown table (or CSV with exact integers); achieved FLOP/s (the counted FLOPs over the
    median seconds), and MFU where the device has a listed peak (run/peaks.py; "–" elsewhere, CPUs included)."""
    rates = [(flops_per_second(p.flops, p.seconds), mfu(p.flops, p.seconds, p.device, p.precision)) for p in profiles]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["model", "scale", "strategy", "lr_height", "lr_width", "sr_height", "sr_width", "parameters",
                    "flops", "seconds", "runs", "peak_memory", "added_memory", "checkpoint", "flops_per_second",
                    "mfu"])
        for p, (rate, share) in zip(profiles, rates, strict=True):
            w.writerow([p.model, p.scale, p.strategy, *p.lr_size, *p.sr_size, p.parameters, p.flops,
                        f"{p.seconds:.6f}", p.runs, "" if p.peak_memory is None else p.peak_memory,
                        "" if p.added_memory is None else p.added_memory, p.checkpoint,
                        "" if rate is None else f"{rate:.6g}", "" if share is None else f"{share:.6f}"])
        return buf.getvalue()
    lines = ["| model | scale | strategy | LR | SR | parameters | GFLOPs | seconds | FLOP/s | MFU | peak memory | "
             "forward added | weights |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p, (rate, share) in zip(profiles, rates, strict=True):
        lines.append(f"| {p.model} | x{p.scale} | {p.strategy} | {p.lr_size[0]}x{p.lr_size[1]} | "
                     f"{p.sr_size[0]}x{p.sr_size[1]} | {p.parameters:,} | {p.flops / 1e9:,.1f} | "
                     f"{p.seconds:.3f} | {rate_text(rate)} | {mfu_text(share)} | "
                     f"{size_text(p.peak_memory)} | {size_text(p.added_memory)} | {p.checkpoint[:12] or '-'} |")
    return "\n".join(lines)
