"""Where a run's rows go: Parquet shards (a crash loses at most the evaluations since the last one), SR images
(``--save-images``: written before their shard, so a stored row's image is on disk), the precision drift, the
timing, the progress bar."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from tqdm import tqdm

from sr_bench.run.evaluation import IMAGE_KEY
from sr_bench.run.precision import REFERENCE_KEY, Drift
from sr_bench.run.progress import Progress
from sr_bench.store import write_manifest, write_shard
from sr_bench.store.atomic import atomic_write_bytes

FLUSH_IMAGES = 8  # images per shard: bounds what an interruption can lose
FLUSH_SECONDS = 30.0  # ... and so does time: a shard at least this often while rows arrive (slow models)
IMAGES_DIR = "images"


def image_path(model: str, dataset: str, scale: str, image: str) -> str:
    """Where --save-images puts one SR, relative to the run folder: images/<model>/<dataset>/x<scale>/<image>.png."""
    safe = lambda t: re.sub(r"[^A-Za-z0-9._+-]+", "-", t)  # noqa: E731 - a model name may hold ':' (basicsr:ARCH)
    return f"{IMAGES_DIR}/{safe(model)}/{safe(dataset)}/x{safe(scale)}/{safe(image)}.png"


class Sink:
    """Receives rows as executors produce them and keeps run.json's drift and timing up to date."""

    def __init__(self, run_dir: Path, manifest: dict, bar: Progress, drift: Drift, reference_jobs: int):
        self.run_dir, self.manifest, self.bar, self.drift = run_dir, manifest, bar, drift
        self.reference_jobs = reference_jobs
        self.buffer: dict[str, list] = {}
        self.last_write = time.monotonic()
        self.tick = bar.update  # evaluations finished: the bar moves as they go, before their rows arrive

    def collect(self, dataset: str, rows: list[dict], warns: list[str], image_done: bool = True) -> None:
        """Rows as they come back (``image_done``: the image's last ones): images saved at once, rows in shards."""
        for w in warns:
            tqdm.write(f"warning: {w}", file=sys.stderr)
        drift = self.drift
        for r in rows:
            ref, data = r.pop(REFERENCE_KEY, None), r.pop(IMAGE_KEY, None)
            if ref is not None:
                drift.add(r, ref)
            if data is not None:
                atomic_write_bytes(self.run_dir / image_path(r["model"], r["dataset"], r["scale_text"], r["image"]),
                                   data)
        self.bar.rows(rows)
        all_seen = drift.images and len(drift.seen) == self.reference_jobs
        if image_done and all_seen and "models" not in (drift.kept or {}):
            drift.kept = drift.summary()  # the drift images are done: on disk before the long rest of the run
            self.manifest["precision"]["drift"] = drift.kept
            write_manifest(self.run_dir, self.manifest)
        self.buffer.setdefault(dataset, []).extend(rows)
        if time.monotonic() - self.last_write >= FLUSH_SECONDS:
            self.flush()
        elif image_done and len({r["image"] for r in self.buffer[dataset]}) >= FLUSH_IMAGES:
            self.flush(dataset)

    def flush(self, dataset: str | None = None) -> None:
        for name in [dataset] if dataset else list(self.buffer):
            rows = self.buffer.pop(name, [])
            if rows:
                path = write_shard(self.run_dir, rows, name)
                self.last_write = time.monotonic()
                self.bar.saved(path, rows, name)

    def close(self, **timing) -> None:
        """Whatever finished is saved (also after Ctrl-C); run.json gets this session's timing and drift."""
        self.flush()
        self.bar.close()
        # the share of the loop's wall time outside model forwards is what a faster loader could still win
        measured = self.bar.forward.values()  # [forward seconds, evaluations] per model
        self.manifest["timing"] = {"wall_seconds": round(time.perf_counter() - self.bar.started, 6),
                                   "evaluations": sum(n for _, n in measured),
                                   "forward_seconds": round(sum(s for s, _ in measured), 6),
                                   "fp32_reference_seconds": round(self.drift.seconds_fp32, 6), **timing}
        if self.drift.images:
            self.manifest["precision"]["drift"] = self.drift.summary()
        write_manifest(self.run_dir, self.manifest)
