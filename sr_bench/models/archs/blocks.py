"""Shared pieces of the PyTorch architectures, and the adapter machinery every network ``Upscaler`` uses.

Layers mirror ``thstkdgus35/EDSR-PyTorch`` ``src/model/common.py``, so ``state_dict()`` keys and shapes are the official
ones (``sub_mean.weight``, ``tail.0.0.weight``, ...).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from fractions import Fraction
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_bench.errors import UserError
from sr_bench.hashing import file_sha256
from sr_bench.models.card_files import builtin_card, model_cards
from sr_bench.models.interface import ScaleSupport, Upscaler, held_modules, scale_refusal
from sr_bench.models.tiling import image_statistic
from sr_bench.scales import scale_text

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

# --------------------------------------------------------------------------------------------------------------------
# Layers (EDSR-PyTorch common.py)
# --------------------------------------------------------------------------------------------------------------------


def default_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class MeanShift(nn.Conv2d):
    """Fixed 1x1 conv adding (``sign=1``) or subtracting the DIV2K RGB mean scaled by ``rgb_range``.

    As in EDSR-PyTorch its weight and bias are Parameters with ``requires_grad=False``: they are in ``state_dict()``
    (``sub_mean.weight``/``sub_mean.bias``) but not in trainable parameter counts.
    """

    def __init__(self, rgb_range: float, sign: int = -1):
        super().__init__(3, 3, kernel_size=1)
        dev = self.weight.device  # building on the meta device must not mix in CPU tensors
        with torch.no_grad():
            self.weight.copy_(torch.eye(3, device=dev).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float32, device=dev))
        for p in self.parameters():
            p.requires_grad = False


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler: conv n->4n + PixelShuffle(2) per factor 2 (none for x1), or n->9n + PixelShuffle(3)."""

    def __init__(self, scale: int, n_feats: int):
        m: list[nn.Module] = []
        if scale >= 1 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                m += [default_conv(n_feats, 4 * n_feats, 3), nn.PixelShuffle(2)]
        elif scale == 3:
            m += [default_conv(n_feats, 9 * n_feats, 3), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"sub-pixel upsampler supports x2^k and x3, not x{scale}")
        super().__init__(*m)


def upsampler_scale(sd: Mapping[str, torch.Tensor], prefix: str, n_feats: int) -> int | None:
    """The scale of an ``Upsampler`` stored under ``prefix`` (e.g. ``'tail.0.'``), from its conv shapes."""
    first = sd.get(prefix + "0.weight")
    if first is None or first.dim() != 4:
        return None
    if first.shape[0] == 9 * n_feats:
        return 3
    if first.shape[0] != 4 * n_feats:
        return None
    n = 1
    while prefix + f"{2 * n}.weight" in sd:
        n += 1
    return 2**n


def sub_pixel_tail_scale(sd: Mapping[str, torch.Tensor]) -> int | None:
    """The scale of an EDSR-style network (``head.0``, sub-pixel ``tail.0``, last conv ``tail.1``), or None; a x1
    network has an empty upsampler and stores ``tail.1`` only."""
    head = sd.get("head.0.weight")
    if head is None or head.dim() != 4:
        return None
    return upsampler_scale(sd, "tail.0.", int(head.shape[0])) or (1 if "tail.1.weight" in sd else None)


# global pooling of a channel attention: the statistic, and its kind for tiling.image_statistic
_POOLS = {
    "avg": (lambda x: x.mean(dim=(-2, -1), keepdim=True), "mean"),
    "max": (lambda x: x.amax(dim=(-2, -1), keepdim=True), "max"),
    # RCAN's nn.AdaptiveAvgPool2d(1): it rounds differently from mean(), and the official weights were trained with it
    "adaptive-avg": (lambda x: F.adaptive_avg_pool2d(x, 1), "mean"),
}


class ChannelAttention(nn.Module):
    """RCAN's channel attention: global pool -> 1x1 (C -> C/r) -> ReLU -> 1x1 (C/r -> C) -> sigmoid, times the input."""

    def __init__(self, channels: int, reduction: int = 16, pool: str = "avg"):
        super().__init__()
        if pool not in _POOLS:
            raise ValueError(f"pool must be one of {', '.join(_POOLS)}, not {pool!r}")
        self.pool = pool
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        statistic, kind = _POOLS[self.pool]
        return x * self.conv_du(image_statistic(x, statistic(x), kind))


