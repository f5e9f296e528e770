"""The evaluator: one image -> rows, the same steps wherever it runs (this process, a pool worker, a Ray actor,
training validation, ``compare --visual``): decode once, the protocol's case per scale, then per (scale, model) the
forward and the metrics. ``evaluate_images`` moves decoding and metrics to a helper thread (on CUDA, on a stream of
its own, synchronised before anything is handed over) so that a GPU is not idle while the CPU decodes; the steps and
their inputs are the same, so the rows are the same numbers (``tests/test_runner.py``). Memory stays bounded: at most
``N`` prepared images and ``MAX_PENDING`` SR images waiting for their metrics.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError
from sr_bench.imaging.color import gray2rgb
from sr_bench.models.interface import Upscaler
from sr_bench.models.registry import release_of
from sr_bench.models.tiling import Tiling, halved
from sr_bench.protocols import HRSource, ImageTooSmall, Protocol
from sr_bench.run.context import Context
from sr_bench.run.cost import model_tiling, timed_forward
from sr_bench.run.grid import ModelSpec
from sr_bench.run.memory import ForwardMemory, MemoryBudgetExceeded
from sr_bench.run.precision import REFERENCE_KEY
from sr_bench.scales import scale_text
from sr_bench.store import METRIC_COLUMNS

IMAGE_KEY = "sr_png"  # a row's SR image (--save-images) on its way to the sink; never stored in the shard
MAX_PENDING = 4  # SR images whose metrics may be outstanding while the next forwards run


def new_row(ctx: Context, spec: ModelSpec, model: Upscaler, dataset: str, image: str, s: Fraction) -> dict:
    sha = model.checkpoint_sha256_for(s)
    return {
        "run_id": ctx.setup.run_id, "model": spec.name, "dataset": dataset, "image": image,
        "scale": float(s), "scale_text": scale_text(s), "protocol": ctx.protocol.name,
        "protocol_fingerprint": ctx.protocol.fingerprint, "strategy": model.strategy_for(s),
        "untrained": bool(model.untrained), "checkpoint_sha256": sha, "release": release_of(spec.name, sha),
        **dict.fromkeys((*METRIC_COLUMNS, *ctx.request.metric_names)), "seconds": None,
        "hr_height": None, "hr_width": None, "lr_height": None, "lr_width": None, "error": "", "error_kind": "",
        "device": ctx.device_label, "metric_weights": ctx.metric_prov, "package_versions": ctx.versions,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "tile": None, "tile_overlap": None, "tile_reason": "", "peak_memory": None, "parameters": None, "flops": None,
        "metric_errors": "",
    }


@dataclass
class Prepared:
    """One image decoded, with the protocol's case at every scale that has evaluations left."""

    dataset: str
    item: ImageItem
    warnings: list[str]
    cases: list  # (scale, [(spec, model)], case or None, why there is none)


def prepare_image(ctx: Context, dataset: str, item: ImageItem, scales: list[Fraction], skip: frozenset) -> Prepared:
    """The image as an HRSource on the run's device, and its case at each scale (or why it has none)."""
    prep, source = Prepared(dataset, item, [], []), None
    try:
        arr = item.load()
        source = HRSource(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(ctx.device, torch.float64))
    except UserError as e:
        prep.warnings.append(f"{dataset}/{item.name}: {e}")
        why = str(e)
    for s in scales:
        todo = [(spec, m) for spec, m in ctx.models if (spec.name, scale_text(s)) not in skip]
        if todo and source is None:
            prep.cases.append((s, todo, None, why))
        elif todo:
            try:
                prep.cases.append((s, todo, ctx.protocol.prepare(source, s), ""))
            except ImageTooSmall as e:
                prep.cases.append((s, todo, None, str(e)))
    return prep


