"""RCAN (Zhang et al., ECCV'18), key-compatible with ``yulunzhang/RCAN`` ``RCAN_TestCode/code/model/rcan.py``
(identical keys in ``thstkdgus35/EDSR-PyTorch`` ``src/model/rcan.py``), so ``RCAN_BIX{2,3,4,8}.pt`` load strictly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import ChannelAttention, MeanShift, Residual, Upsampler, default_conv
from sr_bench.models.strategies import StrategicIntegerUpscaler


def residual_group(n_feat: int, reduction: int, n_resblocks: int) -> Residual:
    """``n_resblocks`` RCABs (conv-ReLU-conv-CA plus the input; no res_scale, as in the official code), a conv, and
    the group's skip."""
    rcabs = [Residual(default_conv(n_feat, n_feat, 3), nn.ReLU(True), default_conv(n_feat, n_feat, 3),
                      ChannelAttention(n_feat, reduction, pool="adaptive-avg")) for _ in range(n_resblocks)]
    return Residual(*rcabs, default_conv(n_feat, n_feat, 3))


class RCAN(nn.Module):
    """Residual-in-residual: ``n_resgroups`` groups of ``n_resblocks`` RCABs, long skip, sub-pixel tail; RGB 0..255."""

    def __init__(self, n_resgroups: int = 10, n_resblocks: int = 20, n_feats: int = 64, reduction: int = 16,
                 scale: int = 2, rgb_range: float = 255, n_colors: int = 3):
        super().__init__()
        self.sub_mean = MeanShift(rgb_range)
        body = [residual_group(n_feats, reduction, n_resblocks) for _ in range(n_resgroups)]
        body.append(default_conv(n_feats, n_feats, 3))
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(default_conv(n_colors, n_feats, 3))
        self.body = nn.Sequential(*body)
        self.tail = nn.Sequential(Upsampler(scale, n_feats), default_conv(n_feats, n_colors, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        res = self.body(x)
        res += x
        return self.add_mean(self.tail(res))


class RCANUpscaler(StrategicIntegerUpscaler):
    """RCAN (10 groups x 20 RCABs, 64 features); one network per scale (releases x2/x3/x4/x8; x1 builds for
    ``strategy="bicubic-pre"``)."""

    model_name: ClassVar[str] = "rcan"
    network = RCAN
    variants: ClassVar[dict[str, dict]] = {"rcan": {"n_resgroups": 10, "n_resblocks": 20, "n_feats": 64,
                                                    "reduction": 16}}
    default_variant: ClassVar[str] = "rcan"
