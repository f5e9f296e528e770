"""``srbench run``: models x datasets x scales under one protocol.

The unit of work is one image: it is read once, its full-size HR luma is computed once, and every scale and model
is measured on it. Rows are saved in atomic Parquet shards every ``FLUSH_IMAGES`` images and at least every
``FLUSH_SECONDS`` (checked as rows arrive; a sequential run hands over each scale's rows as soon as they exist), so a
crash loses at most the evaluations since the last shard; ``--resume`` skips every (model, dataset, image, scale)
that already has a measured row. ``workers > 1`` spreads images over local processes (each rebuilds the models and
metrics from the same specs; each dies with its parent). The run folder is locked and tied to its request
(``sr_bench.run.folder``).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import math
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from sr_bench.data import resolve_dataset
from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError, unknown
from sr_bench.imaging.color import gray2rgb
from sr_bench.metrics import (DEFAULT_METRICS, MetricUnavailable, create_metric, is_builtin, list_metrics, metric_info,
                              metric_source)
from sr_bench.models import load_plugin
from sr_bench.models.interface import Upscaler, scale_refusal
from sr_bench.models.registry import call_model_code, create_model, release_of
from sr_bench.models.registry import resolve as resolve_model
from sr_bench.models.tiling import Tiling, halved
from sr_bench.protocols import HRSource, ImageTooSmall, Protocol, choose_protocol, get_protocol
from sr_bench.provenance import device_name, package_versions, package_versions_json, resolve_device
from sr_bench.run.cost import timed_forward
from sr_bench.run.folder import (FolderLock, check_creatable, check_not_foreign, data_change, dataset_record,
                                 remove_partial_writes, request_differences)
from sr_bench.run.grid import ModelSpec, new_run_id
from sr_bench.run.memory import (ForwardMemory, MemoryBudgetExceeded, keep_freed_memory, load_guard, parse_size,
                                 rss_bytes, size_text)
from sr_bench.run.precision import (REFERENCE_KEY, Drift, check_precision, hold_tf32_switches,
                                    tf32_switches)
from sr_bench.run.precision import describe as describe_precision
from sr_bench.run.precision import device_label as precision_label
from sr_bench.run.processes import exit_with_parent, ignore_interrupts, stop_pool
from sr_bench.run.progress import Progress
from sr_bench.scales import parse_scale, scale_text
from sr_bench.store import METRIC_COLUMNS, load_rows, read_manifest, write_manifest, write_shard

FLUSH_IMAGES = 8  # images per shard: bounds what an interruption can lose
FLUSH_SECONDS = 30.0  # ... and so does time: a shard at least this often while rows arrive (slow models)
IMAGE_KEY = "sr_png"  # a row's SR image (--save-images) on its way to the driver; never stored in the shard
IMAGES_DIR = "images"
DRIFT_IMAGES = 5  # a non-fp32 run also measures its first images in fp32 (run.json's precision.drift)
EXECUTORS = ("local", "ray")  # local: this process (--workers 1) or a spawn pool; ray: run/ray_executor.py


@dataclass
class RunResult:
    run_dir: Path
    rows: pd.DataFrame
    protocol: Protocol
    metrics: tuple[str, ...]
    notes: list[str]
    precision: dict | None = None  # run.json's "precision": name, autocast, drift against fp32
    timing: dict | None = None  # run.json's "timing" of this session's evaluation loop


@dataclass(frozen=True)
class Setup:
    """Everything needed to rebuild the evaluation in another process (plain, picklable values)."""

    run_id: str
    specs: tuple[ModelSpec, ...]
    model_opts: tuple[tuple[str, object], ...]  # --model-opt k=v, given to every model that takes option k
    allow_untrained: bool
    plugins: tuple[str, ...]
    protocol: str
    metrics: tuple[str, ...]
    metrics_explicit: bool  # an explicit metric that cannot load is an error; a default one is skipped with a note
    lpips_weights: str | None
    device: str
    threads: int
    save_images: bool = False  # --save-images: each quantised SR travels with its row as PNG bytes (IMAGE_KEY)
    precision: str = "fp32"  # sr_bench.run.precision: the model forward's arithmetic
    tile: int | None = None  # --tile: LR tile size of the networks (sr_bench.models.tiling); None: whole images
    tile_overlap: int | None = None  # --tile-overlap; None: each model family's recommended overlap
    max_memory: int | None = None  # --max-memory in bytes: a CPU RSS guard / a CUDA allocator cap (run/memory.py)
    profile: bool = False  # --profile: FLOPs and parameters per row (run/cost.py)


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


# ---------------------------------------------------------------- building the pieces (fails before any work) ----
def _load_metrics(names, explicit: bool, device, lpips_weights, notes):
    known = list_metrics()
    for n in names:
        if n not in known:
            raise unknown("metric", n, known)
    loaded, provenance = {}, {}
    for n in names:
        m = _lpips(lpips_weights) if n == "lpips" else create_metric(n)
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
            provenance[f"{n}_plugin"] = metric_source(n)
    return loaded, provenance


def _lpips(weights: str | None):
    from sr_bench.metrics.lpips import LPIPS

    return LPIPS(weights=weights)


def takes_option(factory, key: str) -> bool:
    """Whether a model factory takes option ``key`` (``--model-opt`` goes only to the models that take it)."""
    params = inspect.signature(factory).parameters
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _create_model(spec: ModelSpec, allow_untrained: bool, opts: dict, device) -> Upscaler:
    factory = resolve_model(spec.name)
    kwargs = {k: v for k, v in opts.items() if takes_option(factory, k)}
    if spec.checkpoint is not None:
        if not takes_option(factory, "checkpoint"):
            raise UserError(f"model {spec.name!r} has no weights to load; drop '={spec.checkpoint}'")
        kwargs["checkpoint"] = spec.checkpoint
    if allow_untrained and takes_option(factory, "allow_untrained"):
        kwargs["allow_untrained"] = True
    model = create_model(spec.name, **kwargs)
    return call_model_code(spec.name, f"while moving it to {device}", model.to, device)


def build_context(setup: Setup) -> Context:
    for p in setup.plugins:
        load_plugin(p)
    torch.set_num_threads(setup.threads)
    device = resolve_device(setup.device)
    opts = dict(setup.model_opts)
    for key in opts:
        if not any(takes_option(resolve_model(spec.name), key) for spec in setup.specs):
            raise UserError(f"no model in --models takes the option {key!r} given with --model-opt")
    models = [(spec, _create_model(spec, setup.allow_untrained, opts, device)) for spec in setup.specs]
    if setup.max_memory is not None and device.type == "cpu":
        load_guard()
    notes: list[str] = []
    metrics, prov = _load_metrics(setup.metrics, setup.metrics_explicit, device, setup.lpips_weights, notes)
    return Context(setup=setup, protocol=get_protocol(setup.protocol), models=models, metrics=metrics, device=device,
                   device_label=precision_label(device_name(device), setup.precision), versions=package_versions_json(),
                   metric_prov=json.dumps(prov, sort_keys=True), notes=notes)


def check_scales(models: list[tuple[ModelSpec, Upscaler]], scales: list[Fraction]) -> None:
    """Every (model, checkpoint, scale) of the request can run (natively, or through the model's decimal-scale
    strategy with a network the checkpoints hold), or the one-line error a model gives for a scale it cannot run,
    before any image is read. What every row records about the pair (strategy, checkpoint, release) is asked here
    too, so a model that cannot say fails now and not on the first image."""
    for spec, model in models:
        for s in scales:
            doing = f"while checking x{scale_text(s)}"
            problem = call_model_code(spec.name, doing, model.scale_problem, s)
            if problem:
                raise scale_refusal(spec.name, s, problem)
            call_model_code(spec.name, doing, model.strategy_for, s)
            release_of(spec.name, call_model_code(spec.name, doing, model.checkpoint_sha256_for, s))


# ---------------------------------------------------------------------------------------- measuring one image ----
def _row(ctx: Context, spec: ModelSpec, model: Upscaler, dataset: str, image: str, s: Fraction) -> dict:
    sha = model.checkpoint_sha256_for(s)
    return {
        "run_id": ctx.setup.run_id, "model": spec.name, "dataset": dataset, "image": image,
        "scale": float(s), "scale_text": scale_text(s), "protocol": ctx.protocol.name,
        "protocol_fingerprint": ctx.protocol.fingerprint, "strategy": model.strategy_for(s),
        "untrained": bool(model.untrained), "checkpoint_sha256": sha, "release": release_of(spec.name, sha),
        **dict.fromkeys((*METRIC_COLUMNS, *ctx.setup.metrics)), "seconds": None,
        "hr_height": None, "hr_width": None, "lr_height": None, "lr_width": None, "error": "", "error_kind": "",
        "device": ctx.device_label, "metric_weights": ctx.metric_prov, "package_versions": ctx.versions,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "tile": None, "tile_overlap": None, "tile_reason": "", "peak_memory": None, "parameters": None, "flops": None,
    }


def evaluate_image(ctx: Context, dataset: str, item: ImageItem, scales: list[Fraction],
                   skip: frozenset = frozenset(), tick=None, reference: bool = False,
                   emit=None) -> tuple[list[dict], list[str]]:
    """Rows for one image at every scale and model not in ``skip`` ({(model, scale_text)}), and warnings.
    ``reference``: also run each evaluation in fp32 for the precision drift (``REFERENCE_KEY`` on the rows).
    ``emit(rows, warnings)``: called after each scale with that scale's rows, which are then not returned (a slow
    model's finished scales can be saved before the image is done).
    ``sr_bench.run.pipeline`` runs the same steps with the next images prepared and the metrics computed on a
    helper thread."""
    rows, warnings = [], []
    source, load_error = load_source(ctx, dataset, item, warnings)
    for s in scales:
        todo = [(spec, m) for spec, m in ctx.models if (spec.name, scale_text(s)) not in skip]
        if not todo:
            continue
        case, error = prepare_case(ctx, source, load_error, s)
        for spec, model in todo:
            row = _row(ctx, spec, model, dataset, item.name, s)
            if case is None:
                row["error"], row["error_kind"] = error, "data"
            else:
                sr = forward(row, model, case, s, ctx)
                ref = reference_forward(model, case, s, ctx) if reference and sr is not None else None
                if sr is not None:
                    score(row, sr, case, ctx, ref)
                else:
                    row["error_kind"] = "model"
                if row["error"]:
                    warnings.append(row_warning(dataset, item, spec, row))
            rows.append(row)
            if tick:
                tick(1)
        if emit is not None and rows:
            emit(rows, warnings)
            rows, warnings = [], []
    return rows, warnings


def unmeasured_rows(ctx: Context, dataset: str, item: ImageItem, scales: list[Fraction], skip: frozenset,
                    error: str, kind: str) -> list[dict]:
    """Error rows for every evaluation of an image that could not be run at all (e.g. it took its workers down)."""
    rows = []
    for s in scales:
        for spec, model in ctx.models:
            if (spec.name, scale_text(s)) not in skip:
                row = _row(ctx, spec, model, dataset, item.name, s)
                row["error"], row["error_kind"] = error, kind
                rows.append(row)
    return rows


def load_source(ctx: Context, dataset: str, item: ImageItem, warnings: list[str]) -> tuple[HRSource | None, str]:
    """The image as an HRSource on the run's device, or (None, why) with a warning added."""
    try:
        arr = item.load()
        return HRSource(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(ctx.device, torch.float64)), ""
    except UserError as e:
        warnings.append(f"{dataset}/{item.name}: {e}")
        return None, str(e)


