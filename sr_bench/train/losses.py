"""The training losses a recipe names (``srbench train --loss``; docs/training.md says what each computes). All
compare float32 tensors in the units the model's training forward returns (RGB or Y in [0, 1]).

With DistributedDataParallel every rank computes its loss on its own slice of the global batch and the gradients
are averaged; each loss here is a mean over samples, so that average is the gradient of the global batch's loss.
"""

from __future__ import annotations

import torch

from sr_bench.errors import unknown
from sr_bench.models.modelcard import TRAIN_LOSSES

CHARBONNIER_EPS = 1e-3  # LapSRN's code: sqrt(d^2 + 1e-6)
DESCRIPTIONS = {
    "l1": "L1",
    "mse": "MSE",
    "charbonnier": "Charbonnier, mean of sqrt(d^2 + eps^2)",
    "multilevel-charbonnier": "LapSRN multi-level Charbonnier: per level sum over a sample's pixels of "
                              "sqrt(d^2 + eps^2), averaged over the batch, summed over the levels (weight 1)",
}


def multilevel(name: str) -> bool:
    """Whether the loss needs every pyramid level's output (the model's ``predict_levels``)."""
    return name == "multilevel-charbonnier"


def loss_value(name: str, pred, target, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """The float32 scalar loss of ``pred`` against ``target`` (lists of tensors, coarse to fine, for the multi-level
    loss)."""
    if name == "multilevel-charbonnier":
        return sum(_charbonnier(p, t, eps).flatten(1).sum(1).mean() for p, t in zip(pred, target, strict=True))
    d = pred.float() - target.float()  # float32 (a no-op unless autocast ran)
    if name == "l1":
        return d.abs().mean()
    if name == "mse":
        return (d * d).mean()
    if name == "charbonnier":
        return _charbonnier(pred, target, eps).mean()
    raise unknown("loss", name, TRAIN_LOSSES)


def _charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    d = pred.float() - target.float()
    return torch.sqrt(d * d + eps * eps)
