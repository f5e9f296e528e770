"""The evaluation loop of one process with the model kept busy: ``srbench run --workers 1 --prefetch N``.

``runner.evaluate_image`` does, per image: decode, LR making per scale (``protocol.prepare``), then per (scale, model)
the forward and the metrics, one after the other, so a GPU idles while the CPU decodes and while the metrics run.
Here one helper thread decodes and prepares the next ``N`` images and computes the metrics of finished forwards,
while this thread runs only forwards. Every step is the same function ``evaluate_image`` calls, on the same inputs,
so the rows are the same numbers (``tests/test_runner.py`` compares them with the sequential path).

On CUDA the helper queues its work on a stream of its own, so its kernels run beside the forward's, and it
synchronises that stream before handing anything over; the forward's timing waits on its own stream only
(``super_resolve_case``). Memory stays bounded: at most ``N`` prepared images and ``MAX_PENDING`` SR images waiting
for their metrics.
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator

import torch

from sr_bench.data.items import ImageItem
from sr_bench.run.runner import (Context, _row, evaluate_image, forward, load_source, prepare_case,
                                 reference_forward, row_warning, score)
from sr_bench.scales import scale_text

MAX_PENDING = 4  # SR images whose metrics may be outstanding while the next forwards run


@dataclass
class _Prepared:
    warnings: list[str]
    cases: list  # (scale, [(spec, model)], case or None, error)


@dataclass
class _Image:
    dataset: str
    item: ImageItem
    warnings: list[str]
    rows: list = field(default_factory=list)  # (row, spec, measured)
    futures: list = field(default_factory=list)

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def result(self) -> tuple[list[dict], list[str]]:
        for f in self.futures:
            f.result()  # re-raises a bug in the helper; measurement errors are already on the rows
        warns = list(self.warnings)
        warns += [row_warning(self.dataset, self.item, spec, row) for row, spec, measured in self.rows
                  if measured and row["error"]]
        return [row for row, _, _ in self.rows], warns


def evaluate_images(ctx: Context, jobs: list, scales: list[Fraction], prefetch: int, reference_jobs: int = 0,
                    tick=None) -> Iterator[tuple[str, list[dict], list[str]]]:
    """(dataset, rows, warnings) per job [(dataset, ImageItem, skip)], in order. The first ``reference_jobs`` jobs
    also run in fp32 for the precision drift. ``prefetch`` 0 is the plain sequential loop."""
    if prefetch <= 0:
        for i, (dataset, item, skip) in enumerate(jobs):
            rows, warns = evaluate_image(ctx, dataset, item, scales, skip, tick=tick, reference=i < reference_jobs)
            yield dataset, rows, warns
        return
    threads = torch.get_num_threads()
    side = torch.cuda.Stream(ctx.device) if ctx.device.type == "cuda" else None

    def on_helper(fn, *args):
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            out = fn(*args)
            if side is not None:
                side.synchronize()
        return out

    def prepare(item: ImageItem, dataset: str, skip: frozenset) -> _Prepared:
        warns: list[str] = []
        source, load_error = load_source(ctx, dataset, item, warns)
        cases = []
        for s in scales:
            todo = [(spec, m) for spec, m in ctx.models if (spec.name, scale_text(s)) not in skip]
            if todo:
                cases.append((s, todo, *prepare_case(ctx, source, load_error, s)))
        return _Prepared(warns, cases)

    # the same intra-op thread count as this thread: the same split of every reduction, so the same bits
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="srbench-prefetch",
                                initializer=torch.set_num_threads, initargs=(threads,))
    prepared: deque[tuple[Future, int, str, ImageItem]] = deque()
    pending: deque[Future] = deque()
    waiting: deque[_Image] = deque()
    upcoming = iter(enumerate(jobs))

    def refill() -> None:
        while len(prepared) < prefetch:
            nxt = next(upcoming, None)
            if nxt is None:
                return
            i, (dataset, item, skip) = nxt
            prepared.append((helper.submit(on_helper, prepare, item, dataset, skip), i, dataset, item))

    try:
        refill()
        while prepared:
            fut, index, dataset, item = prepared.popleft()
            prep = fut.result()
            refill()  # the helper decodes the next images while this one runs
            image = _Image(dataset, item, prep.warnings)
            for s, todo, case, error in prep.cases:
                for spec, model in todo:
                    row = _row(ctx, spec, model, dataset, item.name, s)
                    if case is None:
                        row["error"], row["error_kind"] = error, "data"
                        image.rows.append((row, spec, False))
                    else:
                        sr = forward(row, model, case, s, ctx)
                        image.rows.append((row, spec, True))
                        if sr is None:
                            row["error_kind"] = "model"
                        else:
                            ref = reference_forward(model, case, s, ctx) if index < reference_jobs else None
                            while len(pending) >= MAX_PENDING:
                                pending.popleft().result()
                            pending.append(helper.submit(on_helper, score, row, sr, case, ctx, ref))
                            image.futures.append(pending[-1])
                    if tick:
                        tick(1)
            waiting.append(image)
            while waiting and (waiting[0].done() or len(waiting) > 1):
                done = waiting.popleft()
                yield done.dataset, *done.result()
        while waiting:
            done = waiting.popleft()
            yield done.dataset, *done.result()
    finally:
        for f, *_ in prepared:
            f.cancel()
        helper.shutdown(wait=True, cancel_futures=True)
