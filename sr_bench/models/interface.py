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

MAX_SCALE = Fraction(64)


def _as_fraction(value, what: str) -> Fraction:
    try:
        return Fraction(str(value)) if not isinstance(value, Fraction) else value
    except (ValueError, ZeroDivisionError):
        raise UserError(f"ScaleSupport: {what} {value!r} is not a number; write e.g. 4 or '1.5'") from None


class _IntegersOrConstructor:
    """``ScaleSupport.integers(2, 3, 4)`` builds a support; ``support.integers`` is its frozenset of scales."""

    def __get__(self, obj, owner):
        if obj is None:
            return owner._of_integers
        return obj._integers


class ScaleSupport:
    """The scales a model runs natively: integer scales it holds a network for, and/or a range (low, high].

    Build one with ``ScaleSupport.integers(2, 3, 4)``, ``ScaleSupport.range(1, 4)`` or ``ScaleSupport.any_scale()``
    (or the keyword form ``ScaleSupport(integers={2, 4}, low=..., high=...)``). Any other scale runs only through the
    model's decimal-scale strategy (``Upscaler.strategy``); a model without one refuses it before the run starts.
    Immutable and hashable.
    """

    __slots__ = ("_integers", "low", "high")
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

    def __setattr__(self, name, value):
        raise AttributeError("ScaleSupport is immutable; build a new one")

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
        if s.denominator == 1 and int(s) in self._integers:
            return True
        return self.low is not None and self.low < s <= self.high

    def describe(self) -> str:
        parts = []
        if self._integers:
            parts.append("x" + ",".join(str(i) for i in sorted(self._integers)))
        if self.low is not None:
            parts.append(f"({self.low},{self.high}]")
        return " ".join(parts) or "-"

    def _key(self):
        return (self._integers, self.low, self.high)

    def __eq__(self, other):
        return isinstance(other, ScaleSupport) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"ScaleSupport(integers={set(sorted(self._integers)) or 'set()'}, low={self.low}, high={self.high})"

    def __reduce__(self):  # pickling (process workers) goes through the constructor
        return (ScaleSupport, self._key())


def scale_refusal(model: str, scale: Fraction, problem: str) -> UserError:
    """The one-line error for a scale a model cannot run (built-ins and plugins alike)."""
    from sr_bench.scales import scale_text

    return UserError(f"model {model!r} cannot run x{scale_text(Fraction(scale))}: {problem}")


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
    """Base class for everything ``srbench run --models`` can name.

    Subclasses implement ``super_resolve``. ``lr`` is (B, 3, h, w) RGB in [0, 1] (float64 from the runner; cast as
    the network needs); the result must be (B, 3, size[0], size[1]) in [0, 1] (values outside are clipped by the
    protocol's quantisation).

    ``scale_sha256`` maps an integer scale to the sha256 of the weights file that serves it (one file per scale);
    rows at that scale carry it. ``checkpoint_sha256`` is every loaded file ("+"-joined when there are several).
    """

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
        """Called once before the first image: moves every ``nn.Module`` the model holds in its attributes (directly,
        or in a dict, list or tuple) to ``device`` and puts it in eval mode; dtypes stay as built (the input is
        float64: cast it as the network needs). Override it for anything else to move."""
        for value in vars(self).values():
            items = (value.values() if isinstance(value, dict)
                     else value if isinstance(value, (list, tuple)) else [value])
            for m in items:
                if isinstance(m, torch.nn.Module):
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

    # ``srbench run --tile``: True when ``super_resolve`` runs its networks through ``sr_bench.models.tiling.
    # run_network`` (every built-in does); otherwise the runner tiles around ``super_resolve`` itself, on LR tiles
    # aligned to the scale (``tiling.super_resolve_tiled``).
    tiles_networks: ClassVar[bool] = False
    # the overlap (LR pixels of context per side) ``--tile`` uses when ``--tile-overlap`` is not given: per family,
    # min(receptive-field radius, 32); docs/tiling.md gives each family's radius and measured differences
    tile_overlap: ClassVar[int] = 32

    # One network per scale: the scales ``srbench train --scale K`` takes (the model is then built with scale=K).
    per_scale_training: ClassVar[tuple[int, ...]] = ()
    # A plugin with integer scales that opts into the built-in decimal-scale strategies names them here, its default
    # first (e.g. ("ceil-then-down", "floor-then-up", "recursive-x2")); ``--model-opt strategy=...`` picks another,
    # and sr_bench runs it around ``super_resolve`` (``strategies.PluginStrategy``). Built-ins take ``strategy=``.
    strategies: ClassVar[tuple[str, ...]] = ()

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward | None:
        """The differentiable forward ``srbench train`` uses (``scale``: the one network's scale for a
        ``per_scale_training`` model), or None when sr_bench cannot train this model."""
        return None

    def networks_for(self, scale: Fraction) -> list[torch.nn.Module]:
        """The networks ``super_resolve`` runs at ``scale``. By default: a dict attribute keyed by integer scales
        (``{2: net_x2, 4: net_x4}``, one network per scale) gives the network of that scale (else of the smallest
        larger one, else of the largest), and every other ``nn.Module`` the model holds counts whole (its attributes,
        directly or in a list or dict; or its ``modules()`` when it holds no such dict). Override it when the model
        picks its networks some other way."""
        s = Fraction(scale)
        shared, per_scale = [], []
        for value in vars(self).values():
            if isinstance(value, dict) and value and all(isinstance(k, int) and not isinstance(k, bool)
                                                         and isinstance(m, torch.nn.Module) for k, m in value.items()):
                keys = sorted(value)
                per_scale.append(value[next((k for k in keys if k >= s), keys[-1])])
                continue
            items = (value.values() if isinstance(value, dict)
                     else value if isinstance(value, (list, tuple)) else [value])
            shared += [m for m in items if isinstance(m, torch.nn.Module)]
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
        seen: dict[int, int] = {}
        for net in self.networks_for(scale):
            for p in net.parameters():
                if p.requires_grad:
                    seen[id(p)] = p.numel()
        return sum(seen.values())

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError
