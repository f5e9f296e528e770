"""Named decimal-scale strategies: how a model reaches a scale it has no network for.

Every result row stores the name ``model.strategy_for(scale)`` returns, so the name must say exactly what ran.
Resizing is always MATLAB bicubic (``sr_bench.imaging.resize.imresize``, a = -0.5, antialiased when shrinking) on
the float64 network output in 0..255, before the result is divided by 255 and clipped to [0, 1].

Names (papers.md §4):

``native``
    The model has a network for this scale (an integer-scale model at one of its held scales) or handles it
    directly (ASDN in its LFR range (1, 2], Meta-SR in (1, 4], LIIF). Never chosen; it is what a held scale reports.
``ceil-then-down``
    LapSRN style (§4 item 2, option b): run the smallest held integer scale k >= s, then MATLAB-bicubic-resize the
    k-times output to the requested size (a downscale). This is ``IntegerScaleUpscaler.super_resolve`` in
    ``archs/blocks.py``; the function here calls it rather than repeating it. A held scale with a smaller (floored)
    requested size is the top-left crop of the network output.
``floor-then-up``
    Option c: run the largest held integer scale k <= s (k >= 2), then MATLAB-bicubic-upscale to the requested size.
    Below the smallest held scale there is nothing to floor to, so those scales run ``ceil-then-down`` and
    ``strategy_for`` reports ``ceil-then-down`` for them.
``bicubic-pre``
    Meta-SR's RDN(x1)/EDSR(x1) baseline (§4 item 1, option a): MATLAB-bicubic-upsample the LR to the requested size,
    then run the model's x1 network (the same body with a x1 tail: identity upsampler + final conv). Needs a x1
    network: a x1 checkpoint, or an untrained smoke build (which then also builds x1).
``recursive-x2``
    ASDN style (§1.9 "recursive deployment", option d). For R > 1: N = ceil(log2 R) passes; the first N - 1 are x2
    passes (each doubles the size exactly), the last is a pass at r = R / 2^(N-1) in (1, 2] that produces exactly
    the requested size (largest scale first, as ASDN found best). Examples: x3 = x2, x1.5; x4 = x2, x2;
    x5.7 = x2, x2, x1.425; x8 = x2, x2, x2. Between passes the image stays float (not rounded) but is clipped to
    0..255. How one pass is done depends on the model:
    - an integer-scale model: every pass runs its x2 network; the last pass then MATLAB-bicubic-resizes the x2 output
      to the requested size (a downscale by r/2; nothing when r = 2, only the top-left crop of a floored size);
    - ASDN: every pass is its own LFR pass (``archs/asdn.py``); ASDN reports ``native`` in (1, 2] and
      ``recursive-x2`` above 2.

Picking a strategy for an integer-only model: the adapters built on ``StrategicIntegerUpscaler`` (EDSR,
EDSR-baseline, RDN, RCAN, DBDN, CSFM, FSDN)
take ``strategy=`` (default ``ceil-then-down``, the suite-wide default)::

    create_model("dbdn", checkpoint="DBDN_x2.pt", strategy="recursive-x2")
    create_model("csfm", allow_untrained=True, strategy="bicubic-pre")

An unknown name, or a strategy whose network is missing (``bicubic-pre`` without x1, ``recursive-x2`` without x2),
is a ``UserError`` naming the options. The default is the card's ``[scales] strategy``
(``default_strategy`` reads it).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

import torch

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models.archs.blocks import IntegerScaleUpscaler, crop_to
from sr_bench.models.interface import Upscaler, scale_refusal

NATIVE = "native"
CEIL_THEN_DOWN = "ceil-then-down"
FLOOR_THEN_UP = "floor-then-up"
BICUBIC_PRE = "bicubic-pre"
RECURSIVE_X2 = "recursive-x2"

INTEGER_STRATEGIES = (CEIL_THEN_DOWN, FLOOR_THEN_UP, BICUBIC_PRE, RECURSIVE_X2)
ALL_STRATEGIES = (NATIVE, *INTEGER_STRATEGIES)


def check_strategy(name: str, model: str, allowed=INTEGER_STRATEGIES) -> str:
    if name not in allowed:
        raise UserError(f"model {model!r} has no decimal-scale strategy {name!r}; pick one of: {', '.join(allowed)}")
    return name


# --------------------------------------------------------------------------------------------------------------------
# Recursive deployment (shared by ASDN and the integer-model recursive-x2)
# --------------------------------------------------------------------------------------------------------------------


def recursion_count(scale: Fraction) -> int:
    """N = ceil(log2 R), exactly (the smallest N with 2^N >= R); 1 for R in (1, 2]."""
    r = Fraction(scale)
    if r <= 1:
        raise UserError(f"scale x{r} must be > 1")
    n = 0
    while Fraction(2) ** n < r:
        n += 1
    return max(n, 1)


def recursive_plan(scale: Fraction) -> list[Fraction]:
    """Per-pass scales, largest first: N - 1 times 2, then R / 2^(N-1) (in (1, 2]). x5.7 -> [2, 2, 57/40]."""
    r = Fraction(scale)
    n = recursion_count(r)
    return [Fraction(2)] * (n - 1) + [r / Fraction(2) ** (n - 1)]


Step = Callable[[torch.Tensor, Fraction, tuple[int, int]], torch.Tensor]


def run_recursive(step: Step, x: torch.Tensor, scale: Fraction, size: tuple[int, int],
                  log: list | None = None, clip: tuple[float, float] | None = (0.0, 255.0)) -> torch.Tensor:
    """Apply ``step(x, r, out_size)`` for each pass of ``recursive_plan(scale)``.

    The intermediate x2 passes produce exactly twice their input size; the last pass produces ``size``. Between
    passes the image is clipped to ``clip`` (an image, not rounded); the last pass's output is returned as is.
    ``log``, if given, receives one ``(r, in_size, out_size)`` per pass.
    """
    plan = recursive_plan(scale)
    for k, r in enumerate(plan):
        last = k == len(plan) - 1
        h, w = x.shape[-2], x.shape[-1]
        out = (int(size[0]), int(size[1])) if last else (2 * h, 2 * w)
        if log is not None:
            log.append((r, (h, w), out))
        x = step(x, r, out)
        if not last and clip is not None:
            x = x.clamp(*clip)
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


# --------------------------------------------------------------------------------------------------------------------
# Strategies for integer-scale adapters (anything with .net(k), .scales.integers, ._input, .name)
# --------------------------------------------------------------------------------------------------------------------


def _held(model) -> list[int]:
    return sorted(model.scales.integers)


def _run(model, k: int, x255: torch.Tensor) -> torch.Tensor:
    """The x``k`` network on a float32 0..255 batch, returned as float64 0..255."""
    from sr_bench.models.tiling import run_network

    net = model.net(k)
    with torch.inference_mode():
        return run_network(net, x255, k).to(torch.float64)


def ceil_then_down(model: IntegerScaleUpscaler, lr: torch.Tensor, scale: Fraction, size) -> torch.Tensor:
    return IntegerScaleUpscaler.super_resolve(model, lr, scale, size)


def floor_then_up(model, lr: torch.Tensor, scale: Fraction, size) -> torch.Tensor:
    s = Fraction(scale)
    below = [k for k in _held(model) if 2 <= k <= s]
    if not below:
        return ceil_then_down(model, lr, s, size)
    k = below[-1]
    y = _run(model, k, model._input(lr) * 255.0)
    return (fit(y, size, s == k, f"{model.name} x{k}") / 255.0).clamp_(0.0, 1.0)


def bicubic_pre(model, lr: torch.Tensor, scale: Fraction, size) -> torch.Tensor:
    s = Fraction(scale)
    if s.denominator == 1 and int(s) in model.scales.integers and int(s) != 1:
        return ceil_then_down(model, lr, s, size)  # a held scale: the network itself (native)
    if 1 not in model.scales.integers:
        raise UserError(f"model {model.name!r} strategy {BICUBIC_PRE!r} needs a x1 network; pass a x1 checkpoint "
                        f"or pick {CEIL_THEN_DOWN!r}")
    x = imresize(model._input(lr).to(torch.float64) * 255.0, size=(int(size[0]), int(size[1])))
    y = _run(model, 1, x.to(torch.float32))
    return (y / 255.0).clamp_(0.0, 1.0)


def recursive_x2(model, lr: torch.Tensor, scale: Fraction, size, log: list | None = None) -> torch.Tensor:
    s = Fraction(scale)
    if s.denominator == 1 and int(s) in model.scales.integers:
        return ceil_then_down(model, lr, s, size)  # native
    if 2 not in model.scales.integers:
        raise UserError(f"model {model.name!r} strategy {RECURSIVE_X2!r} needs a x2 network; pass a x2 checkpoint "
                        f"or pick {CEIL_THEN_DOWN!r}")

    def step(x, r, out):
        y = _run(model, 2, x.to(torch.float32))
        return fit(y, out, r == 2, f"{model.name} x2")

    y = run_recursive(step, model._input(lr).to(torch.float64) * 255.0, s, size, log)
    return (y / 255.0).clamp_(0.0, 1.0)


STRATEGY_FUNCTIONS: dict[str, Callable] = {
    CEIL_THEN_DOWN: ceil_then_down,
    FLOOR_THEN_UP: floor_then_up,
    BICUBIC_PRE: bicubic_pre,
    RECURSIVE_X2: recursive_x2,
}


def strategy_name(model, strategy: str, scale: Fraction) -> str:
    """What actually runs for ``scale`` (the ``strategy`` column)."""
    s = Fraction(scale)
    if model.scales.native(s):
        return NATIVE
    if strategy == FLOOR_THEN_UP and not [k for k in _held(model) if 2 <= k <= s]:
        return CEIL_THEN_DOWN
    return strategy


class StrategicIntegerUpscaler(IntegerScaleUpscaler):
    """``IntegerScaleUpscaler`` plus a ``strategy`` constructor argument (one of ``INTEGER_STRATEGIES``).

    Untrained smoke builds also hold the network their strategy needs (x1 for ``bicubic-pre``, x2 for
    ``recursive-x2``). With checkpoints, the strategy's network must be among them.
    """

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale: int | None = None,
                 variant: str | None = None, strategy: str | None = None):
        strategy = check_strategy(strategy or self.default_strategy, self.model_name)
        super().__init__(checkpoint=checkpoint, allow_untrained=allow_untrained, scale=scale, variant=variant)
        held = set(self.scales.integers)
        need = {BICUBIC_PRE: 1, RECURSIVE_X2: 2}.get(strategy)
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

    def strategy_for(self, scale: Fraction) -> str:
        return strategy_name(self, self.strategy, scale)

    def networks_for(self, scale: Fraction) -> list:
        s = Fraction(scale)
        name = self.strategy_for(s)
        if name == NATIVE or name == CEIL_THEN_DOWN:
            return [self.net(self.scale_for(s))]
        if name == FLOOR_THEN_UP:
            return [self.net(max(k for k in _held(self) if 2 <= k <= s))]
        return [self.net({BICUBIC_PRE: 1, RECURSIVE_X2: 2}[name])]

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s = Fraction(scale)
        if self.scales.native(s):
            return ceil_then_down(self, lr, s, size)
        return STRATEGY_FUNCTIONS[self.strategy](self, lr, s, size)


# --------------------------------------------------------------------------------------------------------------------
# The same strategies for a plugin that opts in (``strategies = ("ceil-then-down", ...)`` on its class)
# --------------------------------------------------------------------------------------------------------------------

PLUGIN_STRATEGIES = (CEIL_THEN_DOWN, FLOOR_THEN_UP, RECURSIVE_X2)  # bicubic-pre needs a x1 network no plugin declares


class PluginStrategy(Upscaler):
    """A plugin model with integer scales, reaching other scales by a built-in strategy around its own
    ``super_resolve``: the held scale ``k`` the strategy picks runs at its full size ``k x`` the LR, and the result
    (0..255, float64) is MATLAB-bicubic-resized to the requested size (``recursive-x2``: x2 passes, clipped to 0..255
    between them), as the built-in integer models do with their networks' outputs. Held scales run the plugin as is.
    Its output is what the plugin returns (usually already clipped to [0, 1]) where a built-in resizes the raw
    network output, so the two differ in the few pixels the network pushes out of range."""

    def __init__(self, inner: Upscaler, strategy: str):
        strategy = check_strategy(strategy, inner.name, type(inner).strategies)
        super().__init__(name=inner.name, scales=inner.scales, learned=inner.learned,
                         checkpoint_sha256=inner.checkpoint_sha256, untrained=inner.untrained, strategy=strategy,
                         config={**inner.config, "strategy": strategy}, scale_sha256=dict(inner.scale_sha256))
        self.inner = inner

    @property
    def tile_overlap(self) -> int:
        return self.inner.tile_overlap

    def to(self, device) -> "PluginStrategy":
        self.inner = self.inner.to(device)
        return self

    def _held(self) -> list[int]:
        return sorted(self.inner.scales.integers)

    def strategy_for(self, scale: Fraction) -> str:
        return strategy_name(self.inner, self.strategy, scale)

    def network_scale(self, scale: Fraction) -> int | None:
        """The held scale that serves ``scale`` (None: none can)."""
        s, held = Fraction(scale), self._held()
        name = self.strategy_for(s)
        if name == NATIVE:
            return int(s) if s.denominator == 1 else None
        if name == FLOOR_THEN_UP:
            return max(k for k in held if 2 <= k <= s)
        if name == RECURSIVE_X2:
            return 2 if 2 in held else None
        return next((k for k in held if k >= s), None)

    def scale_problem(self, scale: Fraction) -> str | None:
        s = Fraction(scale)
        if self.inner.scales.native(s) or self.network_scale(s) is not None:
            return None
        need = "x2" if self.strategy_for(s) == RECURSIVE_X2 else f"a scale >= {s}"
        return (f"it declares scales {self.scales.describe()} and {self.strategy} needs {need}; pick another "
                f"--model-opt {self.name}.strategy=... ({', '.join(type(self.inner).strategies)})")

    def networks_for(self, scale: Fraction) -> list:
        k = self.network_scale(scale)
        return self.inner.networks_for(Fraction(k) if k is not None else Fraction(scale))

    def parameter_count(self, scale: Fraction) -> int:
        k = self.network_scale(scale)
        return self.inner.parameter_count(Fraction(k) if k is not None else Fraction(scale))

    def checkpoint_sha256_for(self, scale: Fraction) -> str:
        k = self.network_scale(scale)
        return self.inner.checkpoint_sha256_for(Fraction(k) if k is not None else Fraction(scale))

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


__all__ = [
    "ALL_STRATEGIES", "BICUBIC_PRE", "CEIL_THEN_DOWN", "FLOOR_THEN_UP", "INTEGER_STRATEGIES", "NATIVE",
    "PLUGIN_STRATEGIES", "PluginStrategy", "RECURSIVE_X2", "STRATEGY_FUNCTIONS", "StrategicIntegerUpscaler",
    "bicubic_pre", "ceil_then_down", "check_strategy", "fit",
    "floor_then_up", "recursion_count", "recursive_plan", "recursive_x2", "run_recursive",
    "strategy_name",
]
