"""MATLAB bicubic interpolation as a model: the baseline row of every SR table."""

from __future__ import annotations

from fractions import Fraction

import torch

from sr_bench.imaging.resize import imresize
from sr_bench.models.card_files import builtin_card
from sr_bench.models.interface import ScaleSupport, Upscaler


class Bicubic(Upscaler):
    def __init__(self):
        card = builtin_card("bicubic")  # registry/bicubic.toml: any scale, not learned
        super().__init__(name="bicubic", scales=ScaleSupport.range(*card.range), learned=card.learned)

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        # imresize(LR, s) keeps the scale's coordinate mapping; ``size`` may be smaller than ceil(s*h) (Meta-SR's floor)
        # and then it is the top-left part of MATLAB's output. Work in 0..255 so exact .5 values survive to rounding.
        sr = imresize(lr.double() * 255.0, scale=scale, size=size)
        # in place where autograd allows: the resize's output is ours, and one image-sized buffer less to fill
        return sr.div_(255.0) if not (sr.requires_grad and torch.is_grad_enabled()) else sr / 255.0
