"""Meta-RDN (Hu et al., "Meta-SR", CVPR'19), key-compatible with ``XuecaiHu/Meta-SR-Pytorch`` ``model/metardn.py``
(the released ``model_1000.pt`` is a bare state_dict with these keys).

Layout, key names and departures from the paper: docs/architectures.md, "Meta-RDN (Meta-SR)".
"""

from __future__ import annotations

from fractions import Fraction
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import MeanShift, NetworkUpscaler
from sr_bench.models.archs.rdn import RDNBody, rdn_config_of
from sr_bench.models.interface import TrainingForward
from sr_bench.models.tiling import run_network


class Pos2Weight(nn.Module):
    """Weight-prediction network: (1/r, dy, dx) -> a kernel_size^2 * inC * outC conv kernel for one HR pixel."""

    def __init__(self, inC: int, kernel_size: int = 3, outC: int = 3):
        super().__init__()
        self.inC, self.kernel_size, self.outC = inC, kernel_size, outC
        self.meta_block = nn.Sequential(nn.Linear(3, 256), nn.ReLU(inplace=True),
                                        nn.Linear(256, kernel_size * kernel_size * inC * outC))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.meta_block(x)


def meta_projection(in_len: int, out_len: int, scale: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """LR index and fractional offset of each of ``out_len`` HR positions (float32, as the official code)."""
    coord = torch.arange(0, out_len, 1, device=device).float().mul(1.0 / scale)
    base = torch.floor(coord)
    return base.long().clamp_(0, in_len - 1), coord - base


class MetaRDN(RDNBody):
    """RDN features + meta-upscale; ``forward(x, scale, size)`` with x in 0..``rgb_range``."""

    chunk_pixels: int = 1 << 15  # HR pixels whose kernels are predicted at once (each 1728 floats)
    # ``srbench run --compile``: the RDN body; the adapter calls it, not forward (the meta-upscale loops in Python)
    compiled_methods: ClassVar[tuple[str, ...]] = ("features",)

    def __init__(self, G0: int = 64, RDNkSize: int = 3, RDNconfig: str = "B", rgb_range: float = 255,
                 n_colors: int = 3):
        super().__init__()
        self.sub_mean = MeanShift(rgb_range)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self._make_body(G0, RDNkSize, RDNconfig, n_colors)
        self.P2W = Pos2Weight(inC=G0, outC=n_colors)

    def meta_upscale(self, feat: torch.Tensor, scale: float, size: tuple[int, int]) -> torch.Tensor:
        n, c, h, w = feat.shape
        oh, ow = int(size[0]), int(size[1])
        iy, dy = meta_projection(h, oh, scale, feat.device)
        ix, dx = meta_projection(w, ow, scale, feat.device)
        inv = torch.zeros(1, 1, device=feat.device)
        inv[0, 0] = 1.0 / scale  # stored in float32, as scale_mat in input_matrix_wpn
        k = self.P2W.kernel_size**2 * c
        cols = F.unfold(feat, self.P2W.kernel_size, padding=self.P2W.kernel_size // 2).view(n, k, h, w)
        out = feat.new_empty(n, self.P2W.outC, oh, ow)
        rows = max(1, self.chunk_pixels // max(ow, 1))
        for y0 in range(0, oh, rows):
            y1 = min(oh, y0 + rows)
            ny = y1 - y0
            pos = torch.stack(
                [inv.expand(ny, ow), dy[y0:y1, None].expand(ny, ow), dx[None, :].expand(ny, ow)], dim=-1
            ).reshape(-1, 3)
            weight = self.P2W(pos).view(ny, ow, k, self.P2W.outC)
            patch = cols[:, :, iy[y0:y1]][:, :, :, ix]  # (n, k, ny, ow)
            out[:, :, y0:y1] = torch.einsum("nkyx,yxko->noyx", patch, weight)
        return out

    def forward(self, x: torch.Tensor, scale: float, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None:
            size = (int(scale * x.shape[-2]), int(scale * x.shape[-1]))
        feat = self.features(self.sub_mean(x))
        return self.add_mean(self.meta_upscale(feat, float(scale), size))


class MetaSRUpscaler(NetworkUpscaler):
    """Meta-RDN: one network for every scale; native in (1, 4] (its training range), ``extrapolate`` beyond."""

    model_name: ClassVar[str] = "metasr"
    tiles_networks: ClassVar[bool] = True

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale=None, variant: str = "B"):
        self._refuse_scale(scale)
        if variant not in ("A", "B"):
            raise UserError(f"model {self.model_name!r} has RDN configs 'A' and 'B', not {variant!r}")
        self.variant = variant
        paths = self._setup(checkpoint, allow_untrained, {"variant": variant, "rgb_range": 255})
        sd, _ = self._one_checkpoint(paths)
        self.net = self._network(lambda: MetaRDN(G0=64, RDNkSize=3, RDNconfig=variant, rgb_range=255), sd, paths,
                                 self._hint)

    def _hint(self, sd) -> str:
        cfg = rdn_config_of(sd)
        return f"it looks like an RDN config-{cfg} body (variant={cfg!r})" if cfg and cfg != self.variant else ""

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        net = self.net

        def predict(lr, hr, s, gen):
            return net(lr * 255.0, float(s), tuple(hr.shape[-2:])) / 255.0, hr
        return TrainingForward(net, predict, "rgb")

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        x = self._input(lr) * 255.0
        net = self.net
        with torch.inference_mode():  # MetaRDN.forward in two steps: the LR features may be tiled, the decoder not
            feat = run_network(lambda t: net.features(net.sub_mean(t)), x, 1)
            y = net.add_mean(net.meta_upscale(feat, float(Fraction(scale)), (int(size[0]), int(size[1]))))
            return (y.to(torch.float64) / 255.0).clamp_(0.0, 1.0)

