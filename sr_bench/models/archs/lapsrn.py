"""LapSRN (Lai et al., CVPR'17), as defined by ``phoenix104104/LapSRN`` ``init_LapSRN_model.m``.

Y channel only, progressive x2 pyramid with ``L = log2(scale)`` levels (x2: 1, x4: 2, x8: 3), 64 features, 3x3 filters:

- ``input_conv`` 3x3 1->64, LeakyReLU(0.2);
- per level: ``convs.{0..depth-1}`` 3x3 64->64 each + LReLU (depth 10), ``upconv`` transposed conv 3x3 stride 2 with
  MatConvNet crop [top bottom left right] = [0 1 0 1] + LReLU, ``residual`` conv 3x3 64->1 (on the upsampled features);
- image branch per level: ``img_up`` transposed conv 4x4 stride 2, crop 1 on every side, no bias (bilinear-initialised,
  trained); level output = ``img_up(previous output) + residual``.

Keys ``levels.{i}`` count pyramid levels from the LR side: MatConvNet names them the other way round
(``level{L}`` is the first, ``level1`` the last, whose output ``level1_output`` is what ``SR_LapSRN.m`` returns).

Parameters: x2 407,441; x4 814,242; x8 1,221,043 (papers.md §0, depth 10). The released ``LapSRN_x8.mat`` has depth 5
(667,123 parameters); the depth is read from each file.
"""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import ClassVar, Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import (
    FromCard,
    build_module,
    buildable_scales,
    is_matconvnet_file,
    load_strict,
    read_checkpoint,
    trainable_scales,
    unwrap_state_dict,
)
from sr_bench.models.card_files import builtin_card
from sr_bench.models.interface import ScaleSupport, TrainingForward, scale_refusal
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


# --------------------------------------------------------------------------------------------------------------------
# Official MatConvNet names
# --------------------------------------------------------------------------------------------------------------------


def official_names(levels: int, depth: int) -> dict[str, str]:
    """MatConvNet param name -> our state_dict key, for a LapSRN with ``levels`` levels of ``depth`` convs."""
    names = {"input_conv_f": "input_conv.weight", "input_conv_b": "input_conv.bias"}
    for i in range(levels):
        n = levels - i  # level{L} is the first pyramid level
        for d in range(depth):
            names[f"level{n}_conv{d + 1}_f"] = f"levels.{i}.convs.{d}.weight"
            names[f"level{n}_conv{d + 1}_b"] = f"levels.{i}.convs.{d}.bias"
        names[f"level{n}_upconv_f"] = f"levels.{i}.upconv.weight"
        names[f"level{n}_upconv_b"] = f"levels.{i}.upconv.bias"
        names[f"level{n}_residual_conv_f"] = f"levels.{i}.residual.weight"
        names[f"level{n}_residual_conv_b"] = f"levels.{i}.residual.bias"
        names[f"level{n}_img_up_f"] = f"levels.{i}.img_up.weight"
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


# --------------------------------------------------------------------------------------------------------------------
# Adapter
# --------------------------------------------------------------------------------------------------------------------


