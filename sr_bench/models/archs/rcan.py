"""RCAN (Zhang et al., ECCV'18), key-compatible with ``yulunzhang/RCAN`` ``RCAN_TestCode/code/model/rcan.py``
(identical keys in ``thstkdgus35/EDSR-PyTorch`` ``src/model/rcan.py``), so ``RCAN_BIX{2,3,4,8}.pt`` load strictly.

Keys: ``sub_mean.*``, ``add_mean.*``, ``head.0.*``, ``body.{g}.body.{b}.body.{0,2}.*`` (RCAB convs),
``body.{g}.body.{b}.body.3.conv_du.{0,2}.*`` (channel attention), ``body.{g}.body.{n_resblocks}.*`` (group conv),
``body.{n_resgroups}.*``, ``tail.0.{0,2,..}.*``, ``tail.1.*``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import MeanShift, Upsampler, default_conv, upsampler_scale
from sr_bench.models.strategies import StrategicIntegerUpscaler
from sr_bench.models.tiling import image_statistic


class CALayer(nn.Module):
    """Channel attention: global average pool -> 1x1 (C -> C/r) -> ReLU -> 1x1 (C/r -> C) -> sigmoid -> scale."""

    def __init__(self, channel: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1, padding=0, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channel // reduction, channel, 1, padding=0, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(image_statistic(x, self.avg_pool(x)))


class RCAB(nn.Module):
    """Residual channel attention block: conv-ReLU-conv-CA plus the input (res_scale unused, as in the official
    code)."""

    def __init__(self, conv, n_feat: int, kernel_size: int, reduction: int, bias: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            conv(n_feat, n_feat, kernel_size, bias=bias),
            nn.ReLU(True),
            conv(n_feat, n_feat, kernel_size, bias=bias),
            CALayer(n_feat, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        res += x
        return res


class ResidualGroup(nn.Module):
    def __init__(self, conv, n_feat: int, kernel_size: int, reduction: int, n_resblocks: int):
        super().__init__()
        body: list[nn.Module] = [RCAB(conv, n_feat, kernel_size, reduction) for _ in range(n_resblocks)]
        body.append(conv(n_feat, n_feat, kernel_size))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        res += x
        return res


class RCAN(nn.Module):
    """Residual-in-residual: ``n_resgroups`` groups of ``n_resblocks`` RCABs, long skip, sub-pixel tail; RGB 0..255."""

    def __init__(self, n_resgroups: int = 10, n_resblocks: int = 20, n_feats: int = 64, reduction: int = 16,
                 scale: int = 2, rgb_range: float = 255, n_colors: int = 3):
        super().__init__()
        conv = default_conv
        self.sub_mean = MeanShift(rgb_range)
        body: list[nn.Module] = [ResidualGroup(conv, n_feats, 3, reduction, n_resblocks) for _ in range(n_resgroups)]
        body.append(conv(n_feats, n_feats, 3))
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(conv(n_colors, n_feats, 3))
        self.body = nn.Sequential(*body)
        self.tail = nn.Sequential(Upsampler(conv, scale, n_feats), conv(n_feats, n_colors, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        res = self.body(x)
        res += x
        return self.add_mean(self.tail(res))


class RCANUpscaler(StrategicIntegerUpscaler):
    """RCAN (10 groups x 20 RCABs, 64 features); one network per scale (releases x2/x3/x4/x8; x1 builds for
    ``strategy="bicubic-pre"``). Decimal scales: ``strategy=`` (default ``ceil-then-down``)."""

    model_name: ClassVar[str] = "rcan"
    family_scales: ClassVar[tuple[int, ...]] = (2, 3, 4)
    variants: ClassVar[dict[str, dict]] = {"rcan": {"n_resgroups": 10, "n_resblocks": 20, "n_feats": 64,
                                                    "reduction": 16}}
    default_variant: ClassVar[str] = "rcan"

    def build(self, scale: int) -> nn.Module:
        return RCAN(scale=scale, rgb_range=255, **self.variants[self.variant])

    def infer_scale(self, sd):
        head = sd.get("head.0.weight")
        if head is None or head.dim() != 4:
            return None
        # x1 has an empty upsampler: only the final conv, tail.1, is stored
        return upsampler_scale(sd, "tail.0.", int(head.shape[0])) or (1 if "tail.1.weight" in sd else None)
