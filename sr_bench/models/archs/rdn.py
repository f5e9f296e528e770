"""RDN (Zhang et al., CVPR'18), key-compatible with ``thstkdgus35/EDSR-PyTorch`` ``src/model/rdn.py``.

No mean shift: the EDSR-PyTorch RDN takes RGB in 0..255 directly. ``no_upsampling=True`` gives the feature extractor
used by Meta-RDN and RDN-LIIF (64 channels out). Config B is the paper's model.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.models.strategies import StrategicIntegerUpscaler

RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}  # (D blocks, C convs per block, G growth)


class RDB_Conv(nn.Module):
    def __init__(self, in_channels: int, grow_rate: int, k_size: int = 3):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, grow_rate, k_size, padding=(k_size - 1) // 2, stride=1),
                                  nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv(x)), 1)


class RDB(nn.Module):
    """Residual dense block: C densely connected conv+ReLU layers, 1x1 local feature fusion, local residual."""

    def __init__(self, grow_rate0: int, grow_rate: int, n_conv_layers: int, k_size: int = 3):
        super().__init__()
        self.convs = nn.Sequential(*[RDB_Conv(grow_rate0 + c * grow_rate, grow_rate, k_size)
                                     for c in range(n_conv_layers)])
        self.LFF = nn.Conv2d(grow_rate0 + n_conv_layers * grow_rate, grow_rate0, 1, padding=0, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LFF(self.convs(x)) + x


class RDNBody(nn.Module):
    """Shallow features, D RDBs, global feature fusion and global residual (everything but the upsampler)."""

    def _make_body(self, G0: int, k_size: int, config: str, n_colors: int) -> None:
        self.D, C, G = RDN_CONFIGS[config]
        self.G = G
        pad = (k_size - 1) // 2
        self.SFENet1 = nn.Conv2d(n_colors, G0, k_size, padding=pad, stride=1)
        self.SFENet2 = nn.Conv2d(G0, G0, k_size, padding=pad, stride=1)
        self.RDBs = nn.ModuleList([RDB(G0, G, C, k_size) for _ in range(self.D)])
        self.GFF = nn.Sequential(
            nn.Conv2d(self.D * G0, G0, 1, padding=0, stride=1),
            nn.Conv2d(G0, G0, k_size, padding=pad, stride=1),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.SFENet1(x)
        x = self.SFENet2(f1)
        outs = []
        for block in self.RDBs:
            x = block(x)
            outs.append(x)
        x = self.GFF(torch.cat(outs, 1))
        x += f1
        return x


class RDN(RDNBody):
    def __init__(self, G0: int = 64, RDNkSize: int = 3, RDNconfig: str = "B", scale: int = 2, n_colors: int = 3,
                 no_upsampling: bool = False):
        super().__init__()
        self._make_body(G0, RDNkSize, RDNconfig, n_colors)
        self.no_upsampling = no_upsampling
        G, k, pad = self.G, RDNkSize, (RDNkSize - 1) // 2
        self.out_dim = G0 if no_upsampling else n_colors
        if not no_upsampling:
            # x1 (PixelShuffle(1) = identity) is Meta-SR's RDN(x1) baseline; x4 is two x2 steps
            shuffles = {1: [1], 2: [2], 3: [3], 4: [2, 2]}.get(scale)
            if shuffles is None:
                raise ValueError("RDN scale must be 1, 2, 3 or 4")
            layers: list[nn.Module] = []
            for i, r in enumerate(shuffles):
                layers += [nn.Conv2d(G0 if i == 0 else G, G * r * r, k, padding=pad, stride=1), nn.PixelShuffle(r)]
            self.UPNet = nn.Sequential(*layers, nn.Conv2d(G, n_colors, k, padding=pad, stride=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return x if self.no_upsampling else self.UPNet(x)


def rdn_config_of(sd) -> str | None:
    """'A' or 'B' from the number of RDBs in a state_dict, or None."""
    return {20: "A", 16: "B"}.get(len({k.split(".")[1] for k in sd if k.startswith("RDBs.")}))


class RDNUpscaler(StrategicIntegerUpscaler):
    """RDN (config B by default); one network per scale x2/x3/x4 (x1 builds for ``strategy="bicubic-pre"``, Meta-SR's
    RDN(x1) baseline)."""

    model_name: ClassVar[str] = "rdn"
    network = RDN
    variants: ClassVar[dict[str, dict]] = {"B": {"RDNconfig": "B", "G0": 64}, "A": {"RDNconfig": "A", "G0": 64}}
    default_variant: ClassVar[str] = "B"

    def infer_scale(self, sd):
        if "UPNet.4.weight" in sd:
            return 4
        first, last = sd.get("UPNet.0.weight"), sd.get("UPNet.2.weight")
        if first is None or last is None or first.dim() != 4 or last.dim() != 4:
            return None
        r2, rem = divmod(int(first.shape[0]), int(last.shape[1]))
        return {1: 1, 4: 2, 9: 3}.get(r2) if rem == 0 else None

    def mismatch_hint(self, sd) -> str:
        cfg = rdn_config_of(sd)
        return f"it looks like an RDN config-{cfg} checkpoint (variant={cfg!r})" if cfg and cfg != self.variant else ""
