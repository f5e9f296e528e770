"""``liif``: LIIF's test recipe (``test.py``, ``datasets/wrappers.py``, ``utils.calc_psnr``, benchmark eval_type)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from PIL import Image

from sr_bench.imaging.color import gray2rgb, rgb2y_linear
from sr_bench.imaging.quantize import to_uint8_values
from sr_bench.imaging.resize import imresize
from sr_bench.protocols.base import Case, HRSource, Protocol, Views, as_source, require_size, shave

# LIIF's benchmark LR files exist for these scales (EDSR's benchmark.tar, MATLAB-made from modcropped HR).
_MATLAB_LR_SCALES = frozenset({2, 3, 4})
# Y of the RGB a float image in [0, 255] has, without MATLAB's rounding (LIIF never quantises).
_Y_T = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def _pil_bicubic(rgb: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    arr = rgb.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    out = np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.BICUBIC))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).to(rgb.dtype)


@dataclass(frozen=True)
class LIIFProtocol(Protocol):
    name: str = "liif"
    summary: str = "LIIF: x2-x4 MATLAB LR (benchmark.tar), other scales PIL bicubic; float SR, Y-diff PSNR /256"
    scales: str = "any decimal > 1"
    color_input: str = "RGB (gray replicated)"
    lr_x2_x4: str = "modcrop(HR, s), matlab imresize(1/s) bicubic, uint8 (EDSR benchmark.tar files)"
    lr_other: str = ("h_lr = floor(H/s) exact; HR cropped to round(h_lr*s) (ties to even, as Python round); "
                     "PIL BICUBIC to (h_lr, w_lr), uint8")
    sr_size: str = "the cropped HR size"
    sr_quantize: str = "none: SR clamped to [0, 1] and measured in float"
    shave_px: str = "s for integer s; ceil(s) otherwise (LIIF only evaluates integer scales on benchmarks)"
    psnr: str = "on Y of the difference: (65.738 R + 129.057 G + 25.064 B)/256; peak 255"
    ssim: str = "ssim_index on float Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255, not rounded (LIIF reports no SSIM)"

    def prepare(self, hr: torch.Tensor | HRSource, s: Fraction) -> Case:
        src = as_source(hr)
        gray = src.hr.shape[0] == 1
        hr = src.derived("rgb", lambda: gray2rgb(src.hr).contiguous()) if gray else src.hr
        _, h, w = hr.shape
        k = math.ceil(s)
        if s.denominator == 1 and int(s) in _MATLAB_LR_SCALES:
            hl, wl = h // int(s), w // int(s)
            require_size(hl * int(s), wl * int(s), 2 * k + 1, s, (h, w))
            hr_c = hr[:, : hl * int(s), : wl * int(s)]
            lr = to_uint8_values(imresize(hr_c, scale=1 / s))
        else:
            hl, wl = math.floor(Fraction(h) / s), math.floor(Fraction(w) / s)
            require_size(hl, wl, 1, s, (h, w))
            hc, wc = round(hl * s), round(wl * s)  # as LIIF's Python round(): an exact tie goes to the even integer
            require_size(hc, wc, 2 * k + 1, s, (h, w))
            hr_c = hr[:, :hc, :wc]
            lr = _pil_bicubic(hr_c, (hl, wl))
        return Case(hr=hr_c, lr=lr, sr_size=(hr_c.shape[1], hr_c.shape[2]), shave=k, gray=gray, full=hr, source=src)

    def quantize(self, sr01: torch.Tensor) -> torch.Tensor:
        return sr01.clamp(0, 1) * 255.0

    def views(self, sr: torch.Tensor, case: Case) -> Views:
        n = case.shave

        def luma16(x):
            return shave(rgb2y_linear(x, _Y_T) + 16.0, n)[None]

        return Views(
            y=lambda: (shave(rgb2y_linear(sr), n)[None], shave(case.hr_derived("y_lin", rgb2y_linear), n)[None]),
            y_ssim=lambda: (luma16(sr), luma16(case.hr)),
            rgb=lambda: (sr[None] / 255.0, case.hr[None] / 255.0),
        )