def measure_image(ctx: Context, prep: Prepared, reference: bool, submit=lambda fn, *args: fn(*args),
                  tick=None) -> Iterator[list]:
    """Per scale, the rows of a prepared image: forwards here, metrics through ``submit(score, ...)`` (at once, or
    on a helper). ``reference``: each measured evaluation also runs in fp32 for the precision drift."""
    for s, todo, case, error in prep.cases:
        rows = []
        for spec, model in todo:
            row = new_row(ctx, spec, model, prep.dataset, prep.item.name, s)
            if case is None:
                row["error"], row["error_kind"] = error, "data"
            elif (sr := forward(row, model, case, s, ctx)) is not None:  # None: the row says why
                submit(score, row, sr, case, ctx, reference_forward(model, case, s, ctx) if reference else None)
            rows.append(row)
            if tick:
                tick(1)
        yield rows


def failures(prep: Prepared, rows: list[dict]) -> list[str]:
    """The warnings of measured evaluations that failed, or whose metrics failed (an unusable image's rows are said
    once, by ``prep.warnings``)."""
    warns = []
    for row in rows:
        where = f"{prep.dataset}/{prep.item.name} x{row['scale_text']} {row['model']}"
        if row["error"] and row["error_kind"] != "data":
            warns.append(f"{where}: {row['error']}")
        elif row.get("metric_errors"):
            warns += [f"{where}: metric {name} failed ({why}); the other metrics are kept"
                      for name, why in json.loads(row["metric_errors"]).items()]
    return warns


def evaluate_image(ctx: Context, dataset: str, item: ImageItem, scales: list[Fraction],
                   skip: frozenset = frozenset(), tick=None, reference: bool = False) -> tuple[list[dict], list[str]]:
    """Rows for one image at every scale and model not in ``skip`` ({(model, scale_text)}), and warnings.
    ``reference``: also run each evaluation in fp32 for the precision drift (``REFERENCE_KEY`` on the rows)."""
    prep = prepare_image(ctx, dataset, item, scales, skip)
    rows = [row for scale in measure_image(ctx, prep, reference, tick=tick) for row in scale]
    return rows, prep.warnings + failures(prep, rows)


def evaluate_images(ctx: Context, jobs: list, scales: list[Fraction], prefetch: int, reference_jobs: int, tick,
                    emit) -> Iterator[tuple[str, list[dict], list[str]]]:
    """(dataset, rows, warnings) per job [(dataset, ImageItem, skip)], in order. The first ``reference_jobs`` jobs
    also run in fp32 for the precision drift. ``prefetch`` 0 is the plain sequential loop, where ``emit(dataset,
    rows, warnings)`` receives each scale's rows as soon as they exist (a slow image is saved as it goes)."""
    if prefetch <= 0:
        for i, (dataset, item, skip) in enumerate(jobs):
            prep = prepare_image(ctx, dataset, item, scales, skip)
            warns = prep.warnings
            for rows in measure_image(ctx, prep, i < reference_jobs, tick=tick):
                emit(dataset, rows, warns + failures(prep, rows))
                warns = []
            yield dataset, [], warns
        return
    side = torch.cuda.Stream(ctx.device) if ctx.device.type == "cuda" else None

    def on_helper(fn, *args):
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            out = fn(*args)
            if side is not None:
                side.synchronize()
        return out

    # the same intra-op thread count as this thread: the same split of every reduction, so the same bits
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="srbench-prefetch",
                                initializer=torch.set_num_threads, initargs=(torch.get_num_threads(),))
    prepared: deque[tuple[Future, int]] = deque()
    pending: deque[Future] = deque()
    waiting: deque[tuple[Prepared, list, list[Future]]] = deque()  # measured images: (prep, rows, metrics)
    upcoming = iter(enumerate(jobs))

    def refill() -> None:
        for i, (dataset, item, skip) in upcoming:
            prepared.append((helper.submit(on_helper, prepare_image, ctx, dataset, item, scales, skip), i))
            if len(prepared) >= prefetch:
                return

    def result(prep, rows, futures):
        for f in futures:
            f.result()  # re-raises a bug in the helper; measurement errors are already on the rows
        return prep.dataset, rows, prep.warnings + failures(prep, rows)

    try:
        refill()
        while prepared:
            fut, index = prepared.popleft()
            prep, futures = fut.result(), []
            refill()  # the helper decodes the next images while this one runs

            def submit(fn, *args, futures=futures):
                while len(pending) >= MAX_PENDING:
                    pending.popleft().result()
                pending.append(helper.submit(on_helper, fn, *args))
                futures.append(pending[-1])

            rows = [row for scale in measure_image(ctx, prep, index < reference_jobs, submit, tick) for row in scale]
            waiting.append((prep, rows, futures))
            while waiting and (all(f.done() for f in waiting[0][2]) or len(waiting) > 1):
                yield result(*waiting.popleft())
        while waiting:
            yield result(*waiting.popleft())
    finally:
        for f, _ in prepared:
            f.cancel()
        helper.shutdown(wait=True, cancel_futures=True)


