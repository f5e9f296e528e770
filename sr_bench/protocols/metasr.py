"""``metasr``: Meta-SR's recipe for any scale (``generate_LR_metasr_X1_X4.m`` + ``trainer.test`` / ``calc_psnr``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from sr_bench.imaging.color import gray2rgb, quantized_with_lumas, rgb2y_linear, rgb2y_matlab_uint8
from sr_bench.imaging.quantize import to_uint8_values, unit_to_uint8_values
from sr_bench.imaging.resize import imresize
from sr_bench.protocols.base import Case, HRSource, ImageTooSmall, Protocol, Views, as_source, require_size, shave
from sr_bench.scales import ceil_div, divisible, floor_mul, scale_text


@dataclass(frozen=True)
class MetaSRProtocol(Protocol):
    name: str = "metasr"
    summary: str = "Meta-SR: minus-4 crop, imresize bicubic, SR = floor(s*LR), Y-diff PSNR /256, shave ceil(s)"
    scales: str = "any decimal > 1"
    color_input: str = "images read as RGB (gray replicated, as Meta-SR's loader does)"
    lr_crop: str = "per axis: if n/s is not a whole number (exact decimal arithmetic), drop the last 4 rows/cols"
    lr: str = "matlab imresize(HR_cropped, 1/s) bicubic antialiased, size ceil(n'/s), rounded to uint8"
    sr_size: str = "floor(s * lr size), exact"
    hr_eval: str = "uncropped HR, cropped top-left to the SR size"
    sr_quantize: str = "round(255*x) half away from zero, clipped"
    shave_px: str = "ceil(s)"
    psnr: str = "on Y of the difference: (65.738 R + 129.057 G + 25.064 B)/256, not rounded; peak 255"
    ssim: str = "ssim_index on Y = round(rgb2ycbcr uint8) (not Meta-SR's /255 Y), shave ceil(s)"

    def prepare(self, hr: torch.Tensor | HRSource, s: Fraction) -> Case:
        src = as_source(hr)
        gray = src.hr.shape[0] == 1
        hr = src.derived("rgb", lambda: gray2rgb(src.hr).contiguous()) if gray else src.hr
        _, h, w = hr.shape
        hc = h if divisible(h, s) else h - 4
        wc = w if divisible(w, s) else w - 4
        require_size(hc, wc, 1, s, (h, w))
        lr_size = (ceil_div(hc, s), ceil_div(wc, s))
        sr_size = (floor_mul(lr_size[0], s), floor_mul(lr_size[1], s))
        k = math.ceil(s)
        require_size(sr_size[0], sr_size[1], 2 * k + 1, s, (h, w))
        if sr_size[0] > h or sr_size[1] > w:  # after the minus-4 crop, floor(ceil(h'/s) * s) can pass h at a large s
            raise ImageTooSmall(f"image {h}x{w} is too small for scale {scale_text(s)}: Meta-SR's sizes give an SR of "
                                f"{sr_size[0]}x{sr_size[1]}, larger than the image")
        # the resize reads the HR with its rows first (H, C, W in memory; one copy per image and crop width): its
        # first pass (along H) then multiplies those rows where they are instead of gathering them from interleaved
        # pixels. The values are the same; case.hr keeps the decoded layout (LPIPS's network sees it unchanged).
        rows = src.derived(f"rows_first_{wc}", lambda: hr[:, :, :wc].permute(1, 0, 2).contiguous().permute(1, 0, 2))
        lr = to_uint8_values(imresize(rows[:, :hc], scale=1 / s), in_place=True)
        return Case(hr=hr[:, : sr_size[0], : sr_size[1]], lr=lr, sr_size=sr_size, shave=k, gray=gray, full=hr,
                    source=src)

    def quantize(self, sr01: torch.Tensor) -> torch.Tensor:
        fused = quantized_with_lumas(sr01)
        if fused is None:
            return unit_to_uint8_values(sr01)
        sr, y_lin, y_u8 = fused
        # both lumas came out of the same pass (one read of the image instead of three); views() takes them from
        # here. Nothing writes to a quantised SR afterwards, so they stay its lumas.
        sr._srbench_lumas = (y_lin, y_u8)
        return sr

    def views(self, sr: torch.Tensor, case: Case) -> Views:
        n = case.shave
        lumas = getattr(sr, "_srbench_lumas", None)
        # Meta-SR converts the RGB difference; the luma of each image keeps the difference intact and unrounded.
        return Views(
            y=lambda: (shave(lumas[0] if lumas else rgb2y_linear(sr), n)[None],
                       shave(case.hr_derived("y_lin", rgb2y_linear), n)[None]),
            y_ssim=lambda: (
                shave(lumas[1] if lumas else rgb2y_matlab_uint8(sr), n)[None],
                shave(case.hr_derived("y_u8", rgb2y_matlab_uint8), n)[None],
            ),
            rgb=lambda: (sr[None] / 255.0, case.hr[None] / 255.0),
        )
