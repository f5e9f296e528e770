"""LapSRN (Lai et al., CVPR'17), as defined by ``phoenix104104/LapSRN`` ``init_LapSRN_model.m``.

Layout, key names and departures from the paper: docs/architectures.md, "LapSRN".
"""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import PerScaleNetworks, build_module, is_matconvnet_file, load_strict
from sr_bench.models.card_files import builtin_card
from sr_bench.models.interface import TrainingForward
from sr_bench.models.luma import LumaUpscaler, pyramid_targets, training_net_input, training_y
from sr_bench.models.matconvnet import check_standard_layer, load_dagnn, read_dagnn
from sr_bench.models.tiling import run_network

LEAK = 0.2
# MatConvNet ConvTranspose crops used by the official models, per filter size (init_*_model.m: f = 3 -> [0 1 0 1];
# the 4x4 image upsampler: crop 1 on every side).
CONVT_CROPS = {(3, 3): (0, 1, 0, 1), (5, 5): (1, 2, 1, 2), (4, 4): (1, 1, 1, 1)}


class CroppedConvTranspose2d(nn.ConvTranspose2d):
    """MatConvNet ``vl_nnconvt(..., 'upsample', u, 'crop', [top bottom left right])``: the full transposed convolution
    (``u * (H - 1) + FH`` rows) with ``crop`` rows/columns removed from each side. ``weight`` is (Cin, Cout, FH, FW)
    as in ``nn.ConvTranspose2d``; for the 3x3 crop [0 1 0 1] the output is exactly 2H x 2W, its first row aligned with
    the full output's first row (asymmetric, so not expressible with ``padding``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 2,
                 crop: tuple[int, int, int, int] = (0, 1, 0, 1), bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.crop = tuple(int(c) for c in crop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride)
        top, bottom, left, right = self.crop
        return y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", crop={self.crop}"


def bilinear_kernel_(weight: torch.Tensor) -> None:
    """``bilinear_kernel.m``: the separable bilinear upsampling filter (4x4: [.25 .75 .75 .25] outer itself)."""
    k = weight.shape[-1]
    radius = math.ceil(k / 2)
    center = radius if k % 2 == 1 else radius + 0.5
    taps = [1.0 - abs(c - center) / radius for c in range(1, k + 1)]
    t = torch.tensor(taps, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        weight.copy_((t[:, None] * t[None, :]).expand_as(weight))


def image_upsampler() -> CroppedConvTranspose2d:
    m = CroppedConvTranspose2d(1, 1, 4, stride=2, crop=CONVT_CROPS[(4, 4)], bias=False)
    bilinear_kernel_(m.weight)
    return m


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAK)


class LapSRNLevel(nn.Module):
    def __init__(self, n_feats: int = 64, depth: int = 10):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(n_feats, n_feats, 3, padding=1) for _ in range(depth))
        self.upconv = CroppedConvTranspose2d(n_feats, n_feats, 3, stride=2, crop=CONVT_CROPS[(3, 3)])
        self.residual = nn.Conv2d(n_feats, 1, 3, padding=1)
        self.img_up = image_upsampler()


class LapSRN(nn.Module):
    """LapSRN for one scale 2^L. ``forward(y)`` -> the last level's Y (``return_all=True``: every level's)."""

    def __init__(self, scale: int = 4, depth: int = 10, n_feats: int = 64):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"LapSRN scales are powers of 2, not {scale}")
        self.scale = scale
        self.depth = depth
        self.input_conv = nn.Conv2d(1, n_feats, 3, padding=1)
        self.levels = nn.ModuleList(LapSRNLevel(n_feats, depth) for _ in range(int(math.log2(scale))))

    def forward(self, y: torch.Tensor, return_all: bool = False):
        feat = lrelu(self.input_conv(y))
        img = y
        outputs = []
        for level in self.levels:
            for conv in level.convs:
                feat = lrelu(conv(feat))
            feat = lrelu(level.upconv(feat))
            img = level.img_up(img) + level.residual(feat)
            outputs.append(img)
        return outputs if return_all else img


INPUT_CONV_NAMES = {"input_conv_f": "input_conv.weight", "input_conv_b": "input_conv.bias"}


def level_names(depth: int) -> dict[str, str]:
    """MatConvNet param name -> state_dict key in one pyramid level of ``depth`` convs: MS-LapSRN's shared level, and
    each LapSRN level with ``level{n}_`` / ``levels.{i}.`` in front."""
    names = {f"conv{d + 1}_{m}": f"convs.{d}.{p}" for d in range(depth) for m, p in (("f", "weight"), ("b", "bias"))}
    return names | {"upconv_f": "upconv.weight", "upconv_b": "upconv.bias", "residual_conv_f": "residual.weight",
                    "residual_conv_b": "residual.bias", "img_up_f": "img_up.weight"}


def official_names(levels: int, depth: int) -> dict[str, str]:
    """MatConvNet param name -> our state_dict key, for a LapSRN with ``levels`` levels of ``depth`` convs."""
    names = dict(INPUT_CONV_NAMES)
    for i in range(levels):  # level{L} is the first pyramid level
        names |= {f"level{levels - i}_{m}": f"levels.{i}.{k}" for m, k in level_names(depth).items()}
    return names


def shape_of_official(params: Iterable[str]) -> tuple[int, int] | None:
    """(levels, depth) from LapSRN MatConvNet param names, or None."""
    levels, depth = set(), set()
    for p in params:
        m = re.fullmatch(r"level(\d+)_conv(\d+)_f", p)
        if m:
            levels.add(int(m.group(1)))
            depth.add(int(m.group(2)))
    return (max(levels), max(depth)) if levels else None


def shape_of_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[int, int] | None:
    """(levels, depth) of one of our LapSRN state_dicts, or None."""
    levels = {int(m.group(1)) for k in sd if (m := re.match(r"levels\.(\d+)\.", k))}
    depth = {int(m.group(1)) for k in sd if (m := re.match(r"levels\.0\.convs\.(\d+)\.weight", k))}
    return (max(levels) + 1, max(depth) + 1) if levels and depth else None


def load_official(path: Path, model_name: str) -> tuple[LapSRN, str]:
    """Build and load a LapSRN from an official ``LapSRN_x{2,4,8}.mat``; returns (net, sha256 of the file)."""
    dag = read_dagnn(path, model_name)
    shape = shape_of_official(dag.params)
    if shape is None:
        hint = ("it looks like an MS-LapSRN file (shared conv1_f ... upconv_f): use --models mslapsrn=PATH"
                if "conv1_f" in dag.params else "no level{n}_conv{d}_f params found")
        raise UserError(f"MatConvNet file {str(path)!r} is not a LapSRN model; {hint}")
    levels, depth = shape
    net = build_module(lambda: LapSRN(2**levels, depth), meta=True)
    load_dagnn(net, dag, official_names(levels, depth), model_name,
               check_layer=lambda la: check_standard_layer(la, CONVT_CROPS))
    return net, dag.sha256


def pyramid_training(net: nn.Module, run: Callable, reload_opts: dict | None = None) -> TrainingForward:
    """Training on the LR Y: ``run(y, s, return_all)`` is the pyramid's Y (every level's with ``return_all``, for the
    multi-level loss, each level against the HR Y resized to its size)."""

    def predict(lr, hr, s, gen):
        return run(training_net_input(training_y(lr)), s, False), training_y(hr).float()

    def predict_levels(lr, hr, s, gen):
        outs = run(training_net_input(training_y(lr)), s, True)
        return outs, pyramid_targets(training_y(hr), [o.shape[-2:] for o in outs])
    return TrainingForward(net, predict, "y", reload_opts or {}, predict_levels=predict_levels)


class LapSRNUpscaler(PerScaleNetworks, LumaUpscaler):
    """LapSRN: one network per power-of-2 scale (official ``LapSRN_x2/x4/x8.mat``, joined by ``os.pathsep``, or our
    state_dicts). Other scales: ``ceil-then-down`` on the Y, the x3 recipe of ``SR_LapSRN.m`` and the TPAMI table."""

    model_name: ClassVar[str] = "lapsrn"
    tile_overlap: ClassVar[int] = 24  # >= the receptive field of x2/x4/x8 (docs/tiling.md)
    upsampling: ClassVar[str] = "progressive"
    family_scales: ClassVar[tuple[int, ...]] = (2, 4, 8)

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale: int | None = None, depth: int = 10):
        if scale is not None and int(scale) not in self.network_scales:
            raise UserError(f"model {self.model_name!r} has networks for x2, x4, x8, not x{scale}")
        self.depth = int(depth)
        self.nets: dict[int, nn.Module] = {}
        paths = self._setup(checkpoint, allow_untrained, {"depth": self.depth})
        for path in paths:
            net, sha = self._load(path)
            k = self._claim(path, net.scale, scale)
            self.nets[k], self.scale_sha256[k] = self._prepare(net), sha
        self._hold(paths, scale)
        if paths:  # the released LapSRN_x8.mat has 5 convs per level, x2/x4 have 10
            depths = {f"x{k}": self.nets[k].depth for k in sorted(self.nets)}
            self.config["depth"] = next(iter(depths.values())) if len(set(depths.values())) == 1 else depths

    def net(self, k: int) -> nn.Module:
        if k not in self.nets:  # untrained: built on first use, seeded
            self.nets[k] = self._prepare(build_module(lambda: LapSRN(k, self.depth), meta=False))
        return self.nets[k]

    def _load(self, path: Path) -> tuple[LapSRN, str]:
        if is_matconvnet_file(path):
            return load_official(path, self.model_name)
        sd, sha = self._read_state_dict(path)
        shape = shape_of_state_dict(sd)
        if shape is None:
            raise UserError(f"checkpoint {str(path)!r} is not a LapSRN state_dict (no levels.N.convs.* keys); "
                            f"official weights are the LapSRN_x{{2,4,8}}.mat files")
        levels, depth = shape
        net = build_module(lambda: LapSRN(2**levels, depth), meta=True)
        load_strict(net, sd, self.model_name, path)
        return net, sha

    def scale_problem(self, scale: Fraction) -> str | None:
        s = Fraction(scale)
        if any(k >= s for k in self.scales.integers):
            return None
        release = next((r.file for r in sorted(builtin_card(self.model_name).releases, key=lambda r: r.scales or ())
                        if r.scales and min(r.scales) >= s), None)  # the smallest release that reaches s
        add = f"add {release}" if release else "add a checkpoint of that scale"
        return self._none_above(s, f"{add}, joined to the others with '{os.pathsep}'")

    def luma(self, y_lr: torch.Tensor, y_bicubic: torch.Tensor, scale: Fraction) -> torch.Tensor:
        k = self.scale_for(scale)
        return run_network(self.net(k), self._net_input(y_lr), k)

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        net = self.net(int(scale))
        return pyramid_training(net, lambda y, s, every: net(y, return_all=every))
