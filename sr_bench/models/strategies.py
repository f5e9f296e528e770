"""Named decimal-scale strategies: how a model reaches a scale it has no network for (papers.md §4).

Every row stores the name ``model.strategy_for(scale)`` returns, so the name must say exactly what ran. What each
strategy runs, and how a model picks one: docs/strategies.md.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, ClassVar, Mapping

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models.archs.blocks import (
    FromCard,
    PerScaleNetworks,
    build_module,
    crop_to,
    load_strict,
    read_checkpoint,
    sub_pixel_tail_scale,
    unwrap_state_dict,
)
from sr_bench.models.interface import TrainingForward, Upscaler, WrappedUpscaler, scale_refusal
from sr_bench.models.tiling import run_network

NATIVE = "native"
CEIL_THEN_DOWN = "ceil-then-down"
FLOOR_THEN_UP = "floor-then-up"
BICUBIC_PRE = "bicubic-pre"
RECURSIVE_X2 = "recursive-x2"

INTEGER_STRATEGIES = (CEIL_THEN_DOWN, FLOOR_THEN_UP, BICUBIC_PRE, RECURSIVE_X2)
PLUGIN_STRATEGIES = (CEIL_THEN_DOWN, FLOOR_THEN_UP, RECURSIVE_X2)  # bicubic-pre needs a x1 network no plugin declares
NETWORK_NEEDED = {BICUBIC_PRE: 1, RECURSIVE_X2: 2}  # the one network these strategies run, whatever the scale


def check_strategy(name: str, model: str, allowed=INTEGER_STRATEGIES) -> str:
    if name not in allowed:
        raise UserError(f"model {model!r} has no decimal-scale strategy {name!r}; pick one of: {', '.join(allowed)}")
    return name


def held_scale(strategy: str, held, scale: Fraction) -> int | None:
    """The held integer scale whose network ``strategy`` runs for ``scale``, or None when no held scale serves it."""
    s = Fraction(scale)
    if strategy == NATIVE:
        return int(s) if s.denominator == 1 else None
    if strategy == FLOOR_THEN_UP:
        return max((k for k in held if 2 <= k <= s), default=None)
    if strategy in NETWORK_NEEDED:
        return NETWORK_NEEDED[strategy] if NETWORK_NEEDED[strategy] in held else None
    return min((k for k in held if k >= s), default=None)


def strategy_name(model, strategy: str, scale: Fraction) -> str:
    """What actually runs for ``scale`` (the ``strategy`` column): below the smallest held scale >= 2 there is
    nothing to floor to, so ``floor-then-up`` runs (and names) ``ceil-then-down`` there."""
    s = Fraction(scale)
    if model.scales.native(s):
        return NATIVE
    if strategy == FLOOR_THEN_UP and held_scale(FLOOR_THEN_UP, model.scales.integers, s) is None:
        return CEIL_THEN_DOWN
    return strategy


def recursion_count(scale: Fraction) -> int:
    """The passes of recursive deployment (ASDN's, and the integer models' recursive-x2): N = ceil(log2 R), exactly
    (the smallest N with 2^N >= R); 1 for R in (1, 2]."""
    r = Fraction(scale)
    if r <= 1:
        raise UserError(f"scale x{r} must be > 1")
    n = 1
    while Fraction(2) ** n < r:
        n += 1
    return n


def recursive_plan(scale: Fraction) -> list[Fraction]:
    """Per-pass scales, largest first: N - 1 times 2, then R / 2^(N-1) (in (1, 2]). x5.7 -> [2, 2, 57/40]."""
    r = Fraction(scale)
    n = recursion_count(r)
    return [Fraction(2)] * (n - 1) + [r / Fraction(2) ** (n - 1)]


def run_recursive(step: Callable[[torch.Tensor, Fraction, tuple[int, int]], torch.Tensor], x: torch.Tensor,
                  scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
    """``x = step(x, r, out_size)`` for each pass of ``recursive_plan(scale)``: the x2 passes give exactly twice
    their input size, the last one ``size``. Between passes the image is clipped to 0..255 (an image, not rounded)."""
    plan = recursive_plan(scale)
    for k, r in enumerate(plan):
        last = k == len(plan) - 1
        h, w = x.shape[-2], x.shape[-1]
        x = step(x, r, (int(size[0]), int(size[1])) if last else (2 * h, 2 * w))
        if not last:
            x = x.clamp(0.0, 255.0)
    return x


def fit(y: torch.Tensor, size: tuple[int, int], exact: bool, what: str) -> torch.Tensor:
    """``size`` pixels from a network output: its top-left crop when the output is already at the requested scale
    (``exact``: a floored protocol size is a crop of MATLAB's ceil size), else a MATLAB-bicubic resize to ``size``."""
    size = (int(size[0]), int(size[1]))
    if exact:
        return crop_to(y, size, what)
    if tuple(y.shape[-2:]) == size:
        return y
    return imresize(y, size=size)


class StrategicIntegerUpscaler(PerScaleNetworks):
    """EDSR-style models (RGB in 0..255, EDSR-PyTorch ``rgb_range`` 255, and out): one network per integer scale,
    native at the scales it holds; other scales by ``strategy`` (one of ``INTEGER_STRATEGIES``; default: the card's
    ``[scales] strategy``; docs/strategies.md). Untrained smoke builds also hold the network their strategy needs (x1
    for ``bicubic-pre``, x2 for ``recursive-x2``); with checkpoints, it must be among them."""

    default_strategy = FromCard(lambda card: card.strategy, CEIL_THEN_DOWN)  # how other scales are reached
    network: ClassVar[Callable[..., nn.Module]]  # built with scale= and the variant's keyword arguments
    variants: ClassVar[dict[str, dict]] = {}
    default_variant: ClassVar[str] = ""

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale: int | None = None,
                 variant: str | None = None, strategy: str | None = None):
        strategy = check_strategy(strategy or self.default_strategy, self.model_name)
        variant = variant or self.default_variant
        if variant not in self.variants:
            raise UserError(f"model {self.model_name!r} has no variant {variant!r}; known: {', '.join(self.variants)}")
        if scale is not None and int(scale) not in self.network_scales:
            raise UserError(f"model {self.model_name!r} has tails for x{', x'.join(map(str, self.network_scales))}, "
                            f"not x{scale}")
        self.variant = variant
        self.nets: dict[int, nn.Module] = {}
        paths = self._setup(checkpoint, allow_untrained, {"variant": variant, **self.variants[variant]})
        for path in paths:
            obj, sha = read_checkpoint(path, self.model_name)
            sd, spec = unwrap_state_dict(obj, path, self.model_name)
            if spec is not None:
                raise UserError(f"checkpoint {str(path)!r} is a LIIF-repo {spec.get('name', '?')!r} model "
                                f"(['model']['sd']), not {self.model_name}; use --models liif=PATH or liif-rdn=PATH")
            k = self._claim(path, self.infer_scale(sd), scale)
            net = build_module(lambda k=k: self.build(k), meta=True)
            load_strict(net, sd, self.model_name, path, self.mismatch_hint(sd))
            self.nets[k], self.scale_sha256[k] = self._prepare(net), sha
        self._hold(paths, scale)
        held = set(self.scales.integers)
        need = NETWORK_NEEDED.get(strategy)
        if need is not None and need not in held:
            if not self.untrained:
                raise UserError(f"model {self.model_name!r} strategy {strategy!r} needs a x{need} network, but the "
                                f"checkpoints hold x{', x'.join(map(str, sorted(held)))}; add a x{need} checkpoint "
                                f"or pick another strategy ({', '.join(INTEGER_STRATEGIES)})")
            held.add(need)
            self.scales = type(self.scales)(integers=frozenset(held))
            self.config["scales"] = sorted(held)
        self.strategy = strategy
        self.config["strategy"] = strategy

    def build(self, scale: int) -> nn.Module:
        return self.network(scale=scale, **self.variants[self.variant])

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        net = self.net(int(scale))

        def predict(lr, hr, s, gen):
            return net(lr * 255.0) / 255.0, hr
        return TrainingForward(net, predict, "rgb")

    def infer_scale(self, sd: Mapping[str, torch.Tensor]) -> int | None:
        """The scale of a checkpoint's network, read from its shapes (None: unknown)."""
        return sub_pixel_tail_scale(sd)

    def mismatch_hint(self, sd: Mapping[str, torch.Tensor]) -> str:
        return ""

    def scale_problem(self, scale: Fraction) -> str | None:
        s = Fraction(scale)
        if self.strategy_for(s) == CEIL_THEN_DOWN and not any(k >= s for k in self.scales.integers):
            return self._none_above(s, "add that checkpoint or use --model-opt strategy=floor-then-up or recursive-x2")
        return None

    def strategy_for(self, scale: Fraction) -> str:
        return strategy_name(self, self.strategy, scale)

    def networks_for(self, scale: Fraction) -> list:
        s = Fraction(scale)
        name = self.strategy_for(s)
        return [self.net(self.scale_for(s) if name in (NATIVE, CEIL_THEN_DOWN)
                         else held_scale(name, self.scales.integers, s))]

    def _run_net(self, k: int, x255: torch.Tensor) -> torch.Tensor:
        """The x``k`` network on a float32 0..255 batch, returned as float64 0..255."""
        net = self.net(k)
        with torch.inference_mode():
            return run_network(net, x255, k).to(torch.float64)

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s = Fraction(scale)
        name = self.strategy_for(s)
        if name in (NATIVE, CEIL_THEN_DOWN):  # the held scale's crop, or ceil-then-down's resize
            k = self.scale_for(s)
            y = self._run_net(k, self._input(lr) * 255.0)
            y = crop_to(y, size, f"{self.name} x{k}") if s == k else imresize(y, size=(int(size[0]), int(size[1])))
        elif name == FLOOR_THEN_UP:
            k = held_scale(name, self.scales.integers, s)
            y = fit(self._run_net(k, self._input(lr) * 255.0), size, False, f"{self.name} x{k}")
        elif name == BICUBIC_PRE:  # Meta-SR's x1 baseline: the x1 network on the bicubic-upsampled LR
            x = imresize(self._input(lr).to(torch.float64) * 255.0, size=(int(size[0]), int(size[1])))
            y = self._run_net(1, x.to(torch.float32))
        else:
            def step(x, r, out):
                return fit(self._run_net(2, x.to(torch.float32)), out, r == 2, f"{self.name} x2")

            y = run_recursive(step, self._input(lr).to(torch.float64) * 255.0, s, size)
        return (y / 255.0).clamp_(0.0, 1.0)


