"""Peak dense FLOP/s of known GPUs per precision, and how close a measured forward came to it (MFU).

MFU = achieved FLOP/s (the FLOPs ``sr_bench.run.cost`` counts over the forward's seconds) / the vendor's dense peak
for the arithmetic the forward ran in; CPUs, MIG slices and unlisted GPUs have FLOP/s only. The table's sources and
how to add a GPU: docs/gpu-check.md ("Peak FLOP/s and MFU").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sr_bench.run.precision import PRECISIONS

TERA = 1e12


def _rates(fp32: float, tf32: float | None, half: float) -> dict[str, float]:
    """TFLOP/s: CUDA-core FP32 (sr_bench's fp32 turns cuDNN's TF32 off), TF32 and 16-bit tensor cores (FP32
    accumulation, as autocast's convolutions); a chip without TF32 (before Ampere) has no bf16 either."""
    return {"fp32": fp32, "tf32": tf32, "bf16": half, "fp16": half} if tf32 else {"fp32": fp32, "fp16": half}


# (pattern on the CUDA device name, the chip as shown, TFLOP/s per precision, source); the first match wins, so a
# variant (H100 PCIe) comes before its family's default (H100 SXM, named "NVIDIA H100 80GB HBM3" by the driver)
_PEAKS: tuple[tuple[str, str, dict[str, float], str], ...] = (
    (r"\bH100 PCIe\b", "H100 PCIe", _rates(51.0, 378.0, 756.5), "NVIDIA H100 datasheet"),
    (r"\bH100 NVL\b", "H100 NVL", _rates(60.0, 417.5, 835.5), "NVIDIA H100 datasheet"),
    (r"\bH100\b", "H100 SXM", _rates(67.0, 494.5, 989.5), "NVIDIA H100 datasheet"),
    (r"\bGH200\b", "GH200", _rates(67.0, 494.5, 989.5), "NVIDIA GH200 datasheet"),
    (r"\bH200 NVL\b", "H200 NVL", _rates(60.0, 417.5, 835.5), "NVIDIA H200 datasheet"),
    (r"\bH200\b", "H200 SXM", _rates(67.0, 494.5, 989.5), "NVIDIA H200 datasheet"),
    (r"\bA100\b", "A100", _rates(19.5, 156.0, 312.0), "NVIDIA A100 datasheet"),
    (r"\bA10\b", "A10", _rates(31.2, 62.5, 125.0), "NVIDIA A10 datasheet"),
    (r"\bL40S\b", "L40S", _rates(91.6, 183.0, 362.05), "NVIDIA L40S datasheet"),
    (r"\bL40\b", "L40", _rates(90.5, 90.5, 181.05), "NVIDIA L40 datasheet"),
    (r"\bL4\b", "L4", _rates(30.3, 60.0, 121.0), "NVIDIA L4 datasheet"),
    (r"\bRTX 4090\b", "GeForce RTX 4090", _rates(82.6, 82.6, 165.2), "NVIDIA Ada GPU architecture whitepaper"),
    (r"\bRTX 3090\b", "GeForce RTX 3090", _rates(35.6, 35.6, 71.0), "NVIDIA Ampere GA102 GPU architecture whitepaper"),
    (r"\bV100-PCIE\b", "V100 PCIe", _rates(14.0, None, 112.0), "NVIDIA V100 datasheet"),
    (r"\bV100\b", "V100 SXM2", _rates(15.7, None, 125.0), "NVIDIA V100 datasheet"),
    (r"\bT4\b", "T4", _rates(8.1, None, 65.0), "NVIDIA T4 datasheet"),
)


@dataclass(frozen=True)
class Peak:
    chip: str  # the table's name for the GPU, e.g. "H100 SXM"
    precision: str
    flops_per_second: float
    source: str

    def text(self) -> str:
        return f"{self.chip} {self.precision} dense peak {self.flops_per_second / TERA:,.1f} TFLOP/s ({self.source})"


def peak_flops(device: str, precision: str = "fp32") -> Peak | None:
    """The dense peak of ``device`` (a CUDA device name, with or without the ``cuda:`` of a row's device label) in
    ``precision``; None for a CPU, a MIG slice, an unlisted GPU or a precision the chip has no listed rate for."""
    name = str(device)
    if name.startswith("cpu") or " MIG " in f" {name} ":
        return None
    for pattern, chip, rates, source in _PEAKS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            rate = rates.get(precision)
            return Peak(chip, precision, rate * TERA, source) if rate else None
    return None


def split_device_label(label: str) -> tuple[str, str]:
    """A row's ``device`` (``cuda:NVIDIA H200 [bf16]``) -> (device, precision); no tag means fp32."""
    m = re.fullmatch(r"(.*?)\s*\[(\w+)\]", str(label).strip())
    return (m.group(1), m.group(2)) if m and m.group(2) in PRECISIONS else (str(label).strip(), "fp32")


def flops_per_second(flops: float, seconds: float) -> float | None:
    """Achieved FLOP/s; None when nothing was counted or timed."""
    if not flops or not seconds or seconds <= 0 or math.isnan(flops) or math.isnan(seconds):
        return None
    return flops / seconds


def mfu(flops: float, seconds: float, device: str, precision: str = "fp32") -> float | None:
    """The fraction of ``device``'s dense ``precision`` peak that ``flops`` in ``seconds`` reached; None without a
    listed peak."""
    rate, peak = flops_per_second(flops, seconds), peak_flops(device, precision)
    return None if rate is None or peak is None else rate / peak.flops_per_second


def rate_text(rate: float | None) -> str:
    """1.23 TFLOP/s, 45.6 GFLOP/s; "–" for None."""
    if rate is None:
        return "–"
    return f"{rate / TERA:.2f} TFLOP/s" if rate >= TERA else f"{rate / 1e9:.1f} GFLOP/s"


def mfu_text(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f}%"


def peak_note(device: str, precision: str = "fp32") -> str:
    """One line saying what MFU is measured against, or that it is not."""
    peak = peak_flops(device, precision)
    if peak is None:
        return (f"MFU: no {precision} peak FLOP/s listed for {device} (docs/gpu-check.md lists the GPUs): "
                f"FLOP/s only")
    return f"MFU: fraction of the {peak.text()}"


def rows_utilisation(rows) -> list[dict]:
    """Per (model, device label) of a run's measured rows with FLOPs (``srbench run --profile``): evaluations, mean
    FLOPs per evaluation, achieved FLOP/s (summed FLOPs / summed seconds) and MFU (None without a listed peak)."""
    ok = rows[(rows["error"].fillna("") == "") & rows["flops"].notna() & rows["seconds"].notna()] \
        if "flops" in rows else rows.iloc[0:0]
    out = []
    for (model, label), g in ok.groupby(["model", "device"], sort=False):
        device, precision = split_device_label(label)
        flops, seconds = float(g["flops"].sum()), float(g["seconds"].sum())
        out.append({"model": model, "device": device, "precision": precision, "evaluations": len(g),
                    "flops_per_evaluation": flops / len(g), "flops_per_second": flops_per_second(flops, seconds),
                    "mfu": mfu(flops, seconds, device, precision)})
    return out


def utilisation_lines(rows) -> list[str]:
    """``rows_utilisation`` as lines for the end of ``srbench run --profile``."""
    lines = []
    for u in rows_utilisation(rows):
        peak = peak_flops(u["device"], u["precision"])
        share = (f", MFU {mfu_text(u['mfu'])} of the {peak.text()}" if peak
                 else f" (no {u['precision']} peak listed for this device)")
        lines.append(f"{u['model']}: {u['flops_per_evaluation'] / 1e9:,.1f} GFLOPs per evaluation, "
                     f"{rate_text(u['flops_per_second'])} over {u['evaluations']} forward(s){share}")
    return lines


def utilisation_by(rows, keys: list[str]) -> dict[tuple, tuple[float | None, float | None]]:
    """(achieved FLOP/s, MFU) per group of ``keys`` over the measured rows that carry FLOPs: summed FLOPs over
    summed forward seconds; MFU None where the group ran on no listed GPU, or on more than one device or precision."""
    ok = rows[(rows["error"].fillna("") == "") & rows["flops"].notna() & rows["seconds"].notna()]
    out = {}
    for key, g in ok.groupby(keys, sort=False):
        flops, seconds = float(g["flops"].sum()), float(g["seconds"].sum())
        labels = g["device"].unique()
        share = mfu(flops, seconds, *split_device_label(labels[0])) if len(labels) == 1 else None
        out[key if isinstance(key, tuple) else (key,)] = (flops_per_second(flops, seconds), share)
    return out
