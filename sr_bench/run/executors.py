"""Executors: who evaluates a run's images (README, "Executors"). Each is a function ``(plan, sink)`` that evaluates
``plan.jobs`` and hands every image's rows to ``sink.collect`` (and ticks ``sink.tick`` as evaluations finish):
``run_local`` (this process, the prefetching loop of ``evaluation.evaluate_images``), ``run_pool`` (N spawned
processes, each rebuilding the context with one intra-op thread and dying with its parent) and ``run_on_ray``
(``--executor ray``: each actor rebuilds the context once; the driver ships image bytes, so nodes need no copy of the
datasets, while checkpoints and ``--plugin`` files are opened by path there; Ray is imported only then, the ``ray``
extra).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError
from sr_bench.run.context import Context, Setup, worker_context
from sr_bench.run.evaluation import evaluate_image, evaluate_images, unmeasured_rows
from sr_bench.run.levers import engaged
from sr_bench.run.precision import tf32_switches
from sr_bench.run.processes import become_worker, stop_pool
from sr_bench.run.request import RunOptions


@dataclass
class Plan:
    """What an executor evaluates: ``jobs`` [(dataset, ImageItem, skip)]; the first ``reference_jobs`` also in fp32."""

    ctx: Context
    jobs: list
    reference_jobs: int
    options: RunOptions


def run_local(plan: Plan, sink) -> None:
    ctx = plan.ctx
    ahead = plan.options.prefetch if plan.options.prefetch is not None else (2 if ctx.device.type == "cuda" else 0)
    each_scale = functools.partial(sink.collect, image_done=False)  # a slow image is saved as it goes
    # TF32 switches held for the loop (metrics on a helper thread see the forward's setting); levers engaged once
    with tf32_switches(ctx.request.precision, ctx.device), engaged(ctx, sink.manifest):
        for dataset, rows, warns in evaluate_images(ctx, plan.jobs, ctx.request.scales, ahead, plan.reference_jobs,
                                                    tick=sink.tick, emit=each_scale):
            sink.collect(dataset, rows, warns)


def run_pool(plan: Plan, sink) -> None:
    # spawn, not fork: forking a process whose torch thread pools are running is unsafe
    pool = ProcessPoolExecutor(max_workers=plan.options.workers, mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(plan.ctx.setup, os.getpid()))
    try:
        # the pool hands the images to its workers in this order, so results come back in order-ish
        futures = {pool.submit(_work, dataset, item, skip, i < plan.reference_jobs): dataset
                   for i, (dataset, item, skip) in enumerate(plan.jobs)}
        for fut in as_completed(futures):
            try:
                rows, warns = fut.result()
            except BrokenProcessPool:
                raise UserError("a worker process died (out of memory?); the finished images are saved, "
                                "continue with `srbench run --resume RUN`") from None
            sink.tick(len(rows))
            sink.collect(futures[fut], rows, warns)
    except BaseException:
        stop_pool(pool)  # Ctrl-C or an error: the running images are abandoned, not waited for
        raise
    pool.shutdown(wait=True)


def executor_for(options: RunOptions):
    if options.executor == "ray":
        return run_on_ray
    return run_local if options.workers == 1 else run_pool


_WORKER: Context | None = None


def _init_worker(setup: Setup, parent_pid: int) -> None:
    global _WORKER
    become_worker(parent_pid)  # first: a worker must not outlive a parent killed while it loads its models
    _WORKER = worker_context(setup)[0]


def _work(dataset: str, item: ImageItem, skip: frozenset, reference: bool = False):
    return evaluate_image(_WORKER, dataset, item, _WORKER.request.scales, skip, reference=reference)


MAX_ATTEMPTS = 3  # workers one image may take down before its rows record the failure and the run moves on


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'sr_bench[ray]' (or ray==2.60.0)") from None
    return ray


class ImageWorker:
    """One Ray actor: a live evaluation context, fed image bytes."""

    def __init__(self, setup):
        self.ctx, self.levers = worker_context(setup)
        self.scratch = Path(tempfile.mkdtemp(prefix="srbench-ray-"))

    def evaluate(self, dataset: str, name: str, path: str, data: bytes | None, skip: frozenset, reference=False):
        # the same decoder reads the same bytes as in a local run: they are written under the original file name;
        # a file unreadable on the driver is read here, so that the error row is the local run's
        local = None if data is None else self.scratch / Path(path).name
        if local is not None:
            local.write_bytes(data)
        try:
            item = ImageItem(name=name, path=local or Path(path))
            return evaluate_image(self.ctx, dataset, item, self.ctx.request.scales, skip, reference=reference)
        finally:
            if local is not None:
                local.unlink(missing_ok=True)

    def placement(self) -> dict:
        """Where Ray put this actor (its GPU ids: two actors of --gpus-per-worker 0.5 share one) and what its
        speed levers did, for run.json's execution entry."""
        ray = _ray()
        return {"node": ray.get_runtime_context().get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": self.ctx.device_label,
                **self.levers}