class PluginStrategy(WrappedUpscaler):
    """A plugin model with integer scales (``strategies = (...)`` on its class) reaching other scales by a built-in
    strategy around its own ``super_resolve``, run at the held scale's full size and MATLAB-bicubic-resized. What is
    resized is what the plugin returns (usually clipped to [0, 1]) where a built-in resizes the raw network output, so
    the two differ in the few pixels the network pushes out of range."""

    def __init__(self, inner: Upscaler, strategy: str):
        strategy = check_strategy(strategy, inner.name, type(inner).strategies)
        super().__init__(inner, inner.name, strategy, {"strategy": strategy})

    def strategy_for(self, scale: Fraction) -> str:
        return strategy_name(self.inner, self.strategy, scale)

    def network_scale(self, scale: Fraction) -> int | None:
        """The held scale that serves ``scale`` (None: none can)."""
        return held_scale(self.strategy_for(scale), self.inner.scales.integers, scale)

    def _served(self, scale: Fraction) -> Fraction:
        k = self.network_scale(scale)
        return Fraction(k) if k is not None else Fraction(scale)

    def scale_problem(self, scale: Fraction) -> str | None:
        s = Fraction(scale)
        if self.inner.scales.native(s) or self.network_scale(s) is not None:
            return None
        need = "x2" if self.strategy_for(s) == RECURSIVE_X2 else f"a scale >= {s}"
        return (f"it declares scales {self.scales.describe()} and {self.strategy} needs {need}; pick another "
                f"--model-opt {self.name}.strategy=... ({', '.join(type(self.inner).strategies)})")

    def networks_for(self, scale: Fraction) -> list:
        return self.inner.networks_for(self._served(scale))

    def parameter_count(self, scale: Fraction) -> int:
        return self.inner.parameter_count(self._served(scale))

    def checkpoint_sha256_for(self, scale: Fraction) -> str:
        return self.inner.checkpoint_sha256_for(self._served(scale))

    def _run(self, x255: torch.Tensor, k: int) -> torch.Tensor:
        h, w = x255.shape[-2], x255.shape[-1]
        return self.inner.super_resolve(x255 / 255.0, Fraction(k), (k * h, k * w)).to(torch.float64) * 255.0

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s = Fraction(scale)
        if self.inner.scales.native(s):
            return self.inner.super_resolve(lr, s, size)
        k = self.network_scale(s)
        if k is None:
            raise scale_refusal(self.name, s, self.scale_problem(s) or "no held scale serves it")
        x = lr.to(torch.float64) * 255.0
        if self.strategy_for(s) == RECURSIVE_X2:
            y = run_recursive(lambda t, r, out: fit(self._run(t, 2), out, r == 2, f"{self.name} x2"), x, s, size)
        else:
            y = fit(self._run(x, k), size, False, f"{self.name} x{k}")
        return (y / 255.0).clamp_(0.0, 1.0)
