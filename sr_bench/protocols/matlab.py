"""``matlab``: the integer-scale protocol behind nearly every published SR table (RCAN/DBDN
``Evaluate_PSNR_SSIM.m``)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from sr_bench.errors import UserError
from sr_bench.imaging.color import gray2rgb, rgb2gray_matlab_uint8, rgb2y_matlab_uint8
from sr_bench.imaging.quantize import to_uint8_values, unit_to_uint8_values
from sr_bench.imaging.resize import imresize
from sr_bench.protocols.base import Case, HRSource, Protocol, Views, as_source, require_size, shave
from sr_bench.scales import scale_text


@dataclass(frozen=True)
class MatlabProtocol(Protocol):
    name: str = "matlab"
    summary: str = ("RCAN/DBDN MATLAB scripts: modcrop, imresize bicubic, uint8, Y (rgb2ycbcr uint8), shave s, "
                    "ssim_index")
    scales: str = "integer"
    hr_crop: str = "modcrop(H, s)"
    lr: str = "matlab imresize(HR, 1/s) bicubic antialiased, rounded to uint8"
    sr_size: str = "s * lr size (= modcropped HR size)"
    sr_quantize: str = "round(255*x) half away from zero, clipped (im2uint8)"
    color: str = ("3-channel: Y = round(rgb2ycbcr uint8); 1-channel: the gray values (model sees gray replicated, "
                  "SR -> rgb2gray)")
    shave_px: str = "s"
    psnr: str = "10 log10(255^2 / MSE) on shaved Y"
    ssim: str = "ssim_index: Gaussian 11x11 sigma 1.5, K1 .01, K2 .03, L 255, valid, on shaved Y"

    def check_scale(self, s: Fraction) -> None:
        if s.denominator != 1:
            raise UserError(f"protocol {self.name!r} is defined for integer scales only, got {scale_text(s)}; "
                            "use --protocol metasr or liif")

    def prepare(self, hr: torch.Tensor | HRSource, s: Fraction) -> Case:
        src = as_source(hr)
        hr = src.hr
        k = int(s)
        _, h, w = hr.shape
        hc, wc = h - h % k, w - w % k
        # an SR must survive the shave on both sides and leave at least one pixel
        require_size(hc, wc, 2 * k + 1, s, (h, w))
        hr_c = hr[:, :hc, :wc]
        lr = self.make_lr(hr_c, k)
        return Case(hr=hr_c, lr=lr, sr_size=(hc, wc), shave=k, gray=hr.shape[0] == 1, full=hr, source=src)

    def make_lr(self, hr: torch.Tensor, k: int) -> torch.Tensor:
        return to_uint8_values(imresize(hr, scale=Fraction(1, k)))

    def luma(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb2y_matlab_uint8(rgb)

    def quantize(self, sr01: torch.Tensor) -> torch.Tensor:
        return unit_to_uint8_values(sr01)

    def views(self, sr: torch.Tensor, case: Case) -> Views:
        if case.gray:
            y_sr, y_hr = (rgb2gray_matlab_uint8(sr) if sr.shape[0] == 3 else sr), case.hr
            rgb = lambda: (gray2rgb(y_sr)[None] / 255.0, gray2rgb(y_hr)[None] / 255.0)  # noqa: E731
        else:
            y_sr, y_hr = self.luma(sr), case.hr_derived(f"{self.name}/luma", self.luma)
            rgb = lambda: (sr[None] / 255.0, case.hr[None] / 255.0)  # noqa: E731
        y = (shave(y_sr, case.shave)[None], shave(y_hr, case.shave)[None])
        return Views(y=lambda: y, y_ssim=lambda: y, rgb=rgb)
