"""Executors: who evaluates a run's images. Each is a function ``(plan, sink)`` that evaluates ``plan.jobs`` and hands
every image's rows to ``sink.collect`` (and ticks ``sink.tick`` as evaluations finish).

- ``local``, one worker: this process, the evaluator's prefetching loop (``evaluation.evaluate_images``);
- ``local``, N workers: a pool of N spawned processes, each rebuilding the context from the same ``Setup`` with one
  intra-op thread (each dies with its parent);
- ``ray``: N actors on a Ray cluster (``sr_bench.run.ray_executor``).
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import get_context

from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError
from sr_bench.run.context import Context, Setup, build_context
from sr_bench.run.evaluation import evaluate_image, evaluate_images, unmeasured_rows
from sr_bench.run.levers import engage, engaged, record
from sr_bench.run.memory import keep_freed_memory
from sr_bench.run.precision import hold_tf32_switches, tf32_switches
from sr_bench.run.processes import exit_with_parent, ignore_interrupts, stop_pool
from sr_bench.run.request import RunOptions


@dataclass
class Plan:
    """What an executor evaluates: ``jobs`` [(dataset, ImageItem, skip)] at ``scales``; the first
    ``reference_jobs`` also in fp32 (precision drift)."""

    setup: Setup
    ctx: Context
    jobs: list
    scales: list[Fraction]
    reference_jobs: int
    options: RunOptions

    def lost(self, job, why: str) -> list[dict]:
        """Error rows for a job no worker could finish."""
        return unmeasured_rows(self.ctx, job[0], job[1], self.scales, job[2], why, "worker")


def run_local(plan: Plan, sink) -> None:
    ctx = plan.ctx
    ahead = plan.options.prefetch if plan.options.prefetch is not None else (2 if ctx.device.type == "cuda" else 0)

    def each_scale(dataset, rows, warns):  # a slow image is saved as it goes
        sink.collect(dataset, rows, warns, image_done=False)

    # TF32 switches held for the loop (metrics on a helper thread see the forward's setting); levers engaged once
    with tf32_switches(ctx.request.precision, ctx.device), engaged(ctx) as report:
        record(sink.manifest, report)
        for dataset, rows, warns in evaluate_images(ctx, plan.jobs, plan.scales, ahead, plan.reference_jobs,
                                                    tick=sink.tick, emit=each_scale):
            sink.collect(dataset, rows, warns)


def run_pool(plan: Plan, sink) -> None:
    workers = plan.options.workers
    # spawn, not fork: forking a process whose torch thread pools are running is unsafe
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(plan.setup, os.getpid()))
    try:
        pending = {}
        queue = [(*job, i < plan.reference_jobs) for i, job in enumerate(plan.jobs)]
        while queue or pending:
            while queue and len(pending) < 2 * workers:  # a bounded window keeps results flowing in order-ish
                dataset, item, skip, reference = queue.pop(0)
                pending[pool.submit(_work, dataset, item, plan.scales, skip, reference)] = dataset
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                dataset = pending.pop(fut)
                try:
                    rows, warns = fut.result()
                except BrokenProcessPool:
                    raise UserError("a worker process died (out of memory?); the finished images are saved, "
                                    "continue with `srbench run --resume RUN`") from None
                sink.tick(len(rows))
                sink.collect(dataset, rows, warns)
    except BaseException:
        stop_pool(pool)  # Ctrl-C or an error: the running images are abandoned, not waited for
        raise
    pool.shutdown(wait=True)


def run_ray(plan: Plan, sink) -> None:
    from sr_bench.run.ray_executor import run_on_ray

    run_on_ray(plan.setup, plan.jobs, plan.scales, plan.options.workers, sink, plan.options.ray_address,
               plan.reference_jobs, plan.options.gpus_per_worker, lost=plan.lost)


def executor_for(options: RunOptions):
    if options.executor == "ray":
        return run_ray
    return run_local if options.workers == 1 else run_pool


_WORKER: Context | None = None


def _init_worker(setup: Setup, parent_pid: int | None = None) -> None:
    global _WORKER
    if parent_pid is not None:  # first: a worker must not outlive a parent killed while it loads its models
        exit_with_parent(parent_pid)
        ignore_interrupts()
    keep_freed_memory()
    _WORKER = build_context(setup)
    hold_tf32_switches(setup.request.precision, _WORKER.device)  # this process only evaluates
    engage(_WORKER)


def _work(dataset: str, item: ImageItem, scales: list[Fraction], skip: frozenset, reference: bool = False):
    return evaluate_image(_WORKER, dataset, item, scales, skip, reference=reference)
