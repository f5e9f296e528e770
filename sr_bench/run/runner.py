"""``srbench run``: a request (models x datasets x scales under one protocol) measured into a run folder.

The layers, each importing only the ones before it: ``request`` (what is measured, and the execution options) ->
``context`` (models, metrics, protocol made live) -> ``evaluation`` (one image -> rows) -> ``executors`` (which
processes evaluate the images; rows go to a ``sink``: shards, images, drift, timing) -> this entry. The unit of work
is one image: it is read once and every scale and model is measured on it. ``--resume`` skips every (model, dataset,
image, scale) that already has a measured row. The run folder is locked and tied to its request
(``sr_bench.run.folder``).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from sr_bench.data import resolve_dataset
from sr_bench.data.roots import resolve_root
from sr_bench.errors import UserError
from sr_bench.models.building import check_scales
from sr_bench.protocols import Protocol, get_protocol
from sr_bench.provenance import resolve_device
from sr_bench.run.context import Setup, build_context
from sr_bench.run.executors import Plan, executor_for
from sr_bench.run.folder import (
    check_new_folder,
    continues,
    dataset_record,
    folder_lock,
    new_manifest,
    remove_partial_writes,
)
from sr_bench.run.grid import new_run_id
from sr_bench.run.memory import keep_freed_memory, rss_bytes, size_text
from sr_bench.run.precision import Drift, check_precision
from sr_bench.run.progress import Progress
from sr_bench.run.request import RunOptions, RunRequest, split_fields, stored_request
from sr_bench.run.sink import Sink
from sr_bench.scales import scale_text
from sr_bench.store import load_rows, read_manifest, write_manifest


@dataclass
class RunResult:
    run_dir: Path
    rows: pd.DataFrame
    protocol: Protocol
    metrics: tuple[str, ...]
    notes: list[str]
    precision: dict | None = None  # run.json's "precision": name, autocast, drift against fp32
    timing: dict | None = None  # run.json's "timing" of this session's evaluation loop


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, through the CLI) stopped a run after its finished rows were saved."""


def run(request: RunRequest | None = None, options: RunOptions | None = None, **fields) -> RunResult:
    """Measure ``request`` into the run folder under ``options`` (``srbench run --help``); ``fields``: both by name
    instead (``run(models=["bicubic"], datasets=["set5"], scales=[2], workers=2)``).

    A folder that already holds this request continues it; one holding another request, or locked by a live run,
    is refused (``sr_bench.run.folder``). Ctrl-C saves what is finished and raises ``RunInterrupted``."""
    if request is None:
        request, options = split_fields(**fields)
    options = options or RunOptions()
    keep_freed_memory()
    # Ray actors with GPUs run on CUDA wherever the driver runs; otherwise the models run on --device here
    gpu_actors = options.gpus_per_worker and options.device != "cpu"
    check_precision(request.precision, "cuda" if gpu_actors else resolve_device(options.device).type)
    run_dir = (Path(options.out) if options.out is not None
               else Path(options.results_dir) / new_run_id(request.models, request.datasets, request.scales))
    if options.resume:
        stored_request(run_dir)  # a one-line error unless the folder holds a run
    resolved = _resolve_datasets(request, run_dir)
    # one intra-op thread per worker process or Ray actor (each holds one CPU); a single local process takes all
    threads = torch.get_num_threads() if options.workers == 1 and options.executor == "local" else 1
    setup = Setup(request, run_id=run_dir.name, device=options.device, threads=threads, max_memory=options.max_memory,
                  levers=options.levers)
    stored = {**request.to_json(), "max_memory": options.max_memory}  # the budget, for a resume to reuse
    protocol = get_protocol(request.protocol)

    with contextlib.ExitStack() as stack:
        locked = (run_dir / "run.json").is_file()
        if locked:
            stack.enter_context(folder_lock(run_dir))  # a concurrent writer is refused before any model loads
        data = [dataset_record(d) for d in resolved]
        continuing = continues(run_dir, stored, protocol, data)
        if not continuing:
            check_new_folder(run_dir)
        ctx = build_context(setup)
        check_scales([(spec.name, model) for spec, model in ctx.models], request.scales)
        budget = options.max_memory
        if budget is not None and ctx.device.type == "cpu" and (rss_bytes() or 0) >= budget:
            raise UserError(f"--max-memory {size_text(budget)} is below the {size_text(rss_bytes())} this process "
                            f"already holds (Python, torch, the models); give a larger budget")
        for n in ctx.notes:
            tqdm.write(f"note: {n}", file=sys.stderr)
        if not locked:  # the folder is made only now: a request that fails above leaves nothing behind
            stack.enter_context(folder_lock(run_dir))
            continuing = continues(run_dir, stored, protocol, data)  # another run may have made it meanwhile
        if continuing:
            remove_partial_writes(run_dir)
        # this session's entry in run.json's execution; the evaluating processes add what their levers did
        session = {**asdict(options.levers), "executor": options.executor, "workers": options.workers}
        manifest = new_manifest(run_dir, stored, ctx, data, continuing, session)
        return _evaluate(run_dir, ctx, resolved, manifest, continuing, options)


