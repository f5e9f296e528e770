"""``lapsrn-matlab``: phoenix104104/LapSRN's own evaluation (``evaluate_*_dataset.m`` + ``utils/evaluate_SR.m``),
which produced the LapSRN / MS-LapSRN TPAMI table. It differs from ``matlab`` in two roundings: the LR is the
double ``imresize`` output, never rounded to uint8, and the Y of the uint8 SR is ``rgb2ycbcr`` in double, not
rounded. Under ``matlab`` the same official weights score 0.03-0.13 dB lower."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from sr_bench.imaging.color import rgb2ycbcr_matlab_double
from sr_bench.imaging.resize import imresize
from sr_bench.protocols.matlab import MatlabProtocol


@dataclass(frozen=True)
class LapSRNMatlabProtocol(MatlabProtocol):
    """phoenix104104/LapSRN's evaluation: ``img_GT = mod_crop(im2double(imread(f)), s)``,
    ``img_LR = imresize(img_GT, 1/s, 'bicubic')`` (double, not rounded), SR, then ``evaluate_SR``: ``im2uint8`` both,
    ``im2double``, ``rgb2ycbcr`` (double) -> Y in [16, 235]/255 unrounded, ``shave_bd(., s)``, MATLAB ``psnr`` (peak 1).
    Its SSIM is MATLAB's built-in ``ssim`` ('same' filtering); sr_bench computes Wang's ``ssim_index`` on the same Y
    instead, so SSIM under this protocol is not comparable with the TPAMI table's (PSNR is)."""

    name: str = "lapsrn-matlab"
    version: int = 1
    summary: str = ("LapSRN evaluate_SR.m: modcrop, double LR (not rounded), uint8 SR, Y = rgb2ycbcr double "
                    "(not rounded), shave s")
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

    def make_lr(self, hr: torch.Tensor, k: int) -> torch.Tensor:
        return imresize(hr, scale=Fraction(1, k))  # 0..255 units, not rounded (the runner divides by 255)

    def luma(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb2ycbcr_matlab_double(rgb / 255.0)[..., :1, :, :] * 255.0