def prepare_case(ctx: Context, source: HRSource | None, load_error: str, s: Fraction):
    """(the protocol's case at scale ``s``, "") or (None, why it has no case)."""
    if source is None:
        return None, load_error
    try:
        return ctx.protocol.prepare(source, s), ""
    except ImageTooSmall as e:
        return None, str(e)


def row_warning(dataset: str, item: ImageItem, spec: ModelSpec, row: dict) -> str:
    return f"{dataset}/{item.name} x{row['scale_text']} {spec.name}: {row['error']}"


def model_input(case) -> torch.Tensor:
    """The (1, 3, h, w) RGB LR in [0, 1] every model receives (a gray LR replicated)."""
    lr = case.lr if case.lr.shape[0] == 3 else gray2rgb(case.lr)
    return (lr / 255.0)[None]


def super_resolve_case(model: Upscaler, case, s: Fraction, protocol: Protocol, precision: str = "fp32",
                       tiling: Tiling | None = None, memory: ForwardMemory | None = None,
                       cost: dict | None = None) -> tuple[torch.Tensor, float]:
    """The protocol-quantised SR of ``case`` (C, H, W float64, 0..255) and the model's seconds: the one path from a
    prepared case to the image the metrics see, shared by the runner and anything re-creating its numbers.
    ``tiling``: the model's networks run on tiles (``sr_bench.models.tiling``); ``memory``: measures (and guards)
    the forward's memory; ``cost``: a dict that receives the forward's ``flops``."""
    lr = model_input(case)
    sr01, seconds, flops = timed_forward(model, lr, s, case.sr_size, precision, tiling, memory,
                                         count_flops=cost is not None)
    if cost is not None:
        cost["flops"] = flops
    if tuple(sr01.shape[-2:]) != tuple(case.sr_size):
        raise RuntimeError(f"model returned {tuple(sr01.shape[-2:])}, expected {case.sr_size}")
    sr = protocol.quantize(sr01[0].to(torch.float64))
    if sr.device.type == "cuda":
        torch.cuda.current_stream(sr.device).synchronize()  # complete before another thread's stream reads it
    return sr, seconds


