"""Geometric self-ensemble, ``NAME+``: the "+" of EDSR+, RCAN+, DBDN+ (Lim et al. 2017, §3.3; Timofte et al. 2016).

The model runs on the 8 dihedral transforms of the LR; the outputs are mapped back and averaged in float before the
protocol quantises. A decimal-scale strategy runs inside each pass; rows carry the inner model's strategy and hash.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Callable

import torch

from sr_bench.models.interface import Upscaler, WrappedUpscaler

TRANSFORMS = tuple((rot, flip) for flip in (False, True) for rot in range(4))  # identity first


def forward_transform(x: torch.Tensor, rot: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, rot, dims=(-2, -1))


def inverse_transform(x: torch.Tensor, rot: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, -rot, dims=(-2, -1))
    return x.flip(-1) if flip else x


class SelfEnsemble(WrappedUpscaler):
    """Wraps any ``Upscaler``; averages its outputs over the 8 dihedral transforms of the input."""

    def __init__(self, inner: Upscaler, name: str):
        super().__init__(inner, name, inner.strategy, {"self_ensemble": 8})

    @property
    def tiles_networks(self) -> bool:
        return self.inner.tiles_networks

    def strategy_for(self, scale: Fraction) -> str:
        return self.inner.strategy_for(scale)

    def scale_problem(self, scale: Fraction) -> str | None:
        return self.inner.scale_problem(scale)

    def networks_for(self, scale: Fraction) -> list:
        return self.inner.networks_for(scale)

    def checkpoint_sha256_for(self, scale: Fraction) -> str:
        return self.inner.checkpoint_sha256_for(scale)

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        total = None
        for rot, flip in TRANSFORMS:
            # an odd rotation swaps height and width, of the input and of the size asked for
            t_size = (size[1], size[0]) if rot % 2 else size
            out = inverse_transform(self.inner.super_resolve(forward_transform(lr, rot, flip), scale, t_size),
                                    rot, flip)
            total = out if total is None else total + out
        return total / len(TRANSFORMS)


def self_ensemble_factory(base: Callable[..., Upscaler], name: str) -> Callable[..., Upscaler]:
    """A factory with ``base``'s signature (``functools.wraps``: the runner inspects it to pass only the options the
    model takes)."""

    @functools.wraps(base)
    def make(*args, **kwargs) -> Upscaler:
        return SelfEnsemble(base(*args, **kwargs), name)

    return make