class LapSRNUpscaler(LumaUpscaler):
    """LapSRN: one network per power-of-2 scale (official ``LapSRN_x2/x4/x8.mat``; several joined by ``os.pathsep``).

    Native at the scales it holds; any other scale s runs the smallest held scale >= s (2^ceil(log2 s) with all three
    releases) and MATLAB-bicubic-resizes the Y output to the target size: ``ceil-then-down``, the x3 recipe of
    ``SR_LapSRN.m`` and the TPAMI table. Accepts the official .mat files or our own state_dicts.
    """

    model_name: ClassVar[str] = "lapsrn"
    tiles_networks: ClassVar[bool] = True
    tile_overlap: ClassVar[int] = 24  # >= the receptive field of x2/x4/x8 (docs/tiling.md)
    upsampling: ClassVar[str] = "progressive"
    family_scales: ClassVar[tuple[int, ...]] = (2, 4, 8)
    network_scales = FromCard(buildable_scales, ())
    per_scale_training = FromCard(trainable_scales, ())

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale: int | None = None, depth: int = 10):
        if scale is not None and int(scale) not in self.network_scales:
            raise UserError(f"model {self.model_name!r} has networks for x2, x4, x8, not x{scale}")
        self.depth = int(depth)
        self.nets: dict[int, nn.Module] = {}
        paths = self._setup(checkpoint, allow_untrained, {"depth": self.depth})
        shas = []
        for path in paths:
            net, sha = self._load(path)
            k = net.scale
            if scale is not None and k != int(scale):
                raise UserError(f"checkpoint {str(path)!r} is a x{k} {self.model_name} model, "
                                f"but scale={scale} was asked")
            if k in self.nets:
                raise UserError(f"two checkpoints for x{k} given to model {self.model_name!r}; give one per scale")
            self.nets[k] = self._prepare(net)
            self.scale_sha256[k] = sha
            shas.append(sha)
        if paths:
            self.checkpoint_sha256 = "+".join(shas)
            available = frozenset(self.nets)
            depths = {f"x{k}": self.nets[k].depth for k in sorted(self.nets)}
            # the released LapSRN_x8.mat has 5 convs per level, x2/x4 have 10
            depth = next(iter(depths.values())) if len(set(depths.values())) == 1 else depths
        else:
            available = frozenset([int(scale)]) if scale is not None else frozenset(self.family_scales)
            depth = self.depth
        self.scales = ScaleSupport(integers=available)
        self.config.update(scales=sorted(available), depth=depth)

    def _load(self, path: Path) -> tuple[LapSRN, str]:
        if is_matconvnet_file(path):
            return load_official(path, self.model_name)
        obj, sha = read_checkpoint(path, self.model_name)
        sd, _ = unwrap_state_dict(obj, path, self.model_name)
        shape = shape_of_state_dict(sd)
        if shape is None:
            raise UserError(f"checkpoint {str(path)!r} is not a LapSRN state_dict (no levels.N.convs.* keys); "
                            f"official weights are the LapSRN_x{{2,4,8}}.mat files")
        levels, depth = shape
        net = build_module(lambda: LapSRN(2**levels, depth), meta=True)
        load_strict(net, sd, self.model_name, path)
        return net, sha

    def modules(self) -> Iterable[nn.Module]:
        return list(self.nets.values())

    def net(self, k: int) -> nn.Module:
        if k not in self.nets:  # untrained: built on first use, seeded
            with torch.inference_mode(False):
                self.nets[k] = self._prepare(build_module(lambda: LapSRN(k, self.depth), meta=False))
        return self.nets[k]

    def scale_problem(self, scale: Fraction) -> str | None:
        s = Fraction(scale)
        if any(k >= s for k in self.scales.integers):
            return None
        from sr_bench.scales import scale_text

        release = next((r.file for r in sorted(builtin_card(self.model_name).releases, key=lambda r: r.scales or ())
                        if r.scales and min(r.scales) >= s), None)  # the smallest release that reaches s
        add = f"add {release}" if release else "add a checkpoint of that scale"
        return (f"it holds x{', x'.join(map(str, sorted(self.scales.integers)))} only and ceil-then-down needs a "
                f"network of scale >= {scale_text(s)}: {add}, joined to the others with '{os.pathsep}'")

    def networks_for(self, scale: Fraction) -> list[nn.Module]:
        return [self.net(self.scale_for(Fraction(scale)))]

    def scale_for(self, s: Fraction) -> int:
        above = [k for k in sorted(self.scales.integers) if k >= s]
        if not above:
            raise scale_refusal(self.model_name, s, self.scale_problem(s))
        return above[0]

    def luma(self, y_lr: torch.Tensor, y_bicubic: torch.Tensor, scale: Fraction) -> torch.Tensor:
        k = self.scale_for(scale)
        return run_network(self.net(k), self._net_input(y_lr), k)

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        """The x``scale`` pyramid on the LR Y; the loss compares its Y with the HR's."""
        net = self.net(int(scale))

        def predict(lr, hr, s, gen):
            return net(training_net_input(training_y(lr))), training_y(hr).float()

        def predict_levels(lr, hr, s, gen):
            outs = net(training_net_input(training_y(lr)), return_all=True)
            return outs, pyramid_targets(training_y(hr), [o.shape[-2:] for o in outs])
        return TrainingForward(net, predict, "y", predict_levels=predict_levels)
