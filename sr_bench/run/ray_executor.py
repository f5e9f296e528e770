"""Spread a run's images over a Ray cluster: ``srbench run --executor ray [--ray-address ADDR] --workers N``.

Each of the N actors rebuilds the models, metrics and protocol once from the run's ``Setup`` (as the local process
pool does) and then evaluates whole images. The driver reads every image file and ships its bytes, so nodes need no
shared copy of the datasets; checkpoints and ``--plugin`` files are opened by path on the nodes and must exist there.
Rows come back to the driver, which writes the Parquet shards exactly as a local run does, so ``--resume`` and every
report work unchanged. A worker that dies costs only its current image, which another worker retries
(``run_on_ray``). Ray is imported only here (the ``ray`` extra).

``--gpus-per-worker G`` makes each actor request G GPUs (a fraction shares one GPU between actors); Ray then sets
the actor's CUDA_VISIBLE_DEVICES, and ``--device auto`` (or cuda) runs its models there. run.json's ``execution``
entry lists each actor's node and GPU ids (``ray_actors``), so a run shows which actors shared a GPU.
"""

from __future__ import annotations

import tempfile
from collections import deque
from fractions import Fraction
from pathlib import Path

from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'sr_bench[ray]' (or ray==2.60.0)") from None
    return ray


class ImageWorker:
    """One Ray actor: a live evaluation context, fed image bytes."""

    def __init__(self, setup, threads: int):
        import torch

        from sr_bench.run.context import build_context
        from sr_bench.run.memory import keep_freed_memory
        from sr_bench.run.precision import check_precision, hold_tf32_switches

        keep_freed_memory()
        torch.set_num_threads(threads)
        self.ctx = build_context(setup)
        check_precision(setup.request.precision, self.ctx.device.type)
        hold_tf32_switches(setup.request.precision, self.ctx.device)  # this process only evaluates
        from sr_bench.run.levers import engage

        self.levers = engage(self.ctx)
        self.scratch = Path(tempfile.mkdtemp(prefix="srbench-ray-"))

    def evaluate(self, dataset: str, name: str, path: str, data: bytes | None, scales: list[Fraction],
                 skip: frozenset, reference: bool = False):
        from sr_bench.run.evaluation import evaluate_image

        if data is None:  # unreadable on the driver: the node's own attempt gives the local run's error row
            item = ImageItem(name=name, path=Path(path))
            return dataset, evaluate_image(self.ctx, dataset, item, scales, skip, reference=reference)
        # the same decoder reads the same bytes as in a local run: write them under the original file name
        local = self.scratch / Path(path).name
        local.write_bytes(data)
        try:
            item = ImageItem(name=name, path=local)
            return dataset, evaluate_image(self.ctx, dataset, item, scales, skip, reference=reference)
        finally:
            local.unlink(missing_ok=True)

    def device(self) -> str:
        return self.ctx.device_label

    def placement(self) -> dict:
        """Where Ray put this actor (its GPU ids: two actors of --gpus-per-worker 0.5 share one) and what its
        speed levers did, for run.json's execution entry."""
        import os

        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": self.ctx.device_label,
                **self.levers}


MAX_ATTEMPTS = 3  # workers one image may take down before its rows record the failure and the run moves on


