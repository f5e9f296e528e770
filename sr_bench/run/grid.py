"""What a run covers: model specs, and the run id."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sr_bench.errors import UserError


@dataclass(frozen=True)
class ModelSpec:
    """``name`` or ``name=CHECKPOINT`` as written on the command line."""

    name: str
    checkpoint: str | None = None

    @staticmethod
    def parse(text: str) -> "ModelSpec":
        name, sep, path = text.strip().partition("=")
        if not name or (sep and not path):
            raise UserError(f"bad model spec {text!r}: write NAME or NAME=CHECKPOINT")
        if name == "spandrel" and path:  # the row is named after the checkpoint's architecture and file
            from sr_bench.models.spandrel_bridge import spec_of

            name, path = spec_of(name, path)
        return ModelSpec(name, path or None)


def split_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def new_run_id(*parts: object) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    digest = hashlib.sha256(repr((parts, time.time_ns())).encode()).hexdigest()[:6]
    return f"{stamp}-{digest}"