def resume_run(run_dir: Path, options: RunOptions | None = None, data_root: str | None = None,
               **fields) -> RunResult:
    """Finish an interrupted run with the request stored in its run.json (``data_root``: where its datasets are
    now, when they moved; their hashes must match). ``fields``: the options by name instead of ``options``."""
    stored = stored_request(run_dir)
    request = RunRequest.from_json(stored)
    if data_root is not None:
        request = replace(request, data_root=str(data_root))
    options = replace(options or RunOptions(**fields), out=Path(run_dir), resume=True)
    if options.max_memory is None:  # the budget the run was started with, unless this session gives one
        options = replace(options, max_memory=stored.get("max_memory"))
    return run(request, options)


def _resolve_datasets(request: RunRequest, run_dir: Path):
    """The request's datasets; a resumed run without a data root of its own reads each from where it was read
    before (run.json's ``folder``) while that folder exists."""
    recorded = (read_manifest(run_dir).get("datasets") or []) if (run_dir / "run.json").is_file() else []
    out = []
    for i, name in enumerate(request.datasets):
        before = recorded[i].get("folder") if i < len(recorded) else None
        if request.data_root is None and before and Path(before).is_dir():
            with contextlib.suppress(UserError):
                out.append(resolve_dataset(name, data_root=Path(before).parent))
                continue
        out.append(resolve_dataset(name, data_root=request.data_root))
    return out


def _evaluate(run_dir: Path, ctx, resolved, manifest: dict, continuing: bool, options: RunOptions) -> RunResult:
    """The evaluation loop of a locked run folder: the images left, an executor, a sink."""
    request, specs = ctx.request, ctx.request.specs
    done: set[tuple[str, str, str, str]] = set()
    drift = Drift(options.drift_images if request.precision != "fp32" else 0)
    old = read_manifest(run_dir) if continuing else {}
    if ((old.get("precision") or {}).get("drift") or {}).get("images"):
        drift.images, drift.kept = 0, old["precision"]["drift"]  # measured by the interrupted session
    if continuing and any((run_dir / "rows").glob("*.parquet")):
        prev = load_rows(run_dir)
        ok = prev[prev["error"].fillna("") == ""]
        done = set(zip(ok["model"], ok["dataset"], ok["image"], ok["scale_text"], strict=True))
    manifest["precision"]["drift"] = drift.kept
    write_manifest(run_dir, manifest)
    tqdm.write(f"protocol: {ctx.protocol.name} ({ctx.protocol.fingerprint})  device: {ctx.device_label}  results: "
               f"{run_dir}", file=sys.stderr)

    keys = [(spec.name, scale_text(s)) for spec in specs for s in request.scales]  # an image's evaluations
    total = sum(len(d.items) for d in resolved) * len(keys)
    jobs, todo = [], dict.fromkeys((s.name for s in specs), 0)
    for ds in resolved:
        for item in ds.items:
            skip = frozenset((m, t) for m, t in keys if (m, ds.name, item.name, t) in done)
            for m, t in keys:
                todo[m] += (m, t) not in skip
            if len(skip) < len(keys):
                jobs.append((ds.name, item, skip))
    bar = Progress(total, total - sum(todo.values()), todo, enabled=options.progress, parallel=options.workers)
    reference_jobs = min(drift.images, len(jobs))
    sink = Sink(run_dir, manifest, bar, drift, reference_jobs)
    try:
        executor_for(options)(Plan(ctx, jobs, reference_jobs, options), sink)
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted: {bar.done} of {total} evaluations are saved in {run_dir}; continue with: "
                             f"{_resume_command(run_dir, request, options)}") from None
    finally:  # whatever finished is kept, even on Ctrl-C
        sink.close(images=len(jobs), workers=options.workers, executor=options.executor)
    return RunResult(run_dir=run_dir, rows=load_rows(run_dir), protocol=ctx.protocol, metrics=tuple(ctx.metrics),
                     notes=ctx.notes, precision=manifest["precision"], timing=manifest["timing"])


def _resume_command(run_dir: Path, request: RunRequest, options: RunOptions) -> str:
    """The command that finishes this run from another shell: the data root it used when that came from the
    environment, and this session's execution options."""
    root = resolve_root(request.data_root)
    where = ["--data-root", str(root.path)] if request.data_root is None and root.origin == "SRBENCH_DATA" else []
    return " ".join(["srbench", "run", "--resume", str(run_dir), *where, *options.flags()])
