"""ASDN (Any-Scale Deep Network) and FSDN (its fixed-scale sibling), Shen, Wang, Zhang, arXiv 2010.02414.

Layout, key names and departures from the paper: docs/architectures.md, "ASDN and FSDN".
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import ClassVar, Mapping

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models.archs.blocks import MeanShift, NetworkUpscaler, default_conv, dense_chain
from sr_bench.models.archs.dbdn import BiDenseUnit, deconv_scale, deconv_upsampler
from sr_bench.models.interface import TrainingForward
from sr_bench.models.strategies import StrategicIntegerUpscaler, fit, run_recursive
from sr_bench.models.tiling import run_network

LFR_LEVELS = 11
LOWEST_LEVEL_SCALE = Fraction(10001, 10000)  # Fig. 2 "Bicubic x1.0001"


def lfr_scales(levels: int = LFR_LEVELS) -> list[Fraction]:
    """r_l = 1 + l / (L - 1), l = 0..L-1 (exact)."""
    return [1 + Fraction(level, levels - 1) for level in range(levels)]


def lfr_level(r: Fraction, levels: int = LFR_LEVELS) -> tuple[int, Fraction]:
    """(i, w_r) for a scale r in (1, 2]: i = ceil((L-1)(r-1)), w_r = (L-1)(r_i - r) (exact fractions)."""
    r = Fraction(r)
    if not 1 < r <= 2:
        raise ValueError(f"an LFR pass takes a scale in (1, 2], not {r}")
    i = math.ceil((levels - 1) * (r - 1))
    return i, (levels - 1) * (lfr_scales(levels)[i] - r)


class SpatialAttention(nn.Module):
    """1x1 (C -> eC) -> ReLU -> 1x1 (eC -> C) -> sigmoid: a per-pixel, per-channel mask, times the input."""

    def __init__(self, channels: int = 3, expansion: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * expansion, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels * expansion, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(x)


class ReconstructionBranch(nn.Module):
    """IRB: (FSDN: transposed convs ``up``) -> conv to RGB -> spatial attention; the caller adds the bicubic input."""

    def __init__(self, in_channels: int, n_colors: int = 3, kernel_size: int = 1, expansion: int = 2,
                 up: nn.Module | None = None):
        super().__init__()
        self.up = up if up is not None else nn.Identity()
        self.conv = nn.Conv2d(in_channels, n_colors, kernel_size, padding=kernel_size // 2)
        self.sa = SpatialAttention(n_colors, expansion)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.sa(self.conv(self.up(feats)))


class FeatureMapping(nn.Module):
    """The mean shifts and the Feature Mapping Branch shared by ASDN and FSDN; ``features`` returns H (module doc)."""

    def __init__(self, n_feats: int, n_dab: int, n_layers: int, growth: int, reduction: int, pool: str,
                 compression_kernel: int, rgb_range: float, n_colors: int):
        super().__init__()
        self.sub_mean = MeanShift(rgb_range)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(default_conv(n_colors, n_feats, 3))
        self.body = nn.ModuleList(
            BiDenseUnit(n_feats * (b + 1), n_feats, growth, n_layers, compression_kernel, relu=False,
                        reduction=reduction, pool=pool) for b in range(n_dab)
        )
        self.out_channels = n_feats * (n_dab + 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(dense_chain(self.body, self.head(x)), 1)


class ASDN(FeatureMapping):
    """ASDN network: shared FMB, one IRB per LFR level. ``forward(x_up, level)``: ``x_up`` is the LR image already
    bicubic-upsampled by the level's scale (0..``rgb_range``); returns that level's SR image."""

    # ``srbench run --compile``: the FMB, not forward, whose ``self.tail[level]`` would compile once per level
    compiled_methods: ClassVar[tuple[str, ...]] = ("features",)

    def __init__(self, levels: int = LFR_LEVELS, n_feats: int = 64, n_dab: int = 16, n_layers: int = 8,
                 growth: int = 64, reduction: int = 16, pool: str = "avg", compression_kernel: int = 1,
                 irb_kernel: int = 1, sa_expansion: int = 2, rgb_range: float = 255, n_colors: int = 3):
        super().__init__(n_feats, n_dab, n_layers, growth, reduction, pool, compression_kernel, rgb_range, n_colors)
        self.levels = levels
        self.tail = nn.ModuleList(ReconstructionBranch(self.out_channels, n_colors, irb_kernel, sa_expansion)
                                  for _ in range(levels))

    def forward(self, x_up: torch.Tensor, level: int) -> torch.Tensor:
        z = self.sub_mean(x_up)
        return self.add_mean(self.tail[level](self.features(z)) + z)


class FSDN(FeatureMapping):
    """FSDN network for one integer ``scale``: FMB on the LR image, one IRB with transposed convs, + MATLAB bicubic."""

    def __init__(self, scale: int = 2, n_feats: int = 64, n_dab: int = 16, n_layers: int = 8, growth: int = 64,
                 reduction: int = 16, pool: str = "avg", compression_kernel: int = 1, deconv_feats: int = 64,
                 irb_kernel: int = 1, sa_expansion: int = 2, rgb_range: float = 255, n_colors: int = 3):
        super().__init__(n_feats, n_dab, n_layers, growth, reduction, pool, compression_kernel, rgb_range, n_colors)
        self.scale = scale
        up = deconv_upsampler(scale, self.out_channels, deconv_feats)
        self.tail = ReconstructionBranch(deconv_feats if len(up) else self.out_channels, n_colors, irb_kernel,
                                         sa_expansion, up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.sub_mean(x)
        base = imresize(z, scale=self.scale) if self.scale != 1 else z
        return self.add_mean(self.tail(self.features(z)) + base)


ASDN_VARIANTS: dict[str, dict] = {
    "asdn": {"pool": "avg"},
    "asdn-maxpool": {"pool": "max"},  # the reimplementation's channel attention
}


class ASDNUpscaler(NetworkUpscaler):
    """ASDN: one network for every scale; ``native`` in (1, 2] (one LFR pass), the card's ``recursive-x2`` above."""

    model_name: ClassVar[str] = "asdn"
    tiles_networks: ClassVar[bool] = True

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale=None, variant: str = "asdn",
                 levels: int = LFR_LEVELS, n_dab: int = 16):
        self._refuse_scale(scale)
        if variant not in ASDN_VARIANTS:
            raise UserError(f"model {self.model_name!r} has no variant {variant!r}; known: {', '.join(ASDN_VARIANTS)}")
        if levels < 2:
            raise UserError(f"model {self.model_name!r} needs at least 2 LFR levels, not {levels}")
        if int(n_dab) != n_dab or n_dab < 1:
            raise UserError(f"model {self.model_name!r} needs n_dab >= 1 dense attention blocks (the paper's 16), "
                            f"not {n_dab}")
        self.variant, self.levels, self.n_dab = variant, levels, int(n_dab)
        # n_dab < 16 is a smaller network than the paper's (e.g. a quick GPU training check), not ASDN's results
        paths = self._setup(checkpoint, allow_untrained,
                            {"variant": variant, "levels": levels, "rgb_range": 255, "n_dab": self.n_dab})
        self.last_passes: list[tuple] = []
        sd, _ = self._one_checkpoint(paths)
        self.net = self._network(lambda: ASDN(levels=levels, n_dab=self.n_dab, **ASDN_VARIANTS[variant]), sd, paths,
                                 self._hint)

    def _hint(self, sd: Mapping[str, torch.Tensor]) -> str:
        if "tail.conv.weight" in sd:
            return "it looks like an FSDN checkpoint (one reconstruction branch): use --models fsdn=PATH"
        n = len({k.split(".")[1] for k in sd if k.startswith("tail.") and k.endswith(".conv.weight")})
        if n and n != self.levels:
            return f"it has {n} reconstruction branches: pass levels={n}"
        blocks = len({k.split(".")[1] for k in sd if k.startswith("body.")})
        if blocks and blocks != self.n_dab:
            return f"it has {blocks} dense attention blocks: pass n_dab={blocks}"
        return ""

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        """``lfr_pass`` with autograd: level i's output, blended with level i-1's between levels, so both
        reconstruction branches learn what the deployed blend asks of them."""
        net = self.net

        def predict(lr, hr, s, gen):
            x = lr.to(torch.float64) * 255.0  # level inputs in float64, as the adapter makes them
            out, i, w = self._blend(lambda t, level: net(self.level_input(t, level).to(torch.float32), level), x, s)
            return fit(out, tuple(hr.shape[-2:]), w == 0, f"{self.name} level {i}") / 255.0, hr
        return TrainingForward(net, predict, "rgb")

    def level_input(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """x (0..255, float64) bicubic-upsampled for LFR level ``level`` (see the module docstring)."""
        if level == 0:
            return imresize(x, scale=LOWEST_LEVEL_SCALE, size=(x.shape[-2], x.shape[-1]))
        return imresize(x, scale=lfr_scales(self.levels)[level])

    def level_output(self, x: torch.Tensor, level: int) -> torch.Tensor:
        with torch.inference_mode():
            return run_network(lambda t: self.net(t, level),
                               self.level_input(x, level).to(torch.float32)).to(torch.float64)

    def _blend(self, run_level, x: torch.Tensor, r: Fraction) -> tuple[torch.Tensor, int, Fraction]:
        """O_r on level i's grid (module docstring, step 3), with ``run_level(x, l)`` giving O_l; and i, w_r."""
        i, w = lfr_level(r, self.levels)
        out = run_level(x, i)
        if w != 0:
            out = out + float(w) * (imresize(run_level(x, i - 1), size=(out.shape[-2], out.shape[-1])) - out)
        return out, i, w

    def lfr_pass(self, x: torch.Tensor, r: Fraction, size: tuple[int, int]) -> torch.Tensor:
        out, i, w = self._blend(self.level_output, x, r)
        self.last_passes.append((Fraction(r), (x.shape[-2], x.shape[-1]), (int(size[0]), int(size[1])), i, w))
        exact = w == 0 and out.shape[-2] >= size[0] and out.shape[-1] >= size[1]
        return fit(out, size, exact, f"{self.name} level {i}")

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s = Fraction(scale)
        if s <= 1:
            raise UserError(f"model {self.model_name!r} upscales by a scale > 1, not x{s}")
        self.last_passes = []
        x = self._input(lr).to(torch.float64) * 255.0
        y = run_recursive(self.lfr_pass, x, s, (int(size[0]), int(size[1])))
        return (y / 255.0).clamp_(0.0, 1.0)


def fsdn_scale_of(sd: Mapping[str, torch.Tensor]) -> int | None:
    if "head.0.weight" not in sd or "tail.conv.weight" not in sd:
        return None
    return deconv_scale([sd[k] for k in sorted(sd) if k.startswith("tail.up.") and k.endswith(".weight")])


class FSDNUpscaler(StrategicIntegerUpscaler):
    """FSDN: one post-upsampling network per integer scale (Table 1: x2/x3/x4/x8)."""

    model_name: ClassVar[str] = "fsdn"
    network = FSDN
    variants: ClassVar[dict[str, dict]] = {"fsdn": {"pool": "avg", "deconv_feats": 64}}
    default_variant: ClassVar[str] = "fsdn"

    def infer_scale(self, sd):
        return fsdn_scale_of(sd)

    def mismatch_hint(self, sd) -> str:
        if any(k.startswith("tail.0.") for k in sd):
            return "it looks like an ASDN checkpoint (one IRB per LFR level): use --models asdn=PATH"
        return ""
