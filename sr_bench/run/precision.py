"""Numeric precision of the model forward: ``srbench run --precision`` and ``srbench train --precision`` (README,
"GPU path"): fp32 (TF32 off on CUDA, also for cuDNN convolutions), tf32 (CUDA only), bf16 and fp16 (autocast; fp16
CUDA only: CPU float16 convolutions are slow and not what a GPU computes). Autocast is thread-local; the TF32
switches are process-wide, which is why an evaluation holds them for its whole loop (``tf32_switches``) so that
metrics computed on a helper thread (LPIPS runs float32 convolutions) see one setting.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch

from sr_bench.errors import UserError, unknown

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CUDA_ONLY = {
    "tf32": "TF32 is a CUDA tensor-core mode; a CPU computes float32 exactly (use fp32) or bfloat16 (use bf16)",
    "fp16": "float16 autocast needs a CUDA device; on CPU use bf16",
}


def check_precision(name: str, device_type: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``name`` if it can run on a device of type ``device_type`` ('cpu', 'cuda'), else a one-line UserError."""
    if name not in allowed:
        raise unknown("precision", name, allowed)
    if device_type != "cuda" and name in _CUDA_ONLY:
        raise UserError(f"--precision {name} on {device_type}: {_CUDA_ONLY[name]}")
    return name


def describe(name: str) -> dict:
    """What ``name`` does, for run.json / PATH.json."""
    return {"name": name, "autocast": str(_AUTOCAST[name]).replace("torch.", "") if name in _AUTOCAST else None,
            "tf32": name == "tf32"}


def device_label(label: str, name: str) -> str:
    """The ``device`` column of a row: the device, tagged with the precision when it is not fp32."""
    return label if name == "fp32" else f"{label} [{name}]"


def hold_tf32_switches(name: str, device: torch.device) -> None:
    """PyTorch's TF32 switches on a CUDA device, on for tf32 and off otherwise, for the rest of the process."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"


@contextlib.contextmanager
def tf32_switches(name: str, device: torch.device):
    """``hold_tf32_switches`` within the block; the switches are restored afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    hold_tf32_switches(name, device)
    try:
        yield
    finally:
        if torch.device(device).type == "cuda":
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def autocast(name: str, device: torch.device):
    """``torch.autocast`` for bf16/fp16 on ``device``, a no-op context otherwise."""
    if name in _AUTOCAST:
        return torch.autocast(torch.device(device).type, dtype=_AUTOCAST[name])
    return contextlib.nullcontext()


@contextlib.contextmanager
def forward_precision(name: str, device: torch.device):
    """The scope of one model forward under ``name``: the TF32 switches and, for bf16/fp16, autocast."""
    with tf32_switches(name, device), autocast(name, device):
        yield


# ------------------------------------------------------------------------------------------ drift against fp32 ----
REFERENCE_KEY = "_fp32_reference"  # set on a row dict by the measuring process; the run pops it before writing


@dataclass
class Drift:
    """run.json's precision.drift: per model, the PSNR (the protocol's Y view) of each measured evaluation of the
    first images against the same evaluation run in fp32."""

    images: int  # how many images of the run are also measured in fp32
    seen: set = field(default_factory=set)  # (dataset, image)
    deltas: dict = field(default_factory=dict)  # model -> [psnr(precision) - psnr(fp32)]
    not_finite: dict = field(default_factory=dict)  # model -> count (identical images give infinite PSNR)
    seconds_fp32: float = 0.0
    kept: dict | None = None  # a finished summary (this run's, or the interrupted session's on resume)

    def add(self, row: dict, ref: dict) -> None:
        self.seen.add((row["dataset"], row["image"]))
        self.seconds_fp32 += ref["seconds_fp32"]
        delta = ref["psnr"] - ref["psnr_fp32"]
        if math.isfinite(delta):
            self.deltas.setdefault(row["model"], []).append(delta)
        else:
            self.not_finite[row["model"]] = self.not_finite.get(row["model"], 0) + 1

    def summary(self) -> dict:
        models = {}
        for model in sorted(set(self.deltas) | set(self.not_finite)):
            d = self.deltas.get(model, [])
            models[model] = {
                "evaluations": len(d),
                "mean_abs_dpsnr": sum(abs(x) for x in d) / len(d) if d else None,
                "max_abs_dpsnr": max(abs(x) for x in d) if d else None,
                "mean_dpsnr": sum(d) / len(d) if d else None,
                "not_finite": self.not_finite.get(model, 0),
            }
        return {"reference": "fp32", "metric": "psnr (dB, the protocol's Y view): this precision minus fp32",
                "images": len(self.seen), "images_requested": self.images, "models": models,
                "fp32_seconds": round(self.seconds_fp32, 6)}
