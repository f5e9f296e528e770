"""PSNR with a fixed peak (255 for 8-bit luma), MSE over the whole (shaved) plane, float64."""

from __future__ import annotations

import math

import torch

from sr_bench.metrics.base import Metric, MetricInfo


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0) -> float:
    """10 log10(peak^2 / mean((a-b)^2)); +inf for identical inputs."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


class PSNR(Metric):
    info = MetricInfo(
        name="psnr", higher_is_better=True, lower=0.0, upper=math.inf, view="y", unit="dB", decimals=2,
        description="peak signal-to-noise ratio on the protocol's luma, peak 255",
    )

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        return psnr(sr, hr)
