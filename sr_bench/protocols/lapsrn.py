"""``lapsrn-matlab``: phoenix104104/LapSRN's own evaluation (``evaluate_*_dataset.m`` + ``utils/evaluate_SR.m``),
which produced the LapSRN / MS-LapSRN TPAMI table; how it differs from ``matlab``: docs/protocols.md."""

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
    Its SSIM is not the authors' (the ``ssim`` rule); the rules it does not set here are ``matlab``'s."""

    name: str = "lapsrn-matlab"
    summary: str = ("LapSRN evaluate_SR.m: modcrop, double LR (not rounded), uint8 SR, Y = rgb2ycbcr double "
                    "(not rounded), shave s")
    lr: str = "matlab imresize(HR/255, 1/s) bicubic antialiased, double (not rounded)"
    sr_quantize: str = "im2uint8"
    color: str = "3-channel: Y = rgb2ycbcr(double) unrounded; 1-channel: the grey values"
    psnr: str = "10 log10(1 / MSE) on shaved Y in [0, 1] (= peak 255 on 0..255 units)"
    ssim: str = "ssim_index (Gaussian 11x11, valid) on the same Y -- not MATLAB's built-in ssim the authors used"

    def make_lr(self, hr: torch.Tensor, k: int) -> torch.Tensor:
        return imresize(hr, scale=Fraction(1, k))  # 0..255 units, not rounded (the runner divides by 255)

    def luma(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb2ycbcr_matlab_double(rgb / 255.0)[..., :1, :, :] * 255.0
