"""What a run shows while it works: a bar of evaluations labelled with the latest (model, dataset, scale) and an ETA
per model; with ``--no-progress`` no bar, but one log line per saved shard, so a long unattended run still says how
far it got."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm


def duration(seconds: float | None) -> str:
    """12s, 4m05s, 2h07m; ? when unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    def __init__(self, total: int, done: int, todo: dict[str, int], enabled: bool = True, parallel: int = 1):
        self.enabled = enabled
        self.total, self.done = total, done
        self.todo = dict(todo)  # evaluations each model has left
        self.parallel = max(1, parallel)
        self.forward = {m: [0.0, 0] for m in todo}  # model -> [forward seconds, evaluations] of this session
        self.started = time.perf_counter()
        self.bar = tqdm(total=total, initial=done, disable=not enabled, unit="eval", file=sys.stderr,
                        dynamic_ncols=True)
        self.update, self.close = self.bar.update, self.bar.close  # update: evaluations finished, ticked as they go

    def rows(self, rows: list[dict]) -> None:
        """Rows that reached the driver: the label, the per-model counts and times."""
        for r in rows:
            m = r["model"]
            self.todo[m] = max(0, self.todo.get(m, 0) - 1)
            if r.get("seconds") is not None:
                acc = self.forward.setdefault(m, [0.0, 0])
                acc[0] += r["seconds"]
                acc[1] += 1
        self.done += len(rows)
        if rows and self.enabled:
            last = rows[-1]
            self.bar.set_description(f"{last['model']} {last['dataset']} x{last['scale_text']}", refresh=False)
            self.bar.set_postfix_str(self.eta_text())

    def eta(self) -> dict[str, float | None]:
        """Seconds each model still needs: its evaluations left times its mean seconds per evaluation (its forward
        time plus its share of the time outside forwards: decoding, LR making, metrics), over the workers; None until
        it has finished an evaluation."""
        measured = sum(n for _, n in self.forward.values())
        forward = sum(s for s, _ in self.forward.values())
        wall = (time.perf_counter() - self.started) * self.parallel
        overhead = max(0.0, wall - forward) / measured if measured else 0.0
        out = {}
        for m, left in self.todo.items():
            seconds, n = self.forward.get(m, (0.0, 0))
            out[m] = 0.0 if not left else (left * (seconds / n + overhead) / self.parallel if n else None)
        return out

    def eta_text(self) -> str:
        return "ETA " + ", ".join(f"{m} {duration(s)}" for m, s in self.eta().items())

    def saved(self, path: Path, rows: list[dict], dataset: str) -> None:
        """A shard was written: without a bar, say so."""
        if self.enabled:
            return
        images = len({r["image"] for r in rows})
        tqdm.write(f"saved {len(rows)} row(s) of {images} {dataset} image(s) to rows/{Path(path).name}; "
                   f"{self.done}/{self.total} evaluations done; {self.eta_text()}", file=sys.stderr)
