"""CSFM, Channel-wise and Spatial Feature Modulation network (Hu, Li, Huang, Gao, IEEE TCSVT, arXiv 1809.11130).

Layout, key names and departures from the paper: docs/architectures.md, "CSFM".
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import ChannelAttention, MeanShift, Upsampler, default_conv, upsampler_scale
from sr_bench.models.strategies import StrategicIntegerUpscaler


class SpatialAttention(nn.Module):
    """1x1 (C -> C*e) -> ReLU -> 1x1 (C*e -> 1) -> sigmoid: one weight per pixel, times the input."""

    def __init__(self, channels: int, expansion: int = 2):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, channels * expansion, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels * expansion, 1, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.convs(x)


class CSAR(nn.Module):
    """Channel-wise and spatial attention residual block."""

    def __init__(self, n_feats: int = 64, reduction: int = 16, expansion: int = 2):
        super().__init__()
        self.convs = nn.Sequential(default_conv(n_feats, n_feats, 3), nn.ReLU(inplace=True),
                                   default_conv(n_feats, n_feats, 3))
        self.CA = ChannelAttention(n_feats, reduction)
        self.SA = SpatialAttention(n_feats, expansion)
        self.conv_1x1 = nn.Conv2d(2 * n_feats, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.convs(x)
        return self.conv_1x1(torch.cat([self.CA(u), self.SA(u)], 1)) + x


class FMM(nn.Module):
    def __init__(self, n_feats: int = 64, n_blocks: int = 16):
        super().__init__()
        self.CSAR_chain = nn.Sequential(*[CSAR(n_feats) for _ in range(n_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.CSAR_chain(x)


class CSFM(nn.Module):
    """CSFM network; RGB in/out 0..``rgb_range``. ``n_modules`` FMMs of ``n_blocks`` CSARs with gated fusion."""

    def __init__(self, scale: int = 2, n_feats: int = 64, n_modules: int = 8, n_blocks: int = 16,
                 rgb_range: float = 255, n_colors: int = 3):
        super().__init__()
        self.n_modules = n_modules
        self.sub_mean = MeanShift(rgb_range)
        self.head = nn.Sequential(default_conv(n_colors, n_feats, 3))
        self.conv_3x3 = default_conv(n_feats, n_feats, 3)
        for m in range(1, n_modules + 1):
            setattr(self, f"fmm{m}", FMM(n_feats, n_blocks))
            setattr(self, f"node{m}", nn.Conv2d((m + 1) * n_feats, n_feats, 1))
        self.conv_3x3_bu = default_conv(n_feats, n_feats, 3)
        self.tail = nn.Sequential(Upsampler(scale, n_feats), default_conv(n_feats, n_colors, 3))
        self.add_mean = MeanShift(rgb_range, sign=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        nodes = [self.conv_3x3(x)]  # P0
        for m in range(1, self.n_modules + 1):
            out = getattr(self, f"fmm{m}")(nodes[-1])
            nodes.append(getattr(self, f"node{m}")(torch.cat([out, *reversed(nodes)], 1)))
        return self.conv_3x3_bu(nodes[-1]) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_mean(self.tail(self.features(self.sub_mean(x))))


class CSFMUpscaler(StrategicIntegerUpscaler):
    """CSFM (8 FMMs x 16 CSARs, 64 features): one network per integer scale x2/x3/x4 (x1 and x8 also build)."""

    model_name: ClassVar[str] = "csfm"
    network = CSFM
    variants: ClassVar[dict[str, dict]] = {"csfm": {"n_feats": 64, "n_modules": 8, "n_blocks": 16}}
    default_variant: ClassVar[str] = "csfm"

    def infer_scale(self, sd):
        head = sd.get("head.0.weight")
        if head is None or head.dim() != 4 or "fmm1.CSAR_chain.0.conv_1x1.weight" not in sd:
            return None
        if not any(k.startswith("tail.0.") for k in sd):
            return 1
        return upsampler_scale(sd, "tail.0.", int(head.shape[0]))
