"""Spread a run's images over a Ray cluster: ``srbench run --executor ray [--ray-address ADDR] --workers N``.

Each of the N actors rebuilds the models, metrics and protocol once from the run's ``Setup`` (as the local process
pool does) and then evaluates whole images. The driver reads every image file and ships its bytes, so nodes need no
shared copy of the datasets; checkpoints and ``--plugin`` files are opened by path on the nodes and must exist there.
Rows come back to the driver, which writes the Parquet shards exactly as a local run does, so ``--resume`` and every
report work unchanged. Ray is imported only here (the ``ray`` extra).

``--gpus-per-worker G`` makes each actor request G GPUs (a fraction shares one GPU between actors); Ray then sets
the actor's CUDA_VISIBLE_DEVICES, and ``--device auto`` (or cuda) runs its models there.
"""

from __future__ import annotations

import tempfile
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

        from sr_bench.run.memory import keep_freed_memory
        from sr_bench.run.precision import check_precision, hold_tf32_switches
        from sr_bench.run.runner import build_context

        keep_freed_memory()
        torch.set_num_threads(threads)
        self.ctx = build_context(setup)
        check_precision(setup.precision, self.ctx.device.type)
        hold_tf32_switches(setup.precision, self.ctx.device)  # this process only evaluates
        self.scratch = Path(tempfile.mkdtemp(prefix="srbench-ray-"))

    def evaluate(self, dataset: str, name: str, path: str, data: bytes | None, scales: list[Fraction],
                 skip: frozenset, reference: bool = False):
        from sr_bench.run.runner import evaluate_image

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


def run_on_ray(setup, jobs, scales, workers: int, bar, collect, address: str | None = None, reference_jobs: int = 0,
               gpus_per_worker: float = 0.0) -> None:
    """Evaluate ``jobs`` [(dataset, ImageItem, skip)] on ``workers`` actors; ``collect(dataset, rows, warns)`` each.
    The first ``reference_jobs`` jobs also run in fp32 (precision drift); each actor requests ``gpus_per_worker``."""
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
    actors = [actor_cls.remote(setup, 1) for _ in range(workers)]
    pool = ray.util.ActorPool(actors)
    try:
        for i, (dataset, item, skip) in enumerate(jobs):
            try:
                data = Path(item.path).read_bytes()
            except OSError:
                data = None
            pool.submit(lambda a, job: a.evaluate.remote(*job),
                        (dataset, item.name, str(item.path), data, scales, skip, i < reference_jobs))
        while pool.has_next():
            try:
                dataset, (rows, warns) = pool.get_next_unordered()
            except ray.exceptions.RayActorError as e:
                raise UserError(f"a Ray worker died ({type(e).__name__}); finished images are saved, continue with "
                                f"`srbench run --resume RUN --executor ray`") from None
            bar.set_description(dataset)
            bar.update(len(rows))
            collect(dataset, rows, warns)
    finally:
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()
