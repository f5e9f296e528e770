"""The one interface the runner knows: LR batch + target scale + target size -> SR batch.

Architectures stay plain ``nn.Module``s with their official state_dict key names; an ``Upscaler`` wraps one (or
none, for interpolation) and owns everything the runner must not special-case: colour handling (Y-only networks),
value range, decimal-scale strategy, device placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import torch


@dataclass(frozen=True)
class ScaleSupport:
    """Integer scales a model was trained for, or a continuous range it handles natively."""

    integers: frozenset[int] = frozenset()
    low: Fraction | None = None  # continuous range (low, high], if any
    high: Fraction | None = None

    @staticmethod
    def any_scale() -> "ScaleSupport":
        return ScaleSupport(low=Fraction(1), high=Fraction(64))

    def native(self, s: Fraction) -> bool:
        if s.denominator == 1 and int(s) in self.integers:
            return True
        return self.low is not None and self.low < s <= self.high

    def describe(self) -> str:
        parts = []
        if self.integers:
            parts.append("x" + ",".join(str(i) for i in sorted(self.integers)))
        if self.low is not None:
            parts.append(f"({self.low},{self.high}]")
        return " ".join(parts) or "-"


@dataclass
class Upscaler:
    """Base class for everything ``srbench run --models`` can name.

    Subclasses implement ``super_resolve``. ``lr`` is (B, 3, h, w) RGB in [0, 1] (float64 from the runner; cast as
    the network needs); the result must be (B, 3, size[0], size[1]) in [0, 1] (values outside are clipped by the
    protocol's quantisation).
    """

    name: str
    scales: ScaleSupport
    learned: bool = True
    checkpoint_sha256: str | None = None
    untrained: bool = False
    strategy: str = "native"
    config: dict = field(default_factory=dict)

    def to(self, device: torch.device) -> "Upscaler":
        return self

    def strategy_for(self, scale: Fraction) -> str:
        """The name stored in the ``strategy`` column for this scale."""
        return "native" if self.scales.native(scale) else self.strategy

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError
