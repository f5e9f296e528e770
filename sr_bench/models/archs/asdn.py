"""ASDN (Any-Scale Deep Network) and FSDN (its fixed-scale sibling), Shen, Wang, Zhang, arXiv 2010.02414.

No official code or weights exist (papers.md §1.9, §5). The paper (Fig. 2, the LFR equations, the recursive
deployment) is the authority; layer hyper-parameters the paper does not print follow the unofficial
reimplementation ``alessandrodicosola/SuperSampling`` (``src/models/ASDN.py``) and are marked [3rd-code].
State_dict keys are ours (EDSR-PyTorch style); there is nothing official to match.

Network (``ASDN``), RGB in/out 0..255 with the DIV2K mean shift of the authors' DBDN code (``sub_mean``/``add_mean``):

- Feature Mapping Branch, shared by all levels:
  - ``head.0``: conv 3x3 3->64 (H0);
  - ``body.{b}`` (b = 0..15): Dense Attention Blocks joined DBDN-style: block b sees the concatenation
    [H0, H1, ..., H_b] (64(b+1) channels) and its output is concatenated onto it. A DAB is DBDN's intra dense
    block followed by channel attention (Fig. 2b):
    - ``compress``: conv 1x1 64(b+1)->64, no activation [3rd-code; DBDN's code uses 3x3 + ReLU];
    - ``block.dense.{j}`` (j = 0..7): conv 3x3 (64+64j)->64 + ReLU, densely concatenated (growth 64) [3rd-code];
    - ``block.fuse``: conv 1x1 576->64, then + the compressed input (local residual);
    - ``ca.conv_du``: channel attention, pool -> 1x1 64->4 -> ReLU -> 1x1 4->64 -> sigmoid, times the block
      output. Fig. 2c says only "Pool": average pooling here (RCAN's CA, which the figure's layout repeats);
      ``variant="asdn-maxpool"`` uses the reimplementation's max pooling. Same parameters.
  - H = [H0, H1, ..., H16], 64 * 17 = 1088 channels, no global fusion conv (Fig. 2a).
- Image Reconstruction Branches, one per LFR level: ``tail.{l}.conv`` 1x1 1088->3, then spatial attention
  ``tail.{l}.sa.body`` (1x1 3->6, ReLU, 1x1 6->3, sigmoid) times it [3rd-code sizes], then + the level's
  bicubic-upsampled input (global residual, Fig. 2a).

Parameter count, default layout: 22,438,288 (FMB 22,401,856 + 11 IRBs x 3,312); the card states it. The paper's
Fig. 9 chart puts ASDN at about 19M and FSDN at about 18.5M; the reimplementation's report says 22M. The same Fig. 9
places RDN (22.1M computed, "22M" by its authors) at about 17M and EDSR at about 44M, so the chart is too coarse to
pin a layout down, and no reading of the printed hyper-parameters (16 DABs x 8 layers x growth 64) gets near 19M:
the DABs' 3x3 dense convs alone hold 21.2M. With DBDN's 3x3 compression the FMB would be 26.9M.

Laplacian Frequency Representation (LFR), L = 11 levels r_l = 1 + l/(L-1) (1.0, 1.1, ..., 2.0), and one pass at a
scale r in (1, 2] from an image x (h, w) to a requested size (H, W):

1. i = ceil((L-1)(r-1)) and w_r = (L-1)(r_i - r) in [0, 1), in exact fractions (``lfr_level``).
2. Level l's input is x MATLAB-bicubic-upsampled by r_l to ceil(r_l h) x ceil(r_l w) (``imresize(x, r_l)``); the
   lowest level uses the coordinate mapping of scale 1.0001 (Fig. 2: "Bicubic x1.0001") at the LR size h x w: that
   is floor(1.0001 h) = h for any h < 10^4, while MATLAB's ceil would add one mirrored row/column and shift the level
   by a pixel against the others. O_l = IRB_l(FMB(input_l)) + input_l.
3. O_r = O_{r_i} + w_r (O_{r_{i-1}} - O_{r_i}), with O_{r_{i-1}} MATLAB-bicubic-resized to O_{r_i}'s size first,
   as the reimplementation does. On a level (w_r = 0) only level i runs.
4. O_r is on level i's grid (ceil(r_i h) x ceil(r_i w)). On a level that is the requested scale: the result is its
   top-left (H, W) (all of it for MATLAB's ceil size; a floored protocol size drops the last row/column). Between
   levels it is MATLAB-bicubic-resized to (H, W).

Recursive deployment for R > 2 (``strategies.run_recursive``): N = ceil(log2 R) passes, N - 1 at x2 (level 10
alone, exactly doubling the size) and the last at R / 2^(N-1) to the requested size; between passes the image is
clipped to 0..255. ``strategy_for`` reports ``native`` in (1, 2] and ``recursive-x2`` above. ``last_passes`` keeps
(r, input size, output size, i, w_r) of each pass of the latest call.

FSDN (``FSDN``): "the same network with a transposed conv at the start of each IRB", fine-tuned per integer scale
(the FSDN rows of Table 1: x2/x3/x4/x8). Choices, as the paper gives no sizes: post-upsampling (the FMB runs on the
LR image), a single IRB for the network's scale whose transposed convs follow DBDN's deconv geometry (6x6 stride 2
pad 2 per factor 2, 9x9 stride 3 pad 3 for x3) and map the 1088 FMB channels to ``deconv_feats`` = 64 channels
(``tail.up``), then the IRB's 1x1 conv (64->3), spatial attention, and + the MATLAB-bicubic upsampled LR.
Counts: x2 24,908,912; x3 28,042,352; x4 25,056,432; x8 25,203,952 (FMB 22,401,856 plus the IRB). The chart's
FSDN < ASDN cannot hold for a DBDN-geometry transposed conv on the 1088 channels; the cheapest reading,
``deconv_feats=3`` (a transposed conv straight to RGB, then the 1x1 conv 3->3), gives x2 22,519,420.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import ClassVar, Iterable, Mapping

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models.archs.blocks import (
    MeanShift,
    NetworkUpscaler,
    build_module,
    default_conv,
    load_strict,
    read_checkpoint,
    unwrap_state_dict,
)
from sr_bench.models.archs.dbdn import IntraDenseBlock
from sr_bench.models.interface import TrainingForward
from sr_bench.models.strategies import NATIVE, RECURSIVE_X2, StrategicIntegerUpscaler, fit, run_recursive
from sr_bench.models.tiling import image_statistic, run_network

LFR_LEVELS = 11
LOWEST_LEVEL_SCALE = Fraction(10001, 10000)  # Fig. 2 "Bicubic x1.0001"


# --------------------------------------------------------------------------------------------------------------------
# Laplacian Frequency Representation
# --------------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------------------------


class PooledChannelAttention(nn.Module):
    """pool -> 1x1 (C -> C/r) -> ReLU -> 1x1 (C/r -> C) -> sigmoid, times the input; ``pool`` 'avg' or 'max'."""

    def __init__(self, channels: int, reduction: int = 16, pool: str = "avg"):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.mean(dim=(-2, -1), keepdim=True) if self.pool == "avg" else x.amax(dim=(-2, -1), keepdim=True)
        return x * self.conv_du(image_statistic(x, p, "mean" if self.pool == "avg" else "max"))


class DenseAttentionBlock(nn.Module):
    """Compression 1x1 -> intra dense block (+ local residual) -> channel attention."""

    def __init__(self, in_channels: int, n_feats: int = 64, growth: int = 64, n_layers: int = 8,
                 reduction: int = 16, pool: str = "avg", compression_kernel: int = 1):
        super().__init__()
        self.compress = nn.Conv2d(in_channels, n_feats, compression_kernel, padding=compression_kernel // 2)
        self.block = IntraDenseBlock(n_feats, growth, n_layers)
        self.ca = PooledChannelAttention(n_feats, reduction, pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.compress(x)
        return self.ca(self.block(c) + c)


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
    """IRB: (FSDN: transposed convs ``up``) -> conv ``conv`` to RGB -> spatial attention. The caller adds the
    bicubic-upsampled input."""

    def __init__(self, in_channels: int, n_colors: int = 3, kernel_size: int = 1, expansion: int = 2,
                 up: nn.Module | None = None, up_channels: int | None = None):
        super().__init__()
        if up is not None:
            self.up = up
            in_channels = up_channels
        self.conv = nn.Conv2d(in_channels, n_colors, kernel_size, padding=kernel_size // 2)
        self.sa = SpatialAttention(n_colors, expansion)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "up"):
            feats = self.up(feats)
        return self.sa(self.conv(feats))


def deconv_stack(scale: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """DBDN's deconv geometry: 6x6/stride 2/pad 2 per factor 2, 9x9/stride 3/pad 3 for x3; the first maps
    ``in_channels`` -> ``out_channels``, the others keep ``out_channels``. Empty for x1."""
    if scale == 3:
        return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 9, stride=3, padding=3))
    if scale >= 1 and scale & (scale - 1) == 0:
        n = scale.bit_length() - 1
        return nn.Sequential(*[nn.ConvTranspose2d(in_channels if j == 0 else out_channels, out_channels, 6,
                                                  stride=2, padding=2) for j in range(n)])
    raise ValueError(f"FSDN supports x1, x2^k and x3, not x{scale}")


class FeatureMapping(nn.Module):
    """Feature Mapping Branch: ``head`` + ``body`` (DABs with inter-block dense concatenation); mixed into ASDN/FSDN."""

    def _make_fmb(self, n_colors: int, n_feats: int, n_dab: int, n_layers: int, growth: int, reduction: int,
                  pool: str, compression_kernel: int) -> int:
        self.head = nn.Sequential(default_conv(n_colors, n_feats, 3))
        self.body = nn.ModuleList(
            DenseAttentionBlock(n_feats * (b + 1), n_feats, growth, n_layers, reduction, pool, compression_kernel)
            for b in range(n_dab)
        )
        return n_feats * (n_dab + 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        stack = [self.head(x)]
        for dab in self.body:
            stack.append(dab(torch.cat(stack, 1) if len(stack) > 1 else stack[0]))
        return torch.cat(stack, 1)


class ASDN(FeatureMapping):
    """ASDN network: shared FMB, one IRB per LFR level. ``forward(x_up, level)``: ``x_up`` is the LR image already
    bicubic-upsampled by the level's scale (0..``rgb_range``); returns that level's SR image."""

    # ``srbench run --compile``: the FMB, not forward, whose ``self.tail[level]`` would compile once per level
    compiled_methods: ClassVar[tuple[str, ...]] = ("features",)

    def __init__(self, levels: int = LFR_LEVELS, n_feats: int = 64, n_dab: int = 16, n_layers: int = 8,
                 growth: int = 64, reduction: int = 16, pool: str = "avg", compression_kernel: int = 1,
                 irb_kernel: int = 1, sa_expansion: int = 2, rgb_range: float = 255, n_colors: int = 3):
        super().__init__()
        self.levels = levels
        self.sub_mean = MeanShift(rgb_range)
        self.add_mean = MeanShift(rgb_range, sign=1)
        out = self._make_fmb(n_colors, n_feats, n_dab, n_layers, growth, reduction, pool, compression_kernel)
        self.tail = nn.ModuleList(ReconstructionBranch(out, n_colors, irb_kernel, sa_expansion) for _ in range(levels))

    def forward(self, x_up: torch.Tensor, level: int) -> torch.Tensor:
        z = self.sub_mean(x_up)
        return self.add_mean(self.tail[level](self.features(z)) + z)


class FSDN(FeatureMapping):
    """FSDN network for one integer ``scale``: FMB on the LR image, one IRB with transposed convs, + MATLAB bicubic."""

    def __init__(self, scale: int = 2, n_feats: int = 64, n_dab: int = 16, n_layers: int = 8, growth: int = 64,
                 reduction: int = 16, pool: str = "avg", compression_kernel: int = 1, deconv_feats: int = 64,
                 irb_kernel: int = 1, sa_expansion: int = 2, rgb_range: float = 255, n_colors: int = 3):
        super().__init__()
        self.scale = scale
        self.sub_mean = MeanShift(rgb_range)
        self.add_mean = MeanShift(rgb_range, sign=1)
        out = self._make_fmb(n_colors, n_feats, n_dab, n_layers, growth, reduction, pool, compression_kernel)
        up = deconv_stack(scale, out, deconv_feats)
        self.tail = ReconstructionBranch(out, n_colors, irb_kernel, sa_expansion, up=up,
                                         up_channels=deconv_feats if len(up) else out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.sub_mean(x)
        base = imresize(z, scale=self.scale) if self.scale != 1 else z
        return self.add_mean(self.tail(self.features(z)) + base)


ASDN_VARIANTS: dict[str, dict] = {
    "asdn": {"pool": "avg"},
    "asdn-maxpool": {"pool": "max"},  # the reimplementation's channel attention
}


# --------------------------------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------------------------------


class ASDNUpscaler(NetworkUpscaler):
    """ASDN: one network for every scale; ``native`` in (1, 2] (one LFR pass), ``recursive-x2`` above."""

    model_name: ClassVar[str] = "asdn"
    tiles_networks: ClassVar[bool] = True

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale=None, variant: str = "asdn",
                 levels: int = LFR_LEVELS, n_dab: int = 16):
        if scale is not None:
            raise UserError(f"model {self.model_name!r} handles every scale with one network; it takes no scale")
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
        if len(paths) > 1:
            raise UserError(f"model {self.model_name!r} takes one checkpoint, got {len(paths)}")
        factory = lambda: ASDN(levels=levels, n_dab=self.n_dab, **ASDN_VARIANTS[variant])  # noqa: E731
        if paths:
            obj, sha = read_checkpoint(paths[0], self.model_name)
            sd, _ = unwrap_state_dict(obj, paths[0], self.model_name)
            net = build_module(factory, meta=True)
            load_strict(net, sd, self.model_name, paths[0], self._hint(sd))
            self.checkpoint_sha256 = sha
        else:
            net = build_module(factory, meta=False)
        self.net = self._prepare(net)

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

    def modules(self) -> Iterable[nn.Module]:
        return [self.net]

    def strategy_for(self, scale: Fraction) -> str:
        return NATIVE if self.scales.native(Fraction(scale)) else RECURSIVE_X2

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        """``lfr_pass`` with autograd: level i's output, blended with level i-1's between levels, so both
        reconstruction branches learn what the deployed blend asks of them."""
        net = self.net

        def predict(lr, hr, s, gen):
            x = lr.to(torch.float64) * 255.0  # level inputs in float64, as the adapter makes them
            i, w = lfr_level(s, self.levels)
            out = net(self.level_input(x, i).to(torch.float32), i)
            if w != 0:
                prev = net(self.level_input(x, i - 1).to(torch.float32), i - 1)
                out = out + float(w) * (imresize(prev, size=tuple(out.shape[-2:])) - out)
            return fit(out, tuple(hr.shape[-2:]), w == 0, f"{self.name} level {i}") / 255.0, hr
        return TrainingForward(net, predict, "rgb")

    # -- one LFR pass -------------------------------------------------------------------------------------------------
    def level_input(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """x (0..255, float64) bicubic-upsampled for LFR level ``level`` (see the module docstring)."""
        if level == 0:
            return imresize(x, scale=LOWEST_LEVEL_SCALE, size=(x.shape[-2], x.shape[-1]))
        return imresize(x, scale=lfr_scales(self.levels)[level])

    def level_output(self, x: torch.Tensor, level: int) -> torch.Tensor:
        with torch.inference_mode():
            return run_network(lambda t: self.net(t, level),
                               self.level_input(x, level).to(torch.float32)).to(torch.float64)

    def lfr_pass(self, x: torch.Tensor, r: Fraction, size: tuple[int, int]) -> torch.Tensor:
        i, w = lfr_level(r, self.levels)
        out = self.level_output(x, i)
        if w != 0:
            prev = imresize(self.level_output(x, i - 1), size=(out.shape[-2], out.shape[-1]))
            out = out + float(w) * (prev - out)
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
    ups = [sd[k] for k in sorted(sd) if k.startswith("tail.up.") and k.endswith(".weight")]
    if not ups:
        return 1
    return 3 if ups[0].shape[-1] == 9 else 2 ** len(ups)


class FSDNUpscaler(StrategicIntegerUpscaler):
    """FSDN: one post-upsampling network per integer scale (Table 1: x2/x3/x4/x8). Decimal scales: ``strategy=``
    (default ``ceil-then-down``; see ``sr_bench.models.strategies``)."""

    model_name: ClassVar[str] = "fsdn"
    family_scales: ClassVar[tuple[int, ...]] = (2, 3, 4)
    variants: ClassVar[dict[str, dict]] = {"fsdn": {"pool": "avg", "deconv_feats": 64}}
    default_variant: ClassVar[str] = "fsdn"

    def build(self, scale: int) -> nn.Module:
        return FSDN(scale=scale, rgb_range=255, **self.variants[self.variant])

    def infer_scale(self, sd):
        return fsdn_scale_of(sd)

    def mismatch_hint(self, sd) -> str:
        if any(k.startswith("tail.0.") for k in sd):
            return "it looks like an ASDN checkpoint (one IRB per LFR level): use --models asdn=PATH"
        return ""