def requested_tiling(setup: Setup, model: Upscaler) -> Tiling | None:
    """``--tile N --tile-overlap K`` for this model (K defaults to the model family's ``tile_overlap``)."""
    if not setup.tile:
        return None
    return Tiling(setup.tile, model.tile_overlap if setup.tile_overlap is None else setup.tile_overlap)


def forward(row: dict, model: Upscaler, case, s: Fraction, ctx: Context) -> torch.Tensor | None:
    """Fill the row's sizes, ``seconds``, tiling and memory (and with ``--profile`` its cost); the quantised SR, or
    None with the row's error set. A forward that runs out of memory (CUDA, or ``--max-memory`` on CPU) is retried
    on tiles of half the size, down to ``tiling.MIN_TILE``."""
    lr_size = (case.lr.shape[-2], case.lr.shape[-1])
    row.update(hr_height=case.sr_size[0], hr_width=case.sr_size[1], lr_height=lr_size[0], lr_width=lr_size[1])
    setup = ctx.setup
    tiling = requested_tiling(setup, model)
    reason = "--tile" if tiling else ""
    measure = model.learned or setup.profile  # a trim before an interpolation's forward costs more than it does
    try:
        while True:
            memory = (ForwardMemory(ctx.device, release=measure, budget=setup.max_memory)
                      if measure or setup.max_memory is not None else None)
            cost = {} if setup.profile else None
            try:
                sr, row["seconds"] = super_resolve_case(model, case, s, ctx.protocol, setup.precision, tiling, memory,
                                                        cost)
                break
            except (torch.cuda.OutOfMemoryError, MemoryBudgetExceeded) as e:
                smaller = halved(tiling, lr_size, model.tile_overlap if setup.tile_overlap is None
                                 else setup.tile_overlap)
                if smaller is None:
                    raise
                why = "--max-memory" if isinstance(e, MemoryBudgetExceeded) else "out of memory"
                reason = f"{why} ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
                tiling = smaller
            if ctx.device.type == "cuda":  # outside the except: its traceback no longer holds the tensors
                torch.cuda.empty_cache()
        row.update(tile=tiling.tile if tiling else None, tile_overlap=tiling.overlap if tiling else None,
                   tile_reason=reason, peak_memory=memory.peak if measure else None)
        if setup.profile:
            row.update(parameters=model.parameter_count(s), flops=cost["flops"])
        if setup.save_images:
            row[IMAGE_KEY] = png_bytes(sr)
        return sr
    except Exception as e:  # one image's failure must not lose the run; the row says what happened
        row["error"], row["error_kind"] = f"{type(e).__name__}: {e}", "model"
        return None


