"""EDSR and EDSR-baseline (Lim et al., CVPRW'17), key-compatible with ``thstkdgus35/EDSR-PyTorch``
``src/model/edsr.py``. The LIIF encoder variant (``no_upsampling=True``, mean shift unused in ``forward`` as in
``yinboc/liif`` ``models/edsr.py``) has no ``tail``.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import MeanShift, Residual, Upsampler, default_conv
from sr_bench.models.strategies import StrategicIntegerUpscaler


class EDSR(nn.Module):
    """EDSR: head conv, ``n_resblocks`` resblocks (conv-ReLU-conv scaled by ``res_scale``, plus the input; no batch
    norm) + conv with a global skip, sub-pixel tail. Input/output in 0..``rgb_range`` (255 for the releases)."""

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0, scale: int = 2,
                 rgb_range: float = 255, n_colors: int = 3, no_upsampling: bool = False, mean_shift: bool = True):
        super().__init__()
        self.no_upsampling = no_upsampling
        self.mean_shift = mean_shift
        self.sub_mean = MeanShift(rgb_range)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(default_conv(n_colors, n_feats, 3))
        self.body = nn.Sequential(*[Residual(default_conv(n_feats, n_feats, 3), nn.ReLU(True),
                                             default_conv(n_feats, n_feats, 3), res_scale=res_scale)
                                    for _ in range(n_resblocks)], default_conv(n_feats, n_feats, 3))
        self.out_dim = n_feats if no_upsampling else n_colors
        if not no_upsampling:
            self.tail = nn.Sequential(Upsampler(scale, n_feats), default_conv(n_feats, n_colors, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean_shift:
            x = self.sub_mean(x)
        x = self.head(x)
        res = self.body(x)
        res += x
        if self.no_upsampling:
            return res
        x = self.tail(res)
        return self.add_mean(x) if self.mean_shift else x


EDSR_VARIANTS = {
    "edsr": {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1},
    "baseline": {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0},
}
_CARD_OF = {"edsr": "edsr", "baseline": "edsr-baseline"}


def edsr_shape_of(sd: Mapping[str, torch.Tensor]) -> tuple[int, int] | None:
    """(n_resblocks, n_feats) of an EDSR state_dict, or None."""
    head = sd.get("head.0.weight")
    if head is None or head.dim() != 4:
        return None
    blocks = {k.split(".")[1] for k in sd if k.startswith("body.") and ".body.0.weight" in k}
    return len(blocks), int(head.shape[0])


class EDSRUpscaler(StrategicIntegerUpscaler):
    """Full EDSR (32 resblocks, 256 features, res_scale 0.1); one network per scale x2/x3/x4 (x1 builds too: Meta-SR's
    EDSR(x1) baseline for ``strategy="bicubic-pre"``)."""

    model_name: ClassVar[str] = "edsr"
    network = EDSR
    variants: ClassVar[dict[str, dict]] = EDSR_VARIANTS
    default_variant: ClassVar[str] = "edsr"

    def mismatch_hint(self, sd) -> str:
        shape = edsr_shape_of(sd)
        for v, cfg in EDSR_VARIANTS.items():
            if v != self.variant and shape == (cfg["n_resblocks"], cfg["n_feats"]):
                return f"it looks like a {_CARD_OF[v]} checkpoint: use --models {_CARD_OF[v]}=PATH"
        return ""


class EDSRBaselineUpscaler(EDSRUpscaler):
    """EDSR-baseline (16 resblocks, 64 features, res_scale 1)."""

    model_name: ClassVar[str] = "edsr-baseline"
    default_variant: ClassVar[str] = "baseline"
