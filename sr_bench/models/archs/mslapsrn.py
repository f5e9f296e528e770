"""MS-LapSRN (Lai et al., TPAMI'18), as defined by ``phoenix104104/LapSRN`` ``init_MSLapSRN_model.m``.

Layout, key names and departures from the paper: docs/architectures.md, "MS-LapSRN".
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import build_module, is_matconvnet_file, load_strict
from sr_bench.models.archs.lapsrn import (
    CONVT_CROPS,
    INPUT_CONV_NAMES,
    CroppedConvTranspose2d,
    image_upsampler,
    level_names,
    lrelu,
    pyramid_training,
)
from sr_bench.models.interface import TrainingForward, scale_refusal
from sr_bench.models.luma import LumaUpscaler
from sr_bench.models.matconvnet import check_standard_layer, load_dagnn, read_dagnn
from sr_bench.models.strategies import recursion_count
from sr_bench.models.tiling import run_network

MAX_LEVELS = 3  # trained for x2, x4, x8


class MSLapSRN(nn.Module):
    """``forward(y, levels)`` -> Y upscaled by 2^levels (``return_all=True``: every level's output)."""

    def __init__(self, depth: int = 5, recursions: int = 8, n_feats: int = 64):
        super().__init__()
        self.depth = depth
        self.recursions = recursions
        self.input_conv = nn.Conv2d(1, n_feats, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(n_feats, n_feats, 3, padding=1) for _ in range(depth))
        self.upconv = CroppedConvTranspose2d(n_feats, n_feats, 3, stride=2, crop=CONVT_CROPS[(3, 3)])
        self.residual = nn.Conv2d(n_feats, 1, 3, padding=1)
        self.img_up = image_upsampler()

    def forward(self, y: torch.Tensor, levels: int = 2, return_all: bool = False):
        level_input = self.input_conv(y)
        img = y
        outputs = []
        for _ in range(levels):
            out = level_input
            for _ in range(self.recursions):
                h = out
                for conv in self.convs:
                    h = conv(lrelu(h))
                out = h + level_input  # SS: every recursion adds the level's input
            level_input = self.upconv(lrelu(out))
            img = self.img_up(img) + self.residual(level_input)
            outputs.append(img)
        return outputs if return_all else img


def levels_for(s: Fraction) -> int:
    """Pyramid levels for scale s: ceil(log2 s), at least 1 (x1.5 and x2: 1; x3, x4: 2; x5..x8: 3)."""
    return recursion_count(max(Fraction(s), Fraction(2)))


_BLOCK_CONV = re.compile(r"x\d+SR_level\d+_R(\d+)_conv\d+")
_BLOCK_SUM = re.compile(r"(x\d+SR)_level(\d+)_R(\d+)_output")


def recursions_from_name(path: Path) -> int | None:
    """R from a file name like ``MSLapSRN_D5R8.mat``."""
    m = re.search(r"D(\d+)R(\d+)", Path(path).name)
    return int(m.group(2)) if m else None


def recursions_from_opts(path: Path) -> tuple[int | None, str | None]:
    """(recursive, LRL) from the ``<stem>_opts.mat`` beside the model file, if there is one."""
    opts = Path(path).with_name(Path(path).stem + "_opts.mat")
    if not opts.is_file():
        return None, None
    import scipy.io

    try:
        o = scipy.io.loadmat(str(opts), squeeze_me=True, struct_as_record=False)["opts"]
        return int(o.recursive), str(o.LRL)
    except Exception:
        return None, None


def check_layer(layer) -> str | None:
    problem = check_standard_layer(layer, CONVT_CROPS)
    if problem:
        return problem
    m = _BLOCK_SUM.fullmatch(layer.name)
    if m and layer.type == "dagnn.Sum":  # shared-source skip: every recursion adds the level input
        prefix, level = m.group(1), int(m.group(2))
        source = f"{prefix}_input_conv" if level == 1 else f"{prefix}_level{level - 1}_upconv"
        if len(layer.inputs) != 2 or layer.inputs[1] != source:
            return f"local skip adds {layer.inputs[1:]} (expected {source}: LRL 'SS')"
    return None


def load_official(path: Path, model_name: str, recursions: int | None) -> tuple[MSLapSRN, str]:
    dag = read_dagnn(path, model_name)
    depths = [int(m.group(1)) for p in dag.params if (m := re.fullmatch(r"conv(\d+)_f", p))]
    if not depths:
        hint = ("it looks like a LapSRN file (level{n}_conv{d}_f): use --models lapsrn=PATH"
                if any(p.startswith("level") for p in dag.params) else "no shared conv{d}_f params found")
        raise UserError(f"MatConvNet file {str(path)!r} is not an MS-LapSRN model; {hint}")
    depth = max(depths)
    opts_r, lrl = recursions_from_opts(path)
    in_layers = [int(m.group(1)) for la in dag.layers if (m := _BLOCK_CONV.fullmatch(la.name))]
    found = {"layers": max(in_layers, default=None), "file name": recursions_from_name(path),
             "opts file": opts_r, "recursions option": recursions}
    known = {k: v for k, v in found.items() if v is not None}
    if not known:
        raise UserError(f"cannot tell the number of recursions R of {str(path)!r}; pass --model-opt recursions=R")
    if len(set(known.values())) > 1:
        raise UserError(f"{str(path)!r}: conflicting recursions R " + ", ".join(f"{k} {v}" for k, v in known.items()))
    r = next(iter(known.values()))
    if lrl not in (None, "SS"):
        raise UserError(f"{str(path)!r}: opts.LRL = {lrl!r}; only the released shared-source ('SS') skip is "
                        "implemented")
    net = build_module(lambda: MSLapSRN(depth, r), meta=True)
    load_dagnn(net, dag, INPUT_CONV_NAMES | level_names(depth), model_name, check_layer=check_layer)
    return net, dag.sha256


class MSLapSRNUpscaler(LumaUpscaler):
    """MS-LapSRN: one network for x2/x4/x8 (1/2/3 pyramid levels of shared weights); other scales s <= 8:
    ``ceil-then-down`` from 2^ceil(log2 s) (the TPAMI x3 recipe). R (recursions) comes from the .mat file's layers
    (cross-checked with the file name and a ``*_opts.mat`` beside it); for one of our state_dicts pass ``recursions``
    (``--model-opt recursions=8``) or keep ``D5R8`` in the file name."""

    model_name: ClassVar[str] = "mslapsrn"
    tiles_networks: ClassVar[bool] = True
    tile_overlap: ClassVar[int] = 24  # official D5R8 weights: max |tiled - whole| 1e-6 (docs/tiling.md)
    upsampling: ClassVar[str] = "progressive"

    def __init__(self, checkpoint=None, allow_untrained: bool = False, recursions: int | None = None,
                 depth: int | None = None, variant: str | None = None):
        if variant is not None:  # "D5R2" is depth=5, recursions=2
            m = re.fullmatch(r"D(\d+)R(\d+)", str(variant).strip(), flags=re.IGNORECASE)
            if m is None:
                raise UserError(f"model {self.model_name!r}: variant {variant!r} is not of the form D5R8")
            for key, given, value in (("depth", depth, int(m.group(1))), ("recursions", recursions, int(m.group(2)))):
                if given is not None and int(given) != value:
                    raise UserError(f"model {self.model_name!r}: variant {variant} contradicts {key}={given}")
            depth, recursions = int(m.group(1)), int(m.group(2))
        paths = self._init_single(checkpoint, allow_untrained, {})
        if paths:
            self.net, self.checkpoint_sha256 = self._load(paths[0], recursions, depth)
        else:
            d, r = int(depth or 5), int(recursions or 8)
            self.net = build_module(lambda: MSLapSRN(d, r), meta=False)
        self.net = self._prepare(self.net)
        self.config.update(variant=f"D{self.net.depth}R{self.net.recursions}", depth=self.net.depth,
                           recursions=self.net.recursions)

    def _load(self, path: Path, recursions: int | None, depth: int | None) -> tuple[MSLapSRN, str]:
        if is_matconvnet_file(path):
            net, sha = load_official(path, self.model_name, None if recursions is None else int(recursions))
        else:
            sd, sha = self._read_state_dict(path)
            depths = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"convs\.(\d+)\.weight", k))]
            if not depths:
                raise UserError(f"checkpoint {str(path)!r} is not an MS-LapSRN state_dict (no convs.N.weight keys); "
                                f"official weights are the MSLapSRN_D5R{{2,5,8}}.mat files")
            r = recursions if recursions is not None else recursions_from_name(path)
            if r is None:
                raise UserError(f"an MS-LapSRN state_dict does not record R; pass --model-opt recursions=R "
                                f"(or name the file ..._D{max(depths) + 1}R8.pt)")
            d, r = max(depths) + 1, int(r)
            net = build_module(lambda: MSLapSRN(d, r), meta=True)
            load_strict(net, sd, self.model_name, path)
        if depth is not None and int(depth) != net.depth:
            raise UserError(f"checkpoint {str(path)!r} has depth D={net.depth}, but depth={depth} was asked")
        return net, sha

    def scale_problem(self, scale: Fraction) -> str | None:
        n = levels_for(Fraction(scale))
        if n <= MAX_LEVELS:
            return None
        return f"it is trained for x2, x4, x8 and this scale would need {2**n}x ({n} pyramid levels)"

    def luma(self, y_lr: torch.Tensor, y_bicubic: torch.Tensor, scale: Fraction) -> torch.Tensor:
        n = levels_for(Fraction(scale))
        if n > MAX_LEVELS:
            raise scale_refusal(self.model_name, scale, self.scale_problem(scale))
        return run_network(lambda y: self.net(y, levels=n), self._net_input(y_lr), 2**n)

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        """The pyramid on the LR Y with levels_for(s) levels. A state_dict does not record the recursion count R:
        the saved file loads with ``--model-opt recursions=R``."""
        net = self.net
        return pyramid_training(net, lambda y, s, every: net(y, levels=levels_for(s), return_all=every),
                                {"recursions": net.recursions})
