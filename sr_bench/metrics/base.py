"""What a metric is: a function of one (SR, HR) pair plus the metadata tables and plots read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

# Which pair of tensors a protocol prepares for the metric (see ``sr_bench.protocols.base.Views``):
#   "y"       luma for PSNR, shaved            (1, 1, h, w) float64, 0..255 units
#   "y_ssim"  luma for SSIM, shaved            (1, 1, h, w) float64, 0..255 units
#   "rgb"     full SR-size RGB, not shaved     (1, 3, H, W) float64, 0..1
View = Literal["y", "y_ssim", "rgb"]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    lower: float
    upper: float
    view: View
    unit: str = ""
    decimals: int = 4
    description: str = ""


class Metric:
    """Subclasses set ``info`` and implement ``compute``; ``load`` acquires heavy resources once per run."""

    info: MetricInfo

    def load(self, device: torch.device) -> None:  # an optional hook
        """Acquire weights etc. Raise ``MetricUnavailable`` with a one-line fix when that is impossible."""

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        raise NotImplementedError


class MetricUnavailable(Exception):
    """The metric cannot run on this machine (e.g. missing weights); the message says how to fix it."""
