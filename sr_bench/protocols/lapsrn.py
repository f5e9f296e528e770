"""``lapsrn-matlab``: phoenix104104/LapSRN's own evaluation (``evaluate_*_dataset.m`` + ``utils/evaluate_SR.m``),
which produced the LapSRN / MS-LapSRN TPAMI table. It differs from ``matlab`` in two roundings: the LR is the
double ``imresize`` output, never rounded to uint8, and the Y of the uint8 SR is ``rgb2ycbcr`` in double, not
rounded. Under ``matlab`` the same official weights score 0.03-0.13 dB lower."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from sr_bench.imaging.color import gray2rgb, rgb2gray_matlab_uint8, rgb2ycbcr_matlab_double
from sr_bench.imaging.quantize import unit_to_uint8_values
from sr_bench.imaging.resize import imresize
from sr_bench.protocols.base import Case, HRSource, Protocol, Views, as_source, integer_only, require_size, shave


@dataclass(frozen=True)
class LapSRNMatlabProtocol(Protocol):
    """phoenix104104/LapSRN's evaluation: ``img_GT = mod_crop(im2double(imread(f)), s)``,
    ``img_LR = imresize(img_GT, 1/s, 'bicubic')`` (double, not rounded), SR, then ``evaluate_SR``: ``im2uint8`` both,
    ``im2double``, ``rgb2ycbcr`` (double) -> Y in [16, 235]/255 unrounded, ``shave_bd(., s)``, MATLAB ``psnr`` (peak 1).
    Its SSIM is MATLAB's built-in ``ssim`` ('same' filtering); sr_bench computes Wang's ``ssim_index`` on the same Y
    instead, so SSIM under this protocol is not comparable with the TPAMI table's (PSNR is)."""

    name: str = "lapsrn-matlab"
    version: int = 1
    summary: str = "LapSRN evaluate_SR.m: modcrop, double LR (not rounded), uint8 SR, Y = rgb2ycbcr double (not rounded), shave s"
    scales: str = "integer"
    hr_crop: str = "modcrop(H, s)"
    lr: str = "matlab imresize(HR/255, 1/s) bicubic antialiased, double (not rounded)"
    sr_size: str = "s * lr size (= modcropped HR size)"
    sr_quantize: str = "im2uint8"
    color: str = "3-channel: Y = rgb2ycbcr(double) unrounded; 1-channel: the grey values"
    shave_px: str = "s"
    psnr: str = "10 log10(1 / MSE) on shaved Y in [0, 1] (= peak 255 on 0..255 units)"
    ssim: str = "ssim_index (Gaussian 11x11, valid) on the same Y -- not MATLAB's built-in ssim the authors used"
    lpips_region: str = "full SR image, RGB in [-1, 1], not shaved"

    def check_scale(self, s: Fraction) -> None:
        integer_only(self.name, s)

    def prepare(self, hr: torch.Tensor | HRSource, s: Fraction) -> Case:
        src = as_source(hr)
        hr = src.hr
        k = int(s)
        _, h, w = hr.shape
        hc, wc = h - h % k, w - w % k
        require_size(hc, wc, 2 * k + 1, 2 * k + 1, "image", s)
        hr_c = hr[:, :hc, :wc]
        lr = imresize(hr_c, scale=Fraction(1, k))  # 0..255 units, not rounded (the runner divides by 255)
        return Case(hr=hr_c, lr=lr, sr_size=(hc, wc), shave=k, gray=hr.shape[0] == 1, full=hr, source=src)

    def quantize(self, sr01: torch.Tensor) -> torch.Tensor:
        return unit_to_uint8_values(sr01)

    def views(self, sr: torch.Tensor, case: Case) -> Views:
        def y_double(x: torch.Tensor) -> torch.Tensor:
            return rgb2ycbcr_matlab_double(x / 255.0)[..., :1, :, :] * 255.0

        if case.gray:
            y_sr = rgb2gray_matlab_uint8(sr) if sr.shape[0] == 3 else sr
            y_hr = case.hr
        else:
            y_sr, y_hr = y_double(sr), case.hr_derived("y_double", y_double)
        y = (shave(y_sr, case.shave)[None], shave(y_hr, case.shave)[None])
        if case.gray:
            rgb = lambda: (gray2rgb(y_sr)[None] / 255.0, gray2rgb(y_hr)[None] / 255.0)  # noqa: E731
        else:
            rgb = lambda: (sr[None] / 255.0, case.hr[None] / 255.0)  # noqa: E731
        return Views(y=lambda: y, y_ssim=lambda: y, rgb=rgb)
