"""The files a training run writes (``PATH``, ``PATH.json``, ``PATH.resume``, ``PATH.best``: README, "Training"), each
atomically (``store.atomic``: a temporary file, synced, then renamed), so an interruption at any moment leaves the
previous complete version of each. ``PATH.resume`` holds its own copy of the weights, so it never depends on which of
the files a crash interrupted, and no generator state, as batches are a function of the seed and the step.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.store.atomic import atomic_write_bytes

RESUME_FORMAT = "sr_bench-train-resume"
RESUME_VERSION = 2  # 2: batches are a function of (seed, step); no generator state


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def best_path(out: Path) -> Path:
    return out.with_name(out.name + ".best")


def check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Fail before training if the outputs cannot be written, or would silently replace another run's."""
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file path such as {str(out / 'weights.pt')!r}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as e:
        raise UserError(f"cannot write to {str(out.parent)!r} (--out): {e.strerror or e}; "
                        f"pick a writable folder") from None
    if resume:
        if not resume_path(out).is_file():
            raise UserError(f"--resume: no resume file {str(resume_path(out))!r} (written with the checkpoint every "
                            f"--save-every steps); start without --resume")
        return
    existing = [p for p in (out, sidecar_path(out), resume_path(out), best_path(out)) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{str(existing[0])!r} exists; add --resume to continue that run, --overwrite to replace "
                        f"it, or pick another --out")


def torch_bytes(obj) -> bytes:
    # torch.save names the archive's root folder after the file it writes to; serialising to memory keeps the bytes
    # (and the sha256) independent of the temporary file name, so equal weights give equal hashes
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def cpu_state_dict(weights: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A module's state_dict (or such a dict, e.g. EMA weights) as contiguous CPU copies."""
    # contiguous: the luma nets (and --channels-last runs) train channels_last, and a checkpoint should not carry
    # that memory layout
    sd = weights.state_dict() if isinstance(weights, nn.Module) else weights
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_checkpoint(out: Path, weights: nn.Module | dict[str, torch.Tensor]) -> str:
    """Write the state_dict of ``weights`` (a module, or the EMA weights) to ``out``; returns its sha256."""
    data = torch_bytes(cpu_state_dict(weights))
    atomic_write_bytes(out, data, durable=True)
    return hashlib.sha256(data).hexdigest()


def save_resume(out: Path, state: dict) -> None:
    atomic_write_bytes(resume_path(out), torch_bytes({"format": RESUME_FORMAT, "version": RESUME_VERSION, **state}),
                       durable=True)


def load_resume(out: Path) -> dict:
    path = resume_path(out)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = " ".join(str(e).split())[:160]
        raise UserError(f"cannot read resume file {str(path)!r} ({type(e).__name__}: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise UserError(f"{str(path)!r} is not a `srbench train` resume file")
    if state.get("version") != RESUME_VERSION:
        raise UserError(f"resume file {str(path)!r} has version {state.get('version')}, this sr_bench reads "
                        f"{RESUME_VERSION} (version 1 drew its batches another way); start a new run")
    return state


def write_sidecar(out: Path, record: dict) -> None:
    # one top-level field per line, each value compact: the loss curve stays one line instead of thousands
    lines = [f" {json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in record.items()]
    atomic_write_bytes(sidecar_path(out), ("{\n" + ",\n".join(lines) + "\n}\n").encode(), durable=True)
