"""Rounding with MATLAB's rules (half away from zero), not torch's round-half-to-even."""

from __future__ import annotations

import torch


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def to_uint8_values(x: torch.Tensor) -> torch.Tensor:
    """Values in 0..255 units -> what MATLAB's uint8 cast gives (rounded half away, saturated), kept as float.

    floor(x + 0.5) equals half-away-from-zero rounding for x >= 0, and every x < 0 saturates to 0 either way.
    """
    return torch.floor(x + 0.5).clamp_(0, 255)


def unit_to_uint8_values(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] values -> MATLAB ``im2uint8`` (round(255 x), saturated), as float 0..255."""
    y = x * 255.0
    return y.add_(0.5).floor_().clamp_(0, 255)