def reference_forward(model: Upscaler, case, s: Fraction, ctx: Context):
    """(fp32 SR, seconds) of the same evaluation, for the drift of a non-fp32 run; None if it fails."""
    if ctx.setup.precision == "fp32":
        return None
    try:
        return super_resolve_case(model, case, s, ctx.protocol, "fp32", requested_tiling(ctx.setup, model))
    except Exception:  # the drift then skips this evaluation; the row itself is unaffected
        return None


def score(row: dict, sr: torch.Tensor, case, ctx: Context, ref=None) -> None:
    """The metrics of ``sr`` into the row (or its error); with ``ref`` (fp32 SR, seconds), the drift's PSNRs."""
    _measure_metrics(row, sr, case, ctx.protocol, ctx.metrics)
    if ref is not None and not row["error"]:
        psnr = drift_psnr(ctx)
        with torch.inference_mode():
            pair = (ctx.protocol.views(sr, case).pair(psnr.info.view),
                    ctx.protocol.views(ref[0], case).pair(psnr.info.view))
            row[REFERENCE_KEY] = {"psnr": psnr.compute(*pair[0]), "psnr_fp32": psnr.compute(*pair[1]),
                                  "seconds_fp32": ref[1]}


def drift_psnr(ctx: Context):
    """The PSNR metric the drift uses: the run's own, or one made for it when the run measures no PSNR."""
    if "psnr" in ctx.metrics:
        return ctx.metrics["psnr"]
    if ctx.drift_metric is None:
        ctx.drift_metric = create_metric("psnr")
        ctx.drift_metric.load(ctx.device)
    return ctx.drift_metric


def _measure_metrics(row: dict, sr: torch.Tensor, case, protocol: Protocol, metrics: dict) -> None:
    try:
        views = protocol.views(sr, case)
        with torch.inference_mode():
            for name, metric in metrics.items():
                row[name] = metric_value(name, metric.compute(*views.pair(metric.info.view)))
    except Exception as e:  # one image's failure must not lose the run; the row says what happened
        row["error"], row["error_kind"] = f"{type(e).__name__}: {e}", "metric"


def png_bytes(sr: torch.Tensor) -> bytes:
    """A quantised SR (C, H, W, 0..255) as a lossless 8-bit PNG (exact when the protocol quantises to integers)."""
    import io

    from PIL import Image

    arr = sr.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


def image_path(model: str, dataset: str, scale: str, image: str) -> str:
    """Where --save-images puts one SR, relative to the run folder: images/<model>/<dataset>/x<scale>/<image>.png."""
    import re

    safe = lambda t: re.sub(r"[^A-Za-z0-9._+-]+", "-", t)  # noqa: E731 - a model name may hold ':' (basicsr:ARCH)
    return f"{IMAGES_DIR}/{safe(model)}/{safe(dataset)}/x{safe(scale)}/{safe(image)}.png"


def _save_images(run_dir: Path, rows: list[dict]) -> None:
    """Write the rows' SR PNGs (before their shard: a stored row's image is on disk)."""
    from sr_bench.store.atomic import atomic_write_bytes

    for r in rows:
        data = r.pop(IMAGE_KEY, None)
        if data is not None:
            atomic_write_bytes(run_dir / image_path(r["model"], r["dataset"], r["scale_text"], r["image"]), data)


def quantises_to_integers(protocol: Protocol) -> bool:
    """Whether the protocol's SR is integer-valued, so that its PNG is the exact image the metrics saw."""
    q = protocol.quantize(torch.linspace(0, 1, 997, dtype=torch.float64).view(1, 1, -1))
    return bool(torch.equal(q, q.round()))


