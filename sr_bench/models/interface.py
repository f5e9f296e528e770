"""The one interface the runner knows: LR batch + target scale + target size -> SR batch.

Architectures stay plain ``nn.Module``s with their official state_dict key names; an ``Upscaler`` wraps one (or
none, for interpolation) and owns everything the runner must not special-case: colour handling (Y-only networks),
value range, decimal-scale strategy, device placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, ClassVar

import torch

from sr_bench.errors import UserError
from sr_bench.scales import scale_text

MAX_SCALE = Fraction(64)


def _as_fraction(value, what: str) -> Fraction:
    try:
        return Fraction(str(value)) if not isinstance(value, Fraction) else value
    except (ValueError, ZeroDivisionError):
        raise UserError(f"ScaleSupport: {what} {value!r} is not a number; write e.g. 4 or '1.5'") from None


class _IntegersOrConstructor:
    """``ScaleSupport.integers(2, 3, 4)`` builds a support; ``support.integers`` is its frozenset of scales."""

    def __get__(self, obj, owner):
        return owner._of_integers if obj is None else obj._integers


@dataclass(frozen=True, init=False, repr=False)
class ScaleSupport:
    """The scales a model runs natively: integer scales it holds a network for, and/or a range (low, high]; any other
    scale runs only through the model's decimal-scale strategy (``Upscaler.strategy``). Built with ``.integers(2, 3,
    4)``, ``.range(1, 4)``, ``.any_scale()`` or ``ScaleSupport(integers={2, 4}, low=..., high=...)``. Immutable."""

    _integers: frozenset
    low: Fraction | None
    high: Fraction | None
    integers = _IntegersOrConstructor()

    def __init__(self, integers=frozenset(), low=None, high=None):
        ints = []
        for k in integers:
            if isinstance(k, bool) or int(k) != k or int(k) < 1:
                raise UserError(f"ScaleSupport: integer scales are whole numbers >= 1, got {k!r}")
            ints.append(int(k))
        if (low is None) != (high is None):
            raise UserError("ScaleSupport: give both ends of the range (low, high], e.g. ScaleSupport.range(1, 4)")
        if low is not None:
            low, high = _as_fraction(low, "low"), _as_fraction(high, "high")
            if not 1 <= low < high <= MAX_SCALE:
                raise UserError(f"ScaleSupport.range({low}, {high}): need 1 <= low < high <= {MAX_SCALE}")
        object.__setattr__(self, "_integers", frozenset(ints))
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def _of_integers(cls, *scales: int) -> "ScaleSupport":
        if len(scales) == 1 and isinstance(scales[0], (list, tuple, set, frozenset)):  # .integers([2, 4]) / a set
            scales = tuple(scales[0])
        if not scales:
            raise UserError("ScaleSupport.integers() needs at least one scale, e.g. ScaleSupport.integers(2, 4)")
        return cls(integers=frozenset(scales))

    @classmethod
    def range(cls, low, high) -> "ScaleSupport":
        """Every scale in (low, high] natively, e.g. ``ScaleSupport.range(1, 4)``; decimals as strings ('1.5')."""
        return cls(low=low, high=high)

    @classmethod
    def any_scale(cls) -> "ScaleSupport":
        return cls(low=Fraction(1), high=MAX_SCALE)

    def native(self, s: Fraction) -> bool:
        return (s.denominator == 1 and int(s) in self._integers) or (self.low is not None and self.low < s <= self.high)

    def describe(self) -> str:
        parts = ["x" + ",".join(str(i) for i in sorted(self._integers))] if self._integers else []
        if self.low is not None:
            parts.append(f"({self.low},{self.high}]")
        return " ".join(parts) or "-"

    def __repr__(self):
        return f"ScaleSupport(integers={set(sorted(self._integers)) or 'set()'}, low={self.low}, high={self.high})"


def scale_refusal(model: str, scale: Fraction, problem: str) -> UserError:
    """The one-line error for a scale a model cannot run (built-ins and plugins alike)."""
    return UserError(f"model {model!r} cannot run x{scale_text(Fraction(scale))}: {problem}")


def _modules_in(value) -> list[torch.nn.Module]:
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
    return [m for m in items if isinstance(m, torch.nn.Module)]


def held_modules(model) -> list[torch.nn.Module]:
    """The ``nn.Module``s ``model`` holds in its attributes, directly or in a dict, list or tuple."""
    return [m for value in vars(model).values() for m in _modules_in(value)]


@dataclass
class TrainingForward:
    """How ``srbench train`` trains a model: the adapter's own forward with autograd on (the adapters run their
    networks under ``torch.inference_mode()``), with the adapter's pre- and post-processing but no final clamp."""

    module: torch.nn.Module  # what the optimizer updates and the checkpoint holds (its state_dict keys load strictly)
    # (lr, hr, scale, generator) -> (prediction, target), float32 in the same units; the loss is their L1
    predict: Callable[[torch.Tensor, torch.Tensor, Fraction, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    target: str  # "rgb" or "y": what the loss compares
    reload_opts: dict = field(default_factory=dict)  # --model-opt values `srbench run` needs for the saved file
    # pyramid networks (LapSRN, MS-LapSRN): (lr, hr, scale, generator) -> (every level's prediction, coarse to fine;
    # each level's target), for the multi-level loss
    predict_levels: Callable | None = None


@dataclass
class Upscaler:
    """Base class for everything ``srbench run --models`` can name; subclasses implement ``super_resolve`` (the
    contract: README, "Adding a model"). ``scale_sha256`` maps an integer scale to the sha256 of the weights file that
    serves it (one file per scale); rows at that scale carry it. ``checkpoint_sha256`` is every loaded file
    ("+"-joined when there are several)."""

    name: str
    scales: ScaleSupport
    learned: bool = True
    checkpoint_sha256: str | None = None
    untrained: bool = False
    strategy: str = "native"
    config: dict = field(default_factory=dict)
    scale_sha256: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.scale_sha256 and not self.checkpoint_sha256:
            self.checkpoint_sha256 = "+".join(self.scale_sha256[k] for k in sorted(self.scale_sha256))

    def to(self, device: torch.device) -> "Upscaler":
        """Called once before the first image: every held ``nn.Module`` (``held_modules``) to ``device``, in eval
        mode, dtypes as built. Override it for anything else to move."""
        for m in held_modules(self):
            m.to(device).eval()
        return self

    def strategy_for(self, scale: Fraction) -> str:
        """The name stored in the ``strategy`` column for this scale."""
        return "native" if self.scales.native(scale) else self.strategy

    def scale_problem(self, scale: Fraction) -> str | None:
        """Why this model cannot run ``scale`` (None: it can), checked for every requested scale before a run reads
        any image. Scales outside ``scales`` need a decimal-scale strategy (``strategy`` other than native)."""
        s = Fraction(scale)
        if self.scales.native(s) or self.strategy_for(s) != "native":
            return None
        return (f"it declares scales {self.scales.describe()} and no decimal-scale strategy; drop that scale from "
                f"--scales (or declare it in the model's ScaleSupport)")

    def checkpoint_sha256_for(self, scale: Fraction) -> str:
        """The sha256 of the weights behind ``scale``: that scale's own file when there is one per scale, else every
        loaded file; empty without weights."""
        s = Fraction(scale)
        if s.denominator == 1 and int(s) in self.scale_sha256:
            return self.scale_sha256[int(s)]
        return self.checkpoint_sha256 or ""

    # ``srbench run --tile``: True when ``super_resolve`` runs its networks through ``tiling.run_network`` (every
    # built-in does); otherwise the runner tiles around ``super_resolve`` itself (``tiling.super_resolve_tiled``).
    tiles_networks: ClassVar[bool] = False
    # the overlap (LR pixels of context per side) ``--tile`` uses when ``--tile-overlap`` is not given: per family,
    # min(receptive-field radius, 32); docs/tiling.md gives each family's radius and measured differences
    tile_overlap: ClassVar[int] = 32

    # One network per scale: the scales ``srbench train --scale K`` takes (the model is then built with scale=K).
    per_scale_training: ClassVar[tuple[int, ...]] = ()
    # The built-in decimal-scale strategies a plugin with integer scales opts into, its default first;
    # ``--model-opt strategy=...`` picks another, run around ``super_resolve`` (``strategies.PluginStrategy``).
    strategies: ClassVar[tuple[str, ...]] = ()

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward | None:
        """The differentiable forward ``srbench train`` uses (``scale``: the one network's scale for a
        ``per_scale_training`` model), or None when sr_bench cannot train this model."""
        return None

    def networks_for(self, scale: Fraction) -> list[torch.nn.Module]:
        """The networks ``super_resolve`` runs at ``scale``. By default: of a dict attribute keyed by integer scales
        (``{2: net_x2, 4: net_x4}``) the network of that scale (else of the smallest larger one, else of the largest),
        and every other held module (or ``modules()`` when it holds no such dict)."""
        s = Fraction(scale)
        shared, per_scale = [], []
        for value in vars(self).values():
            if isinstance(value, dict) and value and all(isinstance(k, int) and not isinstance(k, bool)
                                                         and isinstance(m, torch.nn.Module) for k, m in value.items()):
                keys = sorted(value)
                per_scale.append(value[next((k for k in keys if k >= s), keys[-1])])
            else:
                shared += _modules_in(value)
        modules = getattr(self, "modules", None)
        if not per_scale and callable(modules):
            try:
                return list(modules())
            except NotImplementedError:
                pass
        return shared + per_scale

    def parameter_count(self, scale: Fraction) -> int:
        """Trainable parameters of ``networks_for(scale)`` (each counted once), as the model cards count them:
        frozen ones (``requires_grad=False``, e.g. the MeanShift convs) left out."""
        seen = {id(p): p.numel() for net in self.networks_for(scale) for p in net.parameters() if p.requires_grad}
        return sum(seen.values())

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError


class WrappedUpscaler(Upscaler):
    """An ``Upscaler`` run around another (``inner``): the rows' fields, the device and the tiling overlap are the inner
    model's; ``config`` adds to its config."""

    def __init__(self, inner: Upscaler, name: str, strategy: str, config: dict):
        super().__init__(name=name, scales=inner.scales, learned=inner.learned,
                         checkpoint_sha256=inner.checkpoint_sha256, untrained=inner.untrained, strategy=strategy,
                         config={**inner.config, **config}, scale_sha256=dict(inner.scale_sha256))
        self.inner = inner

    @property
    def tile_overlap(self) -> int:
        return self.inner.tile_overlap

    def to(self, device) -> "WrappedUpscaler":
        self.inner = self.inner.to(device)
        return self
