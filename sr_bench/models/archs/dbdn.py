"""DBDN, Deep Bi-Dense Network (Wang, Shen, Zhang, arXiv 1810.04873), from the official Torch7 code
``JannaShen/DBDN`` ``Code/model/DBDN.lua`` + ``Code/model/common.lua`` + ``Code/opts.lua`` (papers.md §1.6).

Layout, key names and departures from the paper: docs/architectures.md, "DBDN".
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import (
    ChannelAttention,
    MeanShift,
    Upsampler,
    default_conv,
    dense_chain,
    upsampler_scale,
)
from sr_bench.models.strategies import StrategicIntegerUpscaler


class IntraDenseBlock(nn.Module):
    """Dense conv+ReLU layers, then a 1x1 fusion back to ``n_feats`` (no activation); the caller adds the skip."""

    def __init__(self, n_feats: int = 64, growth: int = 64, n_layers: int = 8):
        super().__init__()
        self.dense = nn.ModuleList(nn.Conv2d(n_feats + j * growth, growth, 3, padding=1) for j in range(n_layers))
        self.fuse = nn.Conv2d(n_feats + n_layers * growth, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = (lambda t, conv=conv: torch.relu(conv(t)) for conv in self.dense)
        return self.fuse(torch.cat(dense_chain(layers, x), 1))


class BiDenseUnit(nn.Module):
    """One inter-block unit: compression conv (+ ReLU in DBDN's code), intra dense block, local skip from the compressed
    input; ASDN's dense attention block then applies channel attention (``reduction``, ``pool``)."""

    def __init__(self, in_channels: int, n_feats: int = 64, growth: int = 64, n_layers: int = 8,
                 compression_kernel: int = 3, relu: bool = True, reduction: int | None = None, pool: str = "avg"):
        super().__init__()
        self.relu = relu
        self.compress = nn.Conv2d(in_channels, n_feats, compression_kernel, padding=compression_kernel // 2)
        self.block = IntraDenseBlock(n_feats, growth, n_layers)
        self.ca = ChannelAttention(n_feats, reduction, pool) if reduction is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.compress(x)
        if self.relu:
            c = torch.relu(c)
        out = self.block(c) + c
        return out if self.ca is None else self.ca(out)


def deconv_upsampler(scale: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """DBDN's ``upsample_wo_act(scale, 'deconv')``: transposed convs, no activation (6x6/stride 2/pad 2 per factor 2,
    9x9/stride 3/pad 3 for x3; the first maps ``in_channels`` -> ``out_channels``); empty for x1."""
    if scale == 3:
        return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 9, stride=3, padding=3))
    if scale >= 1 and scale & (scale - 1) == 0:
        return nn.Sequential(*[nn.ConvTranspose2d(in_channels if j == 0 else out_channels, out_channels, 6, stride=2,
                                                  padding=2) for j in range(scale.bit_length() - 1)])
    raise ValueError(f"deconv upsampler supports x1, x2^k and x3, not x{scale}")


def deconv_scale(weights: list[torch.Tensor]) -> int:
    """The scale of a ``deconv_upsampler`` from its weights in order (none: x1)."""
    return 1 if not weights else 3 if weights[0].shape[-1] == 9 else 2 ** len(weights)


class DBDN(nn.Module):
    """DBDN network; input/output RGB in 0..``rgb_range`` (255, as the Torch code's ``-mulImg 255``)."""

    def __init__(self, scale: int = 2, n_feats: int = 64, n_units: int = 16, n_layers: int = 8, growth: int = 64,
                 compression_kernel: int = 3, upsampler: str = "deconv", rgb_range: float = 255, n_colors: int = 3):
        super().__init__()
        self.scale = scale
        self.sub_mean = MeanShift(rgb_range)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(default_conv(n_colors, n_feats, 3))
        self.body = nn.Module()
        self.body.entry = default_conv(n_feats, n_feats, 3)
        self.body.units = nn.ModuleList(
            BiDenseUnit(n_feats * (i + 1), n_feats, growth, n_layers, compression_kernel) for i in range(n_units)
        )
        self.body.fusion = nn.Conv2d(n_feats * (n_units + 1), n_feats, 1)
        self.body.conv = default_conv(n_feats, n_feats, 3)
        if upsampler == "deconv":
            up = deconv_upsampler(scale, n_feats, n_feats)
        elif upsampler == "espcnn":
            up = Upsampler(scale, n_feats)
        else:
            raise ValueError(f"upsampler must be 'deconv' or 'espcnn', not {upsampler!r}")
        self.tail = nn.Sequential(up, default_conv(n_feats, n_colors, 3))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        stack = dense_chain(self.body.units, self.body.entry(x))
        return self.body.conv(self.body.fusion(torch.cat(stack, 1))) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_mean(self.tail(self.features(self.sub_mean(x))))


DBDN_VARIANTS: dict[str, dict] = {
    "dbdn": {"compression_kernel": 3, "upsampler": "deconv"},        # official code, DBDN_x{2,3,4}.t7
    "dbdn-espcnn": {"compression_kernel": 3, "upsampler": "espcnn"},  # the DBDN+ network (DBDNplus_x*.t7)
    "dbdn-1x1": {"compression_kernel": 1, "upsampler": "deconv"},     # 1x1 compression (closer to the paper chart)
}


def dbdn_layout_of(sd: Mapping[str, torch.Tensor]) -> dict | None:
    """(compression kernel, upsampler, scale) of a DBDN state_dict, or None if it is not one."""
    comp = sd.get("body.units.0.compress.weight")
    head = sd.get("head.0.weight")
    if comp is None or head is None or comp.dim() != 4:
        return None
    n_feats = int(head.shape[0])
    k = int(comp.shape[-1])
    ups = [sd[key] for key in sorted(sd) if key.startswith("tail.0.") and key.endswith(".weight")]
    if not ups:
        return {"compression_kernel": k, "upsampler": None, "scale": 1}
    if ups[0].shape[-1] in (6, 9) and ups[0].shape[0] == n_feats and ups[0].shape[1] == n_feats:
        return {"compression_kernel": k, "upsampler": "deconv", "scale": deconv_scale(ups)}
    return {"compression_kernel": k, "upsampler": "espcnn", "scale": upsampler_scale(sd, "tail.0.", n_feats)}


class DBDNUpscaler(StrategicIntegerUpscaler):
    """DBDN: one network per integer scale (x2/x3/x4 as released; x1 and x8 also build). Variants: ``dbdn``
    (default, code layout), ``dbdn-espcnn`` (DBDN+ network, sub-pixel tail), ``dbdn-1x1`` (1x1 compression)."""

    model_name: ClassVar[str] = "dbdn"
    network = DBDN
    variants: ClassVar[dict[str, dict]] = DBDN_VARIANTS
    default_variant: ClassVar[str] = "dbdn"

    def infer_scale(self, sd):
        layout = dbdn_layout_of(sd)
        return layout["scale"] if layout else None

    def mismatch_hint(self, sd) -> str:
        layout = dbdn_layout_of(sd)
        if not layout:
            return ""
        for name, cfg in self.variants.items():
            if name != self.variant and cfg["compression_kernel"] == layout["compression_kernel"] and \
                    layout["upsampler"] in (None, cfg["upsampler"]):
                return f"it looks like a {name!r} checkpoint: pass variant={name!r}"
        return ""
