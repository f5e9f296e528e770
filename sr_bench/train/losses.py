"""The training losses a recipe names (``srbench train --loss``). All compare float32 tensors in the units the
model's training forward returns (RGB or Y in [0, 1]).

- ``l1``: mean |pred - target| (EDSR, RCAN, RDN, Meta-SR, LIIF, DBDN).
- ``mse``: mean (pred - target)^2 (SRCNN, VDSR).
- ``charbonnier``: mean sqrt((pred - target)^2 + eps^2), a differentiable L1 (eps -> 0 gives L1).
- ``multilevel-charbonnier``: LapSRN's loss on every pyramid level, each level's target the HR bicubic-downscaled
  to that level's size (``getBatch_LapSRN.m``), weight 1 each. As in the authors' ``vllab_nn_L1_loss.m``
  (``sum(sqrt(d.^2 + 1e-6))``, so eps = 1e-3) it sums over a sample's pixels and averages over the batch, which is
  the scale their SGD learning rate (1e-5) is set for.

With DistributedDataParallel every rank computes its loss on its own slice of the global batch and the gradients
are averaged; each loss here is a mean over samples, so that average is the gradient of the global batch's loss.
"""

from __future__ import annotations

import torch

from sr_bench.errors import UserError, unknown
from sr_bench.models.modelcard import TRAIN_LOSSES

LOSSES = TRAIN_LOSSES
CHARBONNIER_EPS = 1e-3  # LapSRN's code: sqrt(d^2 + 1e-6)
DESCRIPTIONS = {
    "l1": "L1",
    "mse": "MSE",
    "charbonnier": "Charbonnier, mean of sqrt(d^2 + eps^2)",
    "multilevel-charbonnier": "LapSRN multi-level Charbonnier: per level sum over a sample's pixels of "
                              "sqrt(d^2 + eps^2), averaged over the batch, summed over the levels (weight 1)",
}


def check_loss(name: str, eps: float) -> str:
    if name not in LOSSES:
        raise unknown("loss", name, LOSSES)
    if not (eps > 0 and eps < 1):
        raise UserError(f"--charbonnier-eps must be in (0, 1), got {eps}")
    return name


def multilevel(name: str) -> bool:
    """Whether the loss needs every pyramid level's output (the model's ``predict_levels``)."""
    return name == "multilevel-charbonnier"


def loss_value(name: str, pred, target, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """The float32 scalar loss of ``pred`` against ``target`` (lists of tensors, coarse to fine, for the multi-level
    loss)."""
    if name == "multilevel-charbonnier":
        total = None
        for p, t in zip(pred, target, strict=True):
            d = p.float() - t.float()
            level = torch.sqrt(d * d + eps * eps).flatten(1).sum(1).mean()
            total = level if total is None else total + level
        return total
    d = pred.float() - target.float()  # float32 (a no-op unless autocast ran)
    if name == "l1":
        return d.abs().mean()
    if name == "mse":
        return (d * d).mean()
    if name == "charbonnier":
        return torch.sqrt(d * d + eps * eps).mean()
    raise unknown("loss", name, LOSSES)