def metric_value(name: str, value) -> float | None:
    """What a row stores for a metric's result: a float, or None (no value) for None or NaN."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r} returned a {type(value).__name__}, not a number") from None
    return None if math.isnan(value) else value


# ------------------------------------------------------------------------------------------- process workers ----
_WORKER: Context | None = None


def _init_worker(setup: Setup, parent_pid: int | None = None) -> None:
    global _WORKER
    if parent_pid is not None:  # first: a worker must not outlive a parent killed while it loads its models
        exit_with_parent(parent_pid)
        ignore_interrupts()
    keep_freed_memory()
    _WORKER = build_context(setup)
    hold_tf32_switches(setup.precision, _WORKER.device)  # this process only evaluates


def _work(dataset: str, item: ImageItem, scales: list[Fraction], skip: frozenset, reference: bool = False):
    return evaluate_image(_WORKER, dataset, item, scales, skip, reference=reference)


# --------------------------------------------------------------------------------------------------- the run ----
class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, through the CLI) stopped a run after its finished rows were saved."""

    def __init__(self, run_dir: Path, resume_command: str, done: int, total: int):
        super().__init__(f"interrupted: {done} of {total} evaluations are saved in {run_dir}; continue with: "
                         f"{resume_command}")
        self.run_dir, self.resume_command = run_dir, resume_command