def run_on_ray(setup, jobs, scales, workers: int, sink, address: str | None = None, reference_jobs: int = 0,
               gpus_per_worker: float = 0.0, lost=None) -> None:
    """Evaluate ``jobs`` [(dataset, ImageItem, skip)] on ``workers`` actors; each image's rows go to ``sink.collect``.
    The first ``reference_jobs`` jobs also run in fp32 (precision drift); each actor requests ``gpus_per_worker``.

    A worker that dies (killed, out of memory, its node lost) loses only its current image: the image goes to
    another worker and a new actor takes the dead one's place. An image that took ``MAX_ATTEMPTS`` workers down gets
    ``lost(job, why)`` error rows instead (without ``lost``: a UserError)."""
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:  # a local cluster just for this run, one CPU per worker
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        except ConnectionError as e:
            raise UserError(f"cannot reach the Ray cluster at {address!r} ({e}); start one with `ray start --head` "
                            f"or drop --ray-address to run a local cluster") from None
    available = int(ray.cluster_resources().get("CPU", 0))
    gpus = float(ray.cluster_resources().get("GPU", 0))
    problem = None
    if available < workers:
        problem = f"the Ray cluster has {available} CPU(s) for --workers {workers}; lower --workers"
    elif gpus_per_worker and gpus < workers * gpus_per_worker:
        problem = (f"the Ray cluster has {gpus:g} GPU(s) for --workers {workers} x --gpus-per-worker "
                   f"{gpus_per_worker:g}; lower --workers or --gpus-per-worker (a fraction such as 0.5 shares a GPU)")
    if problem:
        if started_here:
            ray.shutdown()
        raise UserError(problem)
    actor_cls = ray.remote(num_cpus=1, num_gpus=gpus_per_worker)(ImageWorker)
    actors = [actor_cls.remote(setup, 1) for _ in range(min(workers, len(jobs)))]
    placements = [a.placement.remote() for a in actors]  # each actor runs it before its first image
    idle = list(actors)
    queue = deque(range(len(jobs)))
    running: dict = {}  # object ref -> (actor, job index)
    deaths: dict[int, list[str]] = {}  # job index -> why each worker running it died
    spare = workers * MAX_ATTEMPTS  # replacement actors a run may start
    try:
        while queue or running:
            while idle and queue:  # one image per actor at a time; bytes read only when it is sent
                i = queue.popleft()
                actor = idle.pop()
                dataset, item, skip = jobs[i]
                try:
                    data = Path(item.path).read_bytes()
                except OSError:
                    data = None
                ref = actor.evaluate.remote(dataset, item.name, str(item.path), data, scales, skip, i < reference_jobs)
                running[ref] = (actor, i)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, i = running.pop(ref)
            try:
                dataset, (rows, warns) = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                if e.actor_init_failed:  # the same failure awaits every replacement: say it once
                    raise UserError(f"a Ray worker could not start: {_last_line(str(e))}") from None
                actors.remove(actor)
                ray.kill(actor)
                why = deaths.setdefault(i, [])
                why.append(type(e).__name__)
                if len(why) < MAX_ATTEMPTS:
                    queue.appendleft(i)  # first in line for the next free worker
                elif lost is not None:
                    dataset, item, skip = jobs[i]
                    rows = lost(jobs[i], f"the Ray worker evaluating this image died {len(why)} times "
                                         f"({', '.join(why)}); run it alone to see why, or resume to retry")
                    sink.tick(len(rows))
                    sink.collect(dataset, rows, [f"{dataset}/{item.name}: took {len(why)} Ray workers down"])
                else:
                    raise UserError(f"image {jobs[i][0]}/{jobs[i][1].name} took {len(why)} Ray workers down; the "
                                    f"finished images are saved, continue with `srbench run --resume RUN "
                                    f"--executor ray`") from None
                if spare > 0 and (queue or running):
                    spare -= 1
                    actors.append(actor_cls.remote(setup, 1))
                    idle.append(actors[-1])
                elif not actors:
                    raise UserError("every Ray worker died; the finished images are saved, continue with "
                                    "`srbench run --resume RUN --executor ray`") from None
                continue
            idle.append(actor)
            sink.tick(len(rows))
            sink.collect(dataset, rows, warns)
        _record_placements(ray, placements, sink)
    finally:
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()


def _record_placements(ray, placements: list, sink) -> None:
    """The first actors' placements into this session's execution entry (an actor that died before answering is
    left out)."""
    found = []
    for ref in placements:
        try:
            found.append(ray.get(ref, timeout=30))
        except Exception:  # a dead or hung actor: its placement is not worth failing a finished run
            continue
    if sink.manifest.get("execution"):
        sink.manifest["execution"][-1]["ray_actors"] = found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