def run_on_ray(plan, sink) -> None:
    """Evaluate ``plan.jobs`` on ``--workers`` actors. A worker that dies (killed, out of memory, its node lost)
    loses only its current image: the image goes to another worker and a new actor takes the dead one's place; an
    image that took ``MAX_ATTEMPTS`` workers down gets error rows (kind ``worker``) instead."""
    ray, jobs = _ray(), plan.jobs
    workers, address, gpus_per_worker = plan.options.workers, plan.options.ray_address, plan.options.gpus_per_worker
    started_here = not ray.is_initialized()
    if started_here:
        try:
            where = {"address": address} if address else {"num_cpus": workers}  # else a local cluster for this run
            ray.init(**where, include_dashboard=False, log_to_driver=False)
        except ConnectionError as e:
            raise UserError(f"cannot reach the Ray cluster at {address!r} ({e}); start one with `ray start --head` "
                            f"or drop --ray-address to run a local cluster") from None
    actor_cls = ray.remote(num_cpus=1, num_gpus=gpus_per_worker)(ImageWorker)
    actors: list = []
    try:
        cpus, gpus = int(ray.cluster_resources().get("CPU", 0)), float(ray.cluster_resources().get("GPU", 0))
        if cpus < workers:
            raise UserError(f"the Ray cluster has {cpus} CPU(s) for --workers {workers}; lower --workers")
        if gpus_per_worker and gpus < workers * gpus_per_worker:
            raise UserError(f"the Ray cluster has {gpus:g} GPU(s) for --workers {workers} x --gpus-per-worker "
                            f"{gpus_per_worker:g}; lower --workers or --gpus-per-worker (a fraction such as 0.5 "
                            f"shares a GPU)")
        actors = [actor_cls.remote(plan.ctx.setup) for _ in range(min(workers, len(jobs)))]
        placements = [a.placement.remote() for a in actors]  # each actor runs it before its first image
        idle = list(actors)
        queue = deque(range(len(jobs)))
        running: dict = {}  # object ref -> (actor, job index)
        deaths: dict[int, list[str]] = {}  # job index -> why each worker running it died
        spare = workers * MAX_ATTEMPTS  # replacement actors a run may start
        while queue or running:
            while idle and queue:  # one image per actor at a time; bytes read only when it is sent
                i = queue.popleft()
                actor = idle.pop()
                dataset, item, skip = jobs[i]
                try:
                    data = Path(item.path).read_bytes()
                except OSError:
                    data = None
                ref = actor.evaluate.remote(dataset, item.name, str(item.path), data, skip, i < plan.reference_jobs)
                running[ref] = (actor, i)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, i = running.pop(ref)
            dataset, item, skip = jobs[i]
            try:
                rows, warns = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                if e.actor_init_failed:  # the same failure awaits every replacement: say it once
                    last = [line.strip() for line in str(e).strip().splitlines() if line.strip()] or ["no message"]
                    raise UserError(f"a Ray worker could not start: {last[-1]}") from None
                actors.remove(actor)
                ray.kill(actor)
                why = deaths.setdefault(i, [])
                why.append(type(e).__name__)
                if len(why) < MAX_ATTEMPTS:
                    queue.appendleft(i)  # first in line for the next free worker
                else:
                    rows = unmeasured_rows(plan.ctx, dataset, item, plan.ctx.request.scales, skip,
                                           f"the Ray worker evaluating this image died {len(why)} times "
                                           f"({', '.join(why)}); run it alone to see why, or resume to retry", "worker")
                    sink.tick(len(rows))
                    sink.collect(dataset, rows, [f"{dataset}/{item.name}: took {len(why)} Ray workers down"])
                if spare > 0 and (queue or running):
                    spare -= 1
                    actors.append(actor_cls.remote(plan.ctx.setup))
                    idle.append(actors[-1])
                elif not actors:
                    raise UserError("every Ray worker died; the finished images are saved, continue with "
                                    "`srbench run --resume RUN --executor ray`") from None
                continue
            idle.append(actor)
            sink.tick(len(rows))
            sink.collect(dataset, rows, warns)
        found = []  # the first actors' placements, less those that died before answering
        for ref in placements:
            with contextlib.suppress(Exception):  # a dead or hung actor: not worth failing a finished run
                found.append(ray.get(ref, timeout=30))
        if sink.manifest.get("execution"):
            sink.manifest["execution"][-1]["ray_actors"] = found
    finally:
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()