def unmeasured_rows(ctx: Context, dataset: str, item: ImageItem, scales: list[Fraction], skip: frozenset,
                    error: str, kind: str) -> list[dict]:
    """Error rows for every evaluation of an image that could not be run at all (e.g. it took its workers down)."""
    return [{**new_row(ctx, spec, model, dataset, item.name, s), "error": error, "error_kind": kind}
            for s in scales for spec, model in ctx.models if (spec.name, scale_text(s)) not in skip]


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


def forward(row: dict, model: Upscaler, case, s: Fraction, ctx: Context) -> torch.Tensor | None:
    """Fill the row's sizes, ``seconds``, tiling and memory (and with ``--profile`` its cost); the quantised SR, or
    None with the row's error set. A forward that runs out of memory (CUDA, or ``--max-memory`` on CPU) is retried
    on tiles of half the size, down to ``tiling.MIN_TILE``."""
    lr_size = (case.lr.shape[-2], case.lr.shape[-1])
    row.update(hr_height=case.sr_size[0], hr_width=case.sr_size[1], lr_height=lr_size[0], lr_width=lr_size[1])
    setup, budget = ctx.request, ctx.setup.max_memory
    tiling = model_tiling(model, setup.tile, setup.tile_overlap)
    reason = "--tile" if tiling else ""
    measure = model.learned or setup.profile  # a trim before an interpolation's forward costs more than it does
    try:
        while True:
            memory = (ForwardMemory(ctx.device, release=measure, budget=budget)
                      if measure or budget is not None else None)
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
    try:
        tiling = model_tiling(model, ctx.request.tile, ctx.request.tile_overlap)
        return super_resolve_case(model, case, s, ctx.protocol, "fp32", tiling)
    except Exception:  # the drift then skips this evaluation; the row itself is unaffected
        return None


def score(row: dict, sr: torch.Tensor, case, ctx: Context, ref=None) -> None:
    """Each metric of ``sr`` into its column. One that raises leaves its column empty and its error in
    ``metric_errors``, the others keep their values (pyiqa's MS-SSIM refuses images under 176 px; PSNR still holds);
    the row's ``error`` is set only when no metric gave a value. With ``ref`` (fp32 SR, seconds): the drift's PSNRs."""
    try:
        views = ctx.protocol.views(sr, case)
    except Exception as e:  # one image's failure must not lose the run; the row says what happened
        row["error"], row["error_kind"] = f"{type(e).__name__}: {e}", "metric"
        return
    failed = {}
    with torch.inference_mode():
        for name, metric in ctx.metrics.items():
            try:
                row[name] = metric_value(name, metric.compute(*views.pair(metric.info.view)))
            except Exception as e:
                row[name] = None
                failed[name] = f"{type(e).__name__}: {str(e).strip()}"
        if failed:
            row["metric_errors"] = json.dumps(failed, sort_keys=True)
            if len(failed) == len(ctx.metrics):
                row["error"], row["error_kind"] = "; ".join(f"{n}: {why}" for n, why in failed.items()), "metric"
        elif ref is not None:
            psnr = ctx.drift_psnr
            row[REFERENCE_KEY] = {"psnr": psnr.compute(*views.pair(psnr.info.view)),
                                  "psnr_fp32": psnr.compute(*ctx.protocol.views(ref[0], case).pair(psnr.info.view)),
                                  "seconds_fp32": ref[1]}


def png_bytes(sr: torch.Tensor) -> bytes:
    """A quantised SR (C, H, W, 0..255) as a lossless 8-bit PNG (exact when the protocol quantises to integers)."""
    arr = sr.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


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
