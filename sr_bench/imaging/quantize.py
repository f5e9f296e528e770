"""Rounding with MATLAB's rules (half away from zero), not torch's round-half-to-even."""

from __future__ import annotations

import torch

from sr_bench.native import pixels


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def to_uint8_values(x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """Values in 0..255 units -> what MATLAB's uint8 cast gives (rounded half away, saturated), kept as float;
    ``in_place``: into ``x`` itself (a fresh resize's result, say), saving an image-sized buffer.

    floor(x + 0.5) equals half-away-from-zero rounding for x >= 0, and every x < 0 saturates to 0 either way.
    """
    fused = pixels.round_u8(x, x if in_place else None)  # the same bits in one pass (sr_bench.native), or None
    if fused is not None:
        return fused
    return x.add_(0.5).floor_().clamp_(0, 255) if in_place else torch.floor(x + 0.5).clamp_(0, 255)


def unit_to_uint8_values(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] values -> MATLAB ``im2uint8`` (round(255 x), saturated), as float 0..255."""
    fused = pixels.unit_round_u8(x)
    if fused is not None:
        return fused
    y = x * 255.0
    return y.add_(0.5).floor_().clamp_(0, 255)
