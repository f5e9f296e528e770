"""Colour conversions with MATLAB's semantics.

Tensors are ``(..., 3, H, W)`` RGB or ``(..., 1, H, W)`` gray, in 0..255 units (float64 recommended).
"""

from __future__ import annotations

import torch

from sr_bench.imaging.quantize import round_half_away
from sr_bench.native import pixels

# MATLAB rgb2ycbcr: origT row for Y (for [0,1] input); for uint8 input MATLAB scales T by 1/255 and keeps offset 16.
_Y_T = (65.481, 128.553, 24.966)
# What EDSR / Meta-SR / LIIF multiply the RGB *difference* by (the +16 offset cancels in a difference).
_Y_DIFF_256 = (65.738 / 256.0, 129.057 / 256.0, 25.064 / 256.0)
# MATLAB rgb2gray (the Y row of the inverse NTSC transform, as rgb2gray.m computes it).
_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def rgb2y_matlab_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """Y of MATLAB ``rgb2ycbcr`` applied to a uint8 image: ``round(T/255 . rgb + 16)``, returned as float.

    MATLAB evaluates it with ``imlincomb`` in double, then rounds half away from zero into uint8; we follow that order.
    ``rgb`` holds integer values 0..255 (any float dtype).
    """
    _check_rgb(rgb)
    t = [c / 255.0 for c in _Y_T]
    fused = pixels.luma_u8(rgb, tuple(t))  # torch's steps in one pass, the same bits (sr_bench.native)
    return pixels.torch_luma_u8(rgb, t) if fused is None else fused


def quantized_with_lumas(sr01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(``unit_to_uint8_values(sr01)``, ``rgb2y_linear`` of it, ``rgb2y_matlab_uint8`` of it) computed in one pass
    over ``sr01`` (3, H, W) by the C kernels (``sr_bench.native``): the same bits in the same layouts as the three
    calls. None without the kernels."""
    return pixels.unit_round_u8_with_lumas(sr01, _Y_DIFF_256, tuple(c / 255.0 for c in _Y_T))


def rgb2y_linear(rgb: torch.Tensor, coefficients: tuple[float, float, float] = _Y_DIFF_256) -> torch.Tensor:
    """``c . rgb`` without offset or rounding; the Meta-SR/EDSR luma of a difference image."""
    _check_rgb(rgb)
    fused = pixels.luma_linear(rgb, tuple(coefficients))
    return pixels.torch_luma_linear(rgb, coefficients) if fused is None else fused


def rgb2gray_matlab_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of a uint8 image (rounded), as float. Equal channels map to themselves."""
    _check_rgb(rgb)
    r, g, b = rgb.unbind(-3)
    return round_half_away(_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).clamp_(0, 255).unsqueeze(-3)


def gray2rgb(gray: torch.Tensor) -> torch.Tensor:
    if gray.shape[-3] != 1:
        raise ValueError(f"expected 1 channel, got {gray.shape[-3]}")
    return gray.expand(*gray.shape[:-3], 3, *gray.shape[-2:])


def _check_rgb(x: torch.Tensor) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected RGB (..., 3, H, W), got shape {tuple(x.shape)}")


# MATLAB rgb2ycbcr / ycbcr2rgb on double images in [0, 1] (the float path of LapSRN's SR_LapSRN.m, VDSR's and SRCNN's
# test code: im2double first, then the conversion; nothing is rounded). origT and origOffset of rgb2ycbcr.m; for class
# double MATLAB uses T = origT / 255 and offset = origOffset / 255, and ycbcr2rgb uses 255 * inv(origT) and
# inv(origT) * origOffset. Both evaluate per channel with imlincomb (double), in the order below.
_YCBCR_T = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))
_YCBCR_OFFSET = (16.0, 128.0, 128.0)


def rgb2ycbcr_matlab_double(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` of a double image in [0, 1]: (..., 3, H, W) -> YCbCr in [16, 235]/255, [16, 240]/255.

    No rounding and no clipping (MATLAB clips nothing for floating-point input).
    """
    _check_rgb(rgb)
    return torch.stack([pixels.imlincomb(rgb, [c / 255.0 for c in _YCBCR_T[p]], _YCBCR_OFFSET[p] / 255.0)
                        for p in range(3)], dim=-3)


def ycbcr2rgb_matlab_double(ycbcr: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """MATLAB ``ycbcr2rgb`` of a double YCbCr image (values in 0..1 units) -> RGB, clipped to [0, 1] as MATLAB does
    for floating-point output (``clip=False`` keeps the raw linear result)."""
    _check_rgb(ycbcr)
    tinv = torch.linalg.inv(torch.tensor(_YCBCR_T, dtype=torch.float64))
    t, offset = (255.0 * tinv).tolist(), (tinv @ torch.tensor(_YCBCR_OFFSET, dtype=torch.float64)).tolist()
    rgb = torch.stack([pixels.imlincomb(ycbcr, t[p], -offset[p]) for p in range(3)], dim=-3)
    return rgb.clamp_(0.0, 1.0) if clip else rgb
