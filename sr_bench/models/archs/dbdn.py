"""DBDN, Deep Bi-Dense Network (Wang, Shen, Zhang, arXiv 1810.04873), from the official Torch7 code
``JannaShen/DBDN`` ``Code/model/DBDN.lua`` + ``Code/model/common.lua`` + ``Code/opts.lua`` (papers.md §1.6).

Layout of the code (``-nFeat 64 -nFeaSDB 64 -nDenseBlock 16 -nDenseConv 8 -growthRate 64``, ``-act relu``,
``-globalSkip true -addBlockSkip true``, ``-upsample deconv``, ``-subMean true -mulImg 255``):

- ``sub_mean``: DIV2K RGB mean (x255) subtracted by a fixed 1x1 conv; ``add_mean`` at the end (``model/init.lua``).
- ``head.0``: conv 3x3 3->64 (shallow features, the target of the global skip).
- ``body.entry``: conv 3x3 64->64, no activation.
- ``body.units.{i}`` (i = 0..15), the inter-block dense net: unit i sees the concatenation of ``body.entry``'s output
  and all previous unit outputs, 64 * (i + 1) channels, and its output is concatenated onto that stack:

  - ``compress``: conv **3x3** 64(i+1)->64 + ReLU (``addDenseBlocks``; ``compression_kernel=1`` gives the 1x1 variant);
  - ``block.dense.{j}`` (j = 0..7): conv 3x3 (64 + 64j)->64 + ReLU, output concatenated to its input (intra
    dense block);
  - ``block.fuse``: conv 1x1 576->64 (local feature fusion), then + the compressed input (local skip, ``addSkip``).
- ``body.fusion``: conv 1x1 1088->64 (global fusion), ``body.conv``: conv 3x3 64->64; then + ``head`` output.
- ``tail.0``: the upsampler without activation (``upsample_wo_act``). ``deconv`` (the default, DBDN): transposed
  conv 64->64 6x6 stride 2 pad 2 per factor 2 (x2, x4 = two, x8 = three), 9x9 stride 3 pad 3 for x3, identity for
  x1. ``espcnn`` (DBDN+): conv 3x3 64->4*64 + PixelShuffle(2) per factor 2, conv 64->9*64 + PixelShuffle(3) for x3.
- ``tail.1``: conv 3x3 64->3.

Torch7 keeps no key names, so the names above are ours (EDSR-PyTorch style). Trainable parameters (MeanShift
excluded), papers.md §0: deconv x2 27,141,827 / x3 27,326,147 / x4 27,289,347.

Paper versus code: the paper's Fig. 7 chart places DBDN at about 18M. The 3x3 compression convs on up to 1024 input
channels hold 5,014,528 of the code's parameters; with 1x1 compression (``variant="dbdn-1x1"``) the count is
22,685,379 / 22,869,699 / 22,832,899 (x2 / x3 / x4), still above the chart. The same chart places RDN, whose
computed count is 22.1M, at about 17.5M, so the chart cannot settle this; ``dbdn`` is the code's layout.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import MeanShift, Upsampler, default_conv, upsampler_scale
from sr_bench.models.strategies import StrategicIntegerUpscaler


class IntraDenseBlock(nn.Module):
    """``n_layers`` dense conv+ReLU layers (growth ``growth``) on ``n_feats`` channels, then a 1x1 fusion back to
    ``n_feats`` (no activation). The local skip is added by the caller."""

    def __init__(self, n_feats: int = 64, growth: int = 64, n_layers: int = 8):
        super().__init__()
        self.dense = nn.ModuleList(
            nn.Conv2d(n_feats + j * growth, growth, 3, padding=1) for j in range(n_layers)
        )
        self.fuse = nn.Conv2d(n_feats + n_layers * growth, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.dense:
            feats.append(torch.relu(conv(torch.cat(feats, 1) if len(feats) > 1 else x)))
        return self.fuse(torch.cat(feats, 1))


class BiDenseUnit(nn.Module):
    """One inter-block unit: compression conv + ReLU, intra dense block, local skip from the compressed input."""

    def __init__(self, in_channels: int, n_feats: int = 64, growth: int = 64, n_layers: int = 8,
                 compression_kernel: int = 3):
        super().__init__()
        self.compress = nn.Conv2d(in_channels, n_feats, compression_kernel, padding=compression_kernel // 2)
        self.block = IntraDenseBlock(n_feats, growth, n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = torch.relu(self.compress(x))
        return self.block(c) + c


def deconv_upsampler(scale: int, n_feats: int) -> nn.Sequential:
    """DBDN's ``upsample_wo_act(scale, 'deconv')``: transposed convs, no activation; empty for x1."""
    if scale == 3:
        return nn.Sequential(nn.ConvTranspose2d(n_feats, n_feats, 9, stride=3, padding=3))
    if scale >= 1 and scale & (scale - 1) == 0:
        return nn.Sequential(*[nn.ConvTranspose2d(n_feats, n_feats, 6, stride=2, padding=2)
                               for _ in range(scale.bit_length() - 1)])
    raise ValueError(f"deconv upsampler supports x1, x2^k and x3, not x{scale}")


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
            up = deconv_upsampler(scale, n_feats)
        elif upsampler == "espcnn":
            up = Upsampler(default_conv, scale, n_feats)
        else:
            raise ValueError(f"upsampler must be 'deconv' or 'espcnn', not {upsampler!r}")
        self.tail = nn.Sequential(up, default_conv(n_feats, n_colors, 3))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Head + inter-block dense body + global skip (64 channels, LR size)."""
        x = self.head(x)
        stack = [self.body.entry(x)]
        for unit in self.body.units:
            stack.append(unit(torch.cat(stack, 1) if len(stack) > 1 else stack[0]))
        res = self.body.conv(self.body.fusion(torch.cat(stack, 1)))
        return res + x

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
    ups = sorted(key for key in sd if key.startswith("tail.0.") and key.endswith(".weight"))
    if not ups:
        return {"compression_kernel": k, "upsampler": None, "scale": 1}
    first = sd[ups[0]]
    if first.shape[-1] in (6, 9) and first.shape[0] == n_feats and first.shape[1] == n_feats:
        scale = 3 if first.shape[-1] == 9 else 2 ** len(ups)
        return {"compression_kernel": k, "upsampler": "deconv", "scale": scale}
    return {"compression_kernel": k, "upsampler": "espcnn", "scale": upsampler_scale(sd, "tail.0.", n_feats)}


class DBDNUpscaler(StrategicIntegerUpscaler):
    """DBDN: one network per integer scale (x2/x3/x4 as released; x1 and x8 also build). Variants: ``dbdn``
    (default, code layout), ``dbdn-espcnn`` (DBDN+ network, sub-pixel tail), ``dbdn-1x1`` (1x1 compression).
    Decimal scales: ``strategy=`` (default ``ceil-then-down``; see ``sr_bench.models.strategies``)."""

    model_name: ClassVar[str] = "dbdn"
    family_scales: ClassVar[tuple[int, ...]] = (2, 3, 4)
    variants: ClassVar[dict[str, dict]] = DBDN_VARIANTS
    default_variant: ClassVar[str] = "dbdn"

    def build(self, scale: int) -> nn.Module:
        return DBDN(scale=scale, rgb_range=255, **self.variants[self.variant])

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