class Residual(nn.Module):
    """``body(x) * res_scale + x`` with the layers under ``body``: EDSR's ResBlock, RCAN's RCAB and residual group."""

    def __init__(self, *layers: nn.Module, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        if self.res_scale != 1:
            res = res.mul(self.res_scale)
        res += x
        return res


def dense_chain(units: Iterable[nn.Module], first: torch.Tensor) -> list[torch.Tensor]:
    """``[first, u0(first), u1(cat(first, u0(first))), ...]``: each unit sees everything before it, concatenated."""
    stack = [first]
    for unit in units:
        stack.append(unit(torch.cat(stack, 1) if len(stack) > 1 else first))
    return stack


def count_trainable(module: nn.Module) -> int:
    """Trainable parameters (MeanShift weights/biases have requires_grad=False and are excluded, as in papers.md)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------------------------


def needs_weights(name: str, example: str, builtin: bool = True) -> UserError:
    head = f"model {name!r} needs weights: --models {name}=PATH/TO/{example}"
    if not builtin:  # a plugin: no card in registry/, not trainable here
        return UserError(f"{head} (several files, one per scale, joined by '{os.pathsep}'; releases: see "
                         f"`srbench models {name}`)")
    return UserError(f"{head} (releases: see `srbench models {name}`), or train one with `srbench train`, or "
                     f"--allow-untrained for a smoke run")


def checkpoint_paths(checkpoint) -> list[Path]:
    """One path, a sequence of paths, or one string of paths joined by ``os.pathsep`` (one file per scale)."""
    if checkpoint is None:
        return []
    if isinstance(checkpoint, (str, os.PathLike)):
        text = os.fspath(checkpoint)
        parts = [p for p in text.split(os.pathsep) if p] if os.pathsep in text and not Path(text).exists() else [text]
    else:
        parts = [os.fspath(p) for p in checkpoint]
    if not parts:
        raise UserError("empty checkpoint path; pass --models NAME=PATH/TO/WEIGHTS")
    return [Path(p).expanduser() for p in parts]


def is_matconvnet_file(path: str | Path) -> bool:
    """A MATLAB .mat file (by its header; any extension)."""
    try:
        with open(Path(path), "rb") as f:
            return f.read(6) == b"MATLAB"
    except OSError:
        return False


def read_checkpoint(path: Path, name: str) -> tuple[object, str]:
    """``torch.load(weights_only=True)`` on CPU; returns (object, sha256). Errors are one-line UserErrors."""
    if not path.is_file():
        raise UserError(f"checkpoint for model {name!r} not found: {str(path)!r}; check the path after '{name}='")
    if is_matconvnet_file(path):  # torch.load would only say "Unsupported operand 76"
        raise UserError(f"checkpoint {str(path)!r} is a MATLAB .mat file (MatConvNet), where model {name!r} takes a "
                        f"PyTorch state_dict (.pt/.pth); sr_bench reads .mat files for lapsrn and mslapsrn only (the "
                        f"authors' releases): pass it to one of them, or give {name!r} a state_dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = " ".join(str(e).split())
        glob = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if glob is None:  # not a torch checkpoint at all (wrong file, truncated download)
            detail = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
            reason = (detail.group(1) if detail else text)[:120]
            raise UserError(f"checkpoint {str(path)!r} for model {name!r} could not be read ({reason})") from None
        raise UserError(
            f"checkpoint {str(path)!r} for model {name!r} holds pickled Python objects ({glob.group(1)}) that "
            f"torch.load(weights_only=True) refuses; re-save just its state_dict with "
            f"torch.save(model.state_dict(), ...)"
        ) from None
    except Exception as e:  # truncated download, not a torch file, ...
        reason = " ".join(str(e).split())[:160]
        raise UserError(f"checkpoint {str(path)!r} for model {name!r} could not be read "
                        f"({type(e).__name__}: {reason})") from None
    return obj, file_sha256(path)


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def unwrap_state_dict(obj, path: Path | str = "?", name: str = "?") -> tuple[dict[str, torch.Tensor], dict | None]:
    """Find the state_dict inside common containers; returns (state_dict, LIIF-style model spec or None).

    Handles a bare state_dict, ``{'state_dict': ...}``, ``{'model': ...}``, BasicSR ``{'params_ema'|'params': ...}``,
    LIIF ``{'model': {'name', 'args', 'sd'}}``; strips ``module.`` (DataParallel) prefixes.
    """
    spec = None
    for _ in range(4):
        if _is_state_dict(obj) or not isinstance(obj, Mapping):
            break
        if isinstance(obj.get("model"), Mapping) and "sd" in obj["model"]:
            spec = {k: v for k, v in obj["model"].items() if k != "sd"}
            obj = obj["model"]["sd"]
            continue
        for key in ("state_dict", "params_ema", "params", "model", "net", "network"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        else:
            break
    if not _is_state_dict(obj):
        raise UserError(
            f"checkpoint {str(path)!r} for model {name!r} holds no state_dict (expected a dict of tensors, optionally "
            f"under 'state_dict', 'model', 'params' or LIIF's ['model']['sd'])"
        )
    sd = dict(obj)
    while sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd, spec


def shape_text(t) -> str:
    return "(" + ",".join(str(d) for d in t.shape) + ")"


def few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def mismatch_error(head: str, groups: list[tuple[str, list[str]]], hint: str = "") -> UserError:
    """One line: ``head: N missing key(s): a, b, ...; M unexpected ...`` naming up to 5 of each non-empty group."""
    parts = [f"{len(items)} {label}: {few(items)}" for label, items in groups if items]
    return UserError(f"{head}: " + "; ".join(parts) + (f"; {hint}" if hint else ""))


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], name: str, path: Path | str, hint: str = "") -> None:
    """``load_state_dict(strict=True)`` (assigning the checkpoint's tensors, so meta-built modules work), or a
    UserError naming up to 5 missing / unexpected keys and shape mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {shape_text(sd[k])} vs model {shape_text(own[k])}" for k in own
              if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise mismatch_error(f"checkpoint {str(path)!r} does not fit model {name!r}",
                             [("missing key(s)", missing), ("unexpected key(s)", unexpected),
                              ("shape mismatch(es)", shapes)], hint)
    module.load_state_dict({k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in sd.items()},
                           strict=True, assign=True)


def build_module(factory: Callable[[], nn.Module], meta: bool) -> nn.Module:
    """Build a network outside inference mode: on the meta device (weights come from a checkpoint), or with seed-0
    random weights (untrained smoke runs) that leave the global RNG as it was."""
    with torch.inference_mode(False):
        if meta:
            with torch.device("meta"):
                return factory()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return factory()


def crop_to(x: torch.Tensor, size: tuple[int, int], what: str) -> torch.Tensor:
    """Top-left crop to ``size`` (protocols that floor the SR size ask for fewer pixels than the network makes)."""
    h, w = int(size[0]), int(size[1])
    if x.shape[-2] < h or x.shape[-1] < w:
        raise ValueError(f"{what} produced {tuple(x.shape[-2:])}, smaller than the requested {(h, w)}")
    return x[..., :h, :w]


# --------------------------------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------------------------------


class FromCard:
    """A class attribute read from the model's built-in card (``registry/<model_name>.toml``) on first use: the card
    is the one statement of a model's scales, strategy, ``learned`` and releases, and the adapter takes them from
    there. A class whose ``model_name`` has no built-in card (a plugin subclass) gets ``default``."""

    def __init__(self, read: Callable, default=None):
        self.read, self.default = read, default

    def __get__(self, obj, owner):
        name = getattr(owner, "model_name", None)
        if name not in model_cards():
            return self.default
        return self.read(builtin_card(name))


def example_weights_of(card) -> str:
    """The file the "needs weights" error shows: the card's first release, else a name in the releases' style."""
    if card.releases:
        return card.releases[0].file
    held = [k for k in card.integers if k > 1]
    return f"{card.display_name}_x{held[0]}.pt" if held else f"{card.name}.pt"


def buildable_scales(card) -> tuple[int, ...]:
    """Every scale a network of the model can have: the card's ``integers`` and ``also_builds``."""
    return tuple(sorted({*card.integers, *card.also_builds}))


class NetworkUpscaler(Upscaler):
    """Common state of the network adapters: device, float32 inference, checkpoint bookkeeping."""

    model_name: ClassVar[str] = "?"
    example_weights = FromCard(example_weights_of, "WEIGHTS.pt")
    _device: torch.device = torch.device("cpu")  # until .to(device); an instance attribute from then on

    def _setup(self, checkpoint, allow_untrained: bool, config: dict) -> list[Path]:
        """The state every built-in adapter starts from, read from its card: the scales it declares (``range``, or
        ``integers``, which an integer-scale adapter then narrows to the networks it holds), the strategy for other
        scales (``strategy``, or ``beyond`` above a range), ``learned``. Returns the checkpoint paths."""
        card = builtin_card(self.model_name)
        scales = ScaleSupport(low=card.range[0], high=card.range[1]) if card.range else ScaleSupport(card.integers)
        Upscaler.__init__(self, name=self.model_name, scales=scales, learned=card.learned, config=dict(config),
                          strategy=card.strategy or card.beyond or "native")
        return self._weights(checkpoint, allow_untrained)

    def _weights(self, checkpoint, allow_untrained: bool) -> list[Path]:
        """The checkpoint paths (none: random weights, only with ``allow_untrained``); the model starts on the CPU."""
        self._device = torch.device("cpu")
        paths = checkpoint_paths(checkpoint)
        if not paths and not allow_untrained:
            raise needs_weights(self.model_name, self.example_weights)
        self.untrained = not paths
        return paths

    def _refuse_scale(self, scale) -> None:
        if scale is not None:
            raise UserError(f"model {self.model_name!r} handles every scale with one network; it takes no scale")

    def _one_checkpoint(self, paths: list[Path]) -> tuple[dict | None, dict | None]:
        """(state_dict, LIIF-style spec) of a one-network model's checkpoint; (None, None) without one."""
        if len(paths) > 1:
            raise UserError(f"model {self.model_name!r} takes one checkpoint, got {len(paths)}")
        if not paths:
            return None, None
        obj, self.checkpoint_sha256 = read_checkpoint(paths[0], self.model_name)
        return unwrap_state_dict(obj, paths[0], self.model_name)

    def _network(self, factory: Callable[[], nn.Module], sd, paths: list[Path], hint: Callable | None = None):
        """``factory()`` holding ``sd`` (loaded strictly from ``paths[0]``; ``hint(sd)`` ends a mismatch error), or
        seeded random weights when ``sd`` is None; prepared for inference."""
        net = build_module(factory, meta=sd is not None)
        if sd is not None:
            load_strict(net, sd, self.model_name, paths[0], hint(sd) if hint else "")
        return self._prepare(net)

    def modules(self) -> Iterable[nn.Module]:
        return held_modules(self)

    def to(self, device) -> "NetworkUpscaler":
        self._device = torch.device(device)
        for m in self.modules():
            m.to(self._device)
        return self

    def _prepare(self, m: nn.Module) -> nn.Module:
        return m.float().eval().to(self._device)

    def _input(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"{self.name} expects a (B, 3, h, w) RGB batch, got {tuple(lr.shape)}")
        return lr.to(self._device, torch.float32)


class PerScaleNetworks(NetworkUpscaler):
    """One network per integer scale (``nets``, e.g. EDSR's tails or LapSRN's pyramids); any other scale s is served
    by the smallest held scale k >= s. Untrained, ``net(k)`` builds the x``k`` network (``build(k)``) on first use."""

    tiles_networks: ClassVar[bool] = True  # every network call goes through tiling.run_network
    family_scales: ClassVar[tuple[int, ...]] = (2, 3, 4)  # what an untrained smoke build holds
    network_scales = FromCard(buildable_scales, ())  # every scale a network (checkpoint or scale=) can have
    # the scales ``srbench train --scale K`` takes: every buildable scale above 1
    per_scale_training = FromCard(lambda card: tuple(k for k in buildable_scales(card) if k > 1), ())

    def _claim(self, path: Path, k: int | None, scale: int | None) -> int:
        """The scale a checkpoint serves: ``k`` as read from it, else ``scale=``, else the family's first."""
        if scale is not None and k is not None and k != int(scale):
            raise UserError(f"checkpoint {str(path)!r} is a x{k} {self.model_name} model, but scale={scale} was asked")
        k = k or (int(scale) if scale is not None else self.family_scales[0])
        if k in self.nets:
            raise UserError(f"two checkpoints for x{k} given to model {self.model_name!r}; give one per scale")
        return k

    def _hold(self, paths: list[Path], scale: int | None) -> None:
        """The held scales: the checkpoints' (loaded into ``nets``), or ``scale=`` / ``family_scales`` untrained."""
        if paths:
            self.checkpoint_sha256 = "+".join(self.scale_sha256.values())
            available = frozenset(self.nets)
        else:
            available = frozenset([int(scale)]) if scale is not None else frozenset(self.family_scales)
        self.scales = ScaleSupport(integers=available)
        self.config["scales"] = sorted(available)

    def net(self, k: int) -> nn.Module:
        if k not in self.nets:  # untrained: built on first use, seeded (outside any caller's inference mode)
            with torch.inference_mode(False):
                self.nets[k] = self._prepare(build_module(lambda: self.build(k), meta=False))
        return self.nets[k]

    def networks_for(self, scale: Fraction) -> list[nn.Module]:
        return [self.net(self.scale_for(Fraction(scale)))]

    def scale_for(self, s: Fraction) -> int:
        above = [k for k in sorted(self.scales.integers) if k >= s]
        if not above:
            raise scale_refusal(self.model_name, s, self.scale_problem(s) or "no network of a larger scale")
        return above[0]

    def _none_above(self, s: Fraction, fix: str) -> str:
        return (f"it holds x{', x'.join(map(str, sorted(self.scales.integers)))} only and ceil-then-down needs a "
                f"network of scale >= {scale_text(s)}: {fix}")