def run(
    models: list[str],
    datasets: list[str],
    scales: list[Fraction],
    protocol: str = "auto",
    metrics: list[str] | None = None,
    results_dir: Path = Path("results"),
    out: Path | None = None,
    data_root: str | None = None,
    device: str = "auto",
    lpips_weights: str | None = None,
    plugins: tuple[str, ...] = (),
    allow_untrained: bool = False,
    progress: bool = True,
    resume: Path | None = None,
    workers: int = 1,
    model_opts: dict | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    save_images: bool = False,
    precision: str = "fp32",
    prefetch: int | None = None,
    drift_images: int = DRIFT_IMAGES,
    gpus_per_worker: float = 0.0,
    tile: int | None = None,
    tile_overlap: int | None = None,
    max_memory: int | str | None = None,
    profile: bool = False,
) -> RunResult:
    """Evaluate ``models`` x ``datasets`` x ``scales`` into the run folder (see ``srbench run --help``).

    A folder that already holds this request continues it (as ``resume``); one holding another request, or locked
    by a live run, is refused (``sr_bench.run.folder``). ``precision``: the model forward's arithmetic
    (``sr_bench.run.precision``); a non-fp32 run also measures its first ``drift_images`` images in fp32 and stores
    the PSNR drift in run.json. ``prefetch``: images decoded and prepared ahead by a helper thread that also computes
    the metrics (``sr_bench.run.pipeline``; ``--workers 1`` only; None: 2 on CUDA, 0 on CPU). ``gpus_per_worker``:
    the GPUs each Ray actor requests. ``tile``/``tile_overlap``: run the models' networks on LR tiles
    (``sr_bench.models.tiling``; the overlap defaults to each family's). ``max_memory`` (bytes or '4GB'): a forward
    that would exceed it (CPU RSS) or runs out of CUDA memory is retried on smaller tiles (``sr_bench.run.memory``).
    ``profile``: rows also get FLOPs and parameters (``sr_bench.run.cost``). Ctrl-C saves what is finished and
    raises ``RunInterrupted``."""
    keep_freed_memory()
    # Everything that can be wrong with the request fails here, before any image is touched.
    if not models:
        raise UserError("no models given; use --models bicubic (see `srbench models`)")
    if not datasets:
        raise UserError("no datasets given; use --datasets set5 (see `srbench datasets list`)")
    if not scales:
        raise UserError("no scales given; use --scales 2,3,4")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if executor not in EXECUTORS:
        raise unknown("executor", executor, EXECUTORS)
    if ray_address and executor != "ray":
        raise UserError("--ray-address needs --executor ray")
    if gpus_per_worker < 0 or (gpus_per_worker and executor != "ray"):
        raise UserError("--gpus-per-worker needs --executor ray (a local run uses --device)" if gpus_per_worker > 0
                        else f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if prefetch is not None and prefetch < 0:
        raise UserError(f"--prefetch must be >= 0, got {prefetch}")
    if drift_images < 0:
        raise UserError(f"--drift-images must be >= 0, got {drift_images}")
    if tile is not None:
        Tiling(tile, tile_overlap or 0)  # checks both
    elif tile_overlap is not None:
        raise UserError("--tile-overlap needs --tile N (the tile size in LR pixels)")
    budget = parse_size(max_memory) if isinstance(max_memory, str) else max_memory
    # Ray actors with GPUs run on CUDA wherever the driver runs; otherwise the models run on --device here
    check_precision(precision, "cuda" if gpus_per_worker and device != "cpu" else resolve_device(device).type)
    chosen = choose_protocol(protocol, scales)
    specs = tuple(ModelSpec.parse(m) for m in models)
    if len({s.name for s in specs}) != len(specs):
        raise UserError("a model name appears twice in --models; give each model once")
    resolved = [resolve_dataset(d, data_root=data_root) for d in datasets]
    run_dir = Path(resume) if resume else Path(out) if out else Path(results_dir) / new_run_id(models, datasets, scales)
    if resume and not (run_dir / "run.json").is_file():
        raise UserError(f"cannot resume {str(run_dir)!r}: no run.json there; give a run folder made by `srbench run`")
    threads = max(1, torch.get_num_threads() // workers) if workers > 1 else torch.get_num_threads()
    if executor == "ray":
        threads = 1  # each actor holds one Ray CPU
    setup = Setup(run_id=run_dir.name, specs=specs, model_opts=tuple(sorted((model_opts or {}).items())),
                  allow_untrained=allow_untrained, plugins=tuple(plugins),
                  protocol=chosen.name, metrics=tuple(metrics) if metrics is not None else DEFAULT_METRICS,
                  metrics_explicit=metrics is not None, lpips_weights=lpips_weights, device=device, threads=threads if workers == 1 else 1,
                  save_images=save_images, precision=precision, tile=tile, tile_overlap=tile_overlap,
                  max_memory=budget, profile=profile)
    request = _request(setup, chosen, datasets, scales, data_root)

    with FolderLock(run_dir) as lock:
        if run_dir.is_dir():
            lock.acquire()  # a concurrent writer is refused before any model loads
        continuing = _continues(run_dir, request, chosen)
        if not continuing:
            check_not_foreign(run_dir)
            check_creatable(run_dir)
        data = [dataset_record(d) for d in resolved]
        if continuing:
            _check_data(run_dir, data)
        ctx = build_context(setup)
        check_scales(ctx.models, scales)
        if budget is not None and ctx.device.type == "cpu" and (rss_bytes() or 0) >= budget:
            raise UserError(f"--max-memory {size_text(budget)} is below the {size_text(rss_bytes())} this process "
                            f"already holds (Python, torch, the models); give a larger budget")
        for n in ctx.notes:
            tqdm.write(f"note: {n}", file=sys.stderr)
        if not lock.held:
            lock.acquire()  # the folder is made only now: a request that fails above leaves nothing behind
            if (run_dir / "run.json").is_file():  # another run made it meanwhile
                continuing = _continues(run_dir, request, chosen)
                _check_data(run_dir, data)
        if continuing:
            remove_partial_writes(run_dir)
        return _evaluate(run_dir, setup, ctx, chosen, resolved, data, scales, datasets, data_root, continuing,
                         progress=progress, workers=workers, executor=executor, ray_address=ray_address,
                         prefetch=prefetch, drift_images=drift_images, gpus_per_worker=gpus_per_worker)


def _request(setup: Setup, chosen: Protocol, datasets, scales, data_root) -> dict:
    """run.json's ``request``: what the folder measures (``--resume`` repeats it)."""
    return {
        "models": [f"{s.name}={s.checkpoint}" if s.checkpoint else s.name for s in setup.specs],
        "datasets": list(datasets), "scales": [scale_text(s) for s in scales], "protocol": chosen.name,
        "metrics": list(setup.metrics) if setup.metrics_explicit else None, "data_root": data_root,
        "lpips_weights": setup.lpips_weights, "plugins": list(setup.plugins), "allow_untrained": setup.allow_untrained,
        "model_opts": dict(setup.model_opts), "save_images": setup.save_images, "precision": setup.precision,
        "tile": setup.tile, "tile_overlap": setup.tile_overlap, "max_memory": setup.max_memory,
        "profile": setup.profile,
    }


def _continues(run_dir: Path, request: dict, chosen: Protocol) -> bool:
    """Whether ``run_dir`` already holds this request (True: continue it); a one-line error when it holds another."""
    if not (run_dir / "run.json").is_file():
        return False
    old = read_manifest(run_dir)
    stored = old.get("request")
    if stored is None:
        raise UserError(f"{run_dir}/run.json has no stored request (made by an older sr_bench); give another --out")
    if stored.get("precision", "fp32") != request["precision"]:
        raise UserError(f"cannot resume {run_dir}: it was run with --precision {stored.get('precision', 'fp32')}, "
                        f"this request is --precision {request['precision']}")
    if old["protocol"]["fingerprint"] != chosen.fingerprint:
        raise UserError(f"cannot resume {run_dir}: it was run under protocol {old['protocol']['name']} "
                        f"({old['protocol']['fingerprint']}), this request is {chosen.name} ({chosen.fingerprint})")
    differences = request_differences(stored, request)
    if differences:
        raise UserError(f"run folder {run_dir} holds another request: {'; '.join(differences)}; give another --out, "
                        f"or finish that run with `srbench run --resume {run_dir}`")
    return True


def _check_data(run_dir: Path, data: list[dict]) -> None:
    change = data_change(read_manifest(run_dir).get("datasets") or [], data)
    if change:
        raise UserError(f"cannot continue {run_dir}: {change}")


def _evaluate(run_dir: Path, setup: Setup, ctx: Context, chosen: Protocol, resolved, data: list[dict], scales,
              datasets, data_root, continuing: bool, progress: bool, workers: int, executor: str,
              ray_address: str | None, prefetch: int | None, drift_images: int, gpus_per_worker: float) -> RunResult:
    """The evaluation loop of a locked run folder; rows are saved as they come (see ``collect``)."""
    specs, precision = setup.specs, setup.precision
    done: set[tuple[str, str, str, str]] = set()
    drift = Drift(precision, drift_images if precision != "fp32" else 0)
    if continuing:
        old = read_manifest(run_dir)
        if ((old.get("precision") or {}).get("drift") or {}).get("images"):
            drift.images, drift.kept = 0, old["precision"]["drift"]  # measured by the interrupted session
        if (run_dir / "rows").is_dir() and any((run_dir / "rows").glob("*.parquet")):
            prev = load_rows(run_dir)
            ok = prev[prev["error"].fillna("") == ""]
            done = set(zip(ok["model"], ok["dataset"], ok["image"], ok["scale_text"]))
    manifest = _manifest(run_dir, setup, ctx, chosen, data, scales, datasets, data_root, continuing)
    manifest["precision"] = {**describe_precision(precision), "drift": drift.kept}
    write_manifest(run_dir, manifest)
    tqdm.write(f"protocol: {chosen.name} ({chosen.fingerprint})  device: {ctx.device_label}  results: {run_dir}",
               file=sys.stderr)

    per_image = len(scales) * len(specs)
    total = sum(len(d.items) for d in resolved) * per_image
    jobs, todo, skipped = [], dict.fromkeys((s.name for s in specs), 0), 0
    for ds in resolved:
        for item in ds.items:
            skip = frozenset((spec.name, scale_text(s)) for spec in specs for s in scales
                             if (spec.name, ds.name, item.name, scale_text(s)) in done)
            skipped += len(skip)
            for spec in specs:
                todo[spec.name] += sum((spec.name, scale_text(s)) not in skip for s in scales)
            if len(skip) < per_image:
                jobs.append((ds.name, item, skip))
    bar = Progress(total, skipped, todo, enabled=progress, parallel=workers)

    buffer: dict[str, list] = {}
    last_write = [time.monotonic()]
    reference_jobs = min(drift.images, len(jobs))
    timing = {"evaluations": 0, "forward_seconds": 0.0}

    def record_drift() -> None:
        manifest["precision"]["drift"] = drift.summary()
        write_manifest(run_dir, manifest)

    def flush(dataset: str) -> None:
        rows = buffer.pop(dataset, [])
        if rows:
            path = write_shard(run_dir, rows, dataset)
            last_write[0] = time.monotonic()
            bar.saved(path, rows, dataset)

    def collect(dataset: str, rows: list[dict], warns: list[str], force: bool = False,
                image_done: bool = True) -> None:
        """Rows as they come back (``image_done``: the image's last ones): their images saved at once, the rows
        themselves in a shard of the dataset's buffer once it holds FLUSH_IMAGES finished images, whenever
        FLUSH_SECONDS passed since the last shard (so a slow model loses at most the evaluations since then), and at
        the end."""
        for w in warns:
            tqdm.write(f"warning: {w}", file=sys.stderr)
        for r in rows:
            ref = r.pop(REFERENCE_KEY, None)
            if ref is not None:
                drift.add(r, ref)
            if r["seconds"] is not None:
                timing["evaluations"] += 1
                timing["forward_seconds"] += r["seconds"]
        bar.rows(rows)
        if image_done and drift.images and len(drift.seen) == reference_jobs and "models" not in (drift.kept or {}):
            drift.kept = drift.summary()  # the drift images are done: on disk before the long rest of the run
            record_drift()
        if rows:
            _save_images(run_dir, rows)  # before the shard: a stored row's image is on disk
            buffer.setdefault(dataset, []).extend(rows)
        if force or time.monotonic() - last_write[0] >= FLUSH_SECONDS:
            for name in list(buffer):
                flush(name)
        elif image_done and len({r["image"] for r in buffer.get(dataset, [])}) >= FLUSH_IMAGES:
            flush(dataset)

    started = time.perf_counter()
    interrupted = False
    try:
        if executor == "ray":
            from sr_bench.run.ray_executor import run_on_ray

            def lost(job, why: str) -> list[dict]:
                return unmeasured_rows(ctx, job[0], job[1], scales, job[2], why, "worker")

            run_on_ray(setup, jobs, scales, workers, bar, collect, ray_address, reference_jobs, gpus_per_worker,
                       lost=lost)
        elif workers == 1:
            from sr_bench.run.pipeline import evaluate_images

            ahead = prefetch if prefetch is not None else (2 if ctx.device.type == "cuda" else 0)
            with tf32_switches(precision, ctx.device):  # metrics on a helper thread see the forward's setting
                if ahead:
                    for dataset, rows, warns in evaluate_images(ctx, jobs, scales, ahead, reference_jobs,
                                                                tick=bar.update):
                        collect(dataset, rows, warns)
                else:  # each scale's rows reach collect as soon as they exist: a slow image is saved as it goes
                    for i, (dataset, item, skip) in enumerate(jobs):
                        def emit(rows, warns, dataset=dataset):
                            collect(dataset, rows, warns, image_done=False)

                        rows, warns = evaluate_image(ctx, dataset, item, scales, skip, tick=bar.update,
                                                     reference=i < reference_jobs, emit=emit)
                        collect(dataset, rows, warns)
        else:
            _run_pool(setup, jobs, scales, workers, bar, collect, reference_jobs)
    except KeyboardInterrupt:
        interrupted = True
    finally:  # whatever finished is kept, even on Ctrl-C
        for dataset in list(buffer):
            flush(dataset)
        bar.close()
        wall = time.perf_counter() - started
        # the share of the loop's wall time outside model forwards is what a faster loader could still win
        manifest["timing"] = {"wall_seconds": round(wall, 6), "evaluations": timing["evaluations"],
                              "forward_seconds": round(timing["forward_seconds"], 6),
                              "fp32_reference_seconds": round(drift.seconds_fp32, 6),
                              "images": len(jobs), "workers": workers, "executor": executor}
        if drift.images:
            manifest["precision"]["drift"] = drift.summary()
        write_manifest(run_dir, manifest)
    if interrupted:
        command = f"srbench run --resume {run_dir}" + (f" --workers {workers}" if workers > 1 else "") + (
            " --executor ray" if executor == "ray" else "")
        raise RunInterrupted(run_dir, command, bar.done, total)
    return RunResult(run_dir=run_dir, rows=load_rows(run_dir), protocol=chosen, metrics=tuple(ctx.metrics),
                     notes=ctx.notes, precision=manifest["precision"], timing=manifest["timing"])


def _run_pool(setup: Setup, jobs, scales, workers, bar, collect, reference_jobs: int = 0) -> None:
    # spawn, not fork: forking a process whose torch thread pools are running is unsafe
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(setup, os.getpid()))
    try:
        pending = {}
        queue = [(*job, i < reference_jobs) for i, job in enumerate(jobs)]
        while queue or pending:
            while queue and len(pending) < 2 * workers:  # a bounded window keeps results flowing in order-ish
                dataset, item, skip, reference = queue.pop(0)
                pending[pool.submit(_work, dataset, item, scales, skip, reference)] = (dataset, skip)
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                dataset, skip = pending.pop(fut)
                try:
                    rows, warns = fut.result()
                except BrokenProcessPool:
                    raise UserError("a worker process died (out of memory?); the finished images are saved, "
                                    "continue with `srbench run --resume RUN`") from None
                bar.update(len(rows))
                collect(dataset, rows, warns)
    except BaseException:
        stop_pool(pool)  # Ctrl-C or an error: the running images are abandoned, not waited for
        raise
    pool.shutdown(wait=True)


def _manifest(run_dir, setup: Setup, ctx: Context, chosen, data, scales, datasets, data_root, resumed) -> dict:
    manifest = {
        "run_id": run_dir.name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "request": _request(setup, chosen, datasets, scales, data_root),
        "models": [{"name": s.name, "checkpoint": s.checkpoint, "checkpoint_sha256": m.checkpoint_sha256,
                    "release": release_of(s.name, m.checkpoint_sha256 or ""),
                    "untrained": m.untrained, "config": json.loads(json.dumps(m.config, default=str))}
                   for s, m in ctx.models],
        "datasets": data,
        "scales": [scale_text(s) for s in scales],
        "protocol": {"name": chosen.name, "fingerprint": chosen.fingerprint, "rules": chosen.rules()},
        "metrics": list(ctx.metrics),
        "metric_info": {n: _info_json(n) for n in ctx.metrics},
        "metric_weights": json.loads(ctx.metric_prov),
        "images": ({"folder": IMAGES_DIR, "pattern": f"{IMAGES_DIR}/<model>/<dataset>/x<scale>/<image>.png",
                    "format": "png, 8-bit, lossless", "exact": quantises_to_integers(chosen)}
                   if setup.save_images else None),
        "device": ctx.device_label,
        "package_versions": package_versions(),
        "notes": ctx.notes,
    }
    if resumed:
        old = read_manifest(run_dir)
        manifest["created"] = old.get("created")
        manifest["resumed"] = [*old.get("resumed", []), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")]
    return manifest


def _info_json(name: str) -> dict:
    """A metric's declared metadata and where it comes from, as plain JSON (an infinite bound as "inf")."""
    info = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(metric_info(name)).items()}
    return {**info, "source": metric_source(name)}


def resume_run(run_dir: Path, device: str = "auto", progress: bool = True, workers: int = 1,
               executor: str = "local", ray_address: str | None = None, prefetch: int | None = None,
               gpus_per_worker: float = 0.0, max_memory: int | str | None = None) -> RunResult:
    """Finish an interrupted run with the request stored in its run.json."""
    path = Path(run_dir)
    if not (path / "run.json").is_file():
        raise UserError(f"cannot resume {str(path)!r}: no run.json there; give a run folder made by `srbench run`")
    req = read_manifest(path).get("request")
    if req is None:
        raise UserError(f"{path}/run.json has no stored request (made by an older sr_bench); rerun it instead")
    return run(models=req["models"], datasets=req["datasets"], scales=[parse_scale(s) for s in req["scales"]],
               protocol=req["protocol"], metrics=req["metrics"], data_root=req["data_root"], device=device,
               lpips_weights=req["lpips_weights"], plugins=tuple(req["plugins"]),
               allow_untrained=req["allow_untrained"], progress=progress, resume=path, workers=workers,
               model_opts=req.get("model_opts") or {}, executor=executor, ray_address=ray_address,
               save_images=bool(req.get("save_images")), precision=req.get("precision", "fp32"), prefetch=prefetch,
               gpus_per_worker=gpus_per_worker, tile=req.get("tile"), tile_overlap=req.get("tile_overlap"),
               max_memory=max_memory if max_memory is not None else req.get("max_memory"),
               profile=bool(req.get("profile")))
