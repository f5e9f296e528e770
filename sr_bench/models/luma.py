"""Y-only networks (SRCNN, VDSR, LapSRN, MS-LapSRN) in the colour pipeline of their authors' MATLAB test code,
``SR_LapSRN.m`` / ``SR_MSLapSRN.m`` (phoenix104104/LapSRN), mirrored step by step in ``luma_pipeline`` (README,
"Y-channel networks"). Pre-upsampling networks (fed ``imresize`` of the Y channel there) take the Y of the
three-channel resize: the same numbers, as imresize is linear and per channel. A protocol asking for fewer pixels
than ``ceil(scale * size)`` gets the top-left part of the full MATLAB output, as for the bicubic baseline.
"""

from __future__ import annotations

from fractions import Fraction
from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.imaging.color import rgb2ycbcr_matlab_double, ycbcr2rgb_matlab_double
from sr_bench.imaging.resize import imresize, output_size
from sr_bench.models.archs.blocks import (
    NetworkUpscaler,
    crop_to,
    is_matconvnet_file,
    read_checkpoint,
    unwrap_state_dict,
)
from sr_bench.models.interface import TrainingForward
from sr_bench.models.tiling import run_network


def training_y(rgb01: torch.Tensor) -> torch.Tensor:
    """Y in 0..1 units of MATLAB's double rgb2ycbcr: the Y networks' input and target in ``srbench train``."""
    return rgb2ycbcr_matlab_double(rgb01.to(torch.float64))[:, :1]


def training_net_input(y: torch.Tensor) -> torch.Tensor:
    """MATLAB's single precision, in the channels_last layout ``LumaUpscaler`` gives its networks' weights."""
    return y.to(torch.float32).contiguous(memory_format=torch.channels_last)


def pyramid_targets(y_hr: torch.Tensor, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """The HR Y at each pyramid level's size, MATLAB-bicubic downscaled as LapSRN's ``getBatch_LapSRN.m`` makes its
    level labels (``imresize(HR, 1/2^k)``, not rounded), float32."""
    return [(y_hr if tuple(y_hr.shape[-2:]) == tuple(hw) else imresize(y_hr, size=tuple(hw))).float() for hw in sizes]


def luma_pipeline(lr: torch.Tensor, scale: Fraction, size: tuple[int, int], luma_fn, what: str) -> torch.Tensor:
    """The SR_LapSRN.m colour pipeline around ``luma_fn(y_lr, y_bicubic) -> y_sr`` on ``lr``, (B, 3, h, w) RGB in
    [0, 1]: ``luma_fn`` gets the LR Y and its MATLAB-bicubic upscale (both (B, 1, ., .) float64, 0..1 units) and
    returns the network's Y at any size. Returns (B, 3, size[0], size[1]) float64 RGB in [0, 1]."""
    s = Fraction(scale)
    ycc = rgb2ycbcr_matlab_double(lr.to(torch.float64))  # img_LR = rgb2ycbcr(img_LR), double, not rounded
    up = imresize(ycc, scale=s)  # img_HR = imresize(img_LR, scale)
    y = _full_size_luma(luma_fn, ycc[:, :1], up[:, :1], s)
    rgb = ycbcr2rgb_matlab_double(torch.cat([y, up[:, 1:]], dim=1))  # img_HR(:, :, 1) = y; ycbcr2rgb
    return crop_to(rgb, size, what)


def _full_size_luma(luma_fn, y_lr: torch.Tensor, y_up: torch.Tensor, s: Fraction) -> torch.Tensor:
    """The network's Y at MATLAB's ``ceil(scale * size)``: ``y = imresize(y, [size(img_HR, 1), size(img_HR, 2)])``
    when it has another size."""
    full = output_size((y_lr.shape[-2], y_lr.shape[-1]), s)
    y = luma_fn(y_lr, y_up).to(torch.float64)
    return y if tuple(y.shape[-2:]) == tuple(full) else imresize(y, size=full)


class LumaUpscaler(NetworkUpscaler):
    """Base class for Y-channel networks (the built-in SRCNN, VDSR, LapSRN, MS-LapSRN, and plugins): subclasses
    implement ``luma(y_lr, y_bicubic, scale)`` (float32 (B, 1, ., .) tensors in 0..1 units, MATLAB ``single``, on the
    model's device -> the network's Y, any float dtype and size), which ``super_resolve`` runs in ``luma_pipeline``.
    The held networks (or ``modules()``) run float32, in eval mode, channels_last, on the device."""

    upsampling: ClassVar[str] = "pre"  # "pre" (bicubic-upscaled input) or "progressive" (LR input)
    _ready: bool = False  # networks prepared for inference (done by .to(), or on the first super_resolve)

    def to(self, device) -> "LumaUpscaler":
        self._device = torch.device(device)
        for m in self.modules():
            self._prepare(m)
        self._ready = True
        return self

    def luma(self, y_lr: torch.Tensor, y_bicubic: torch.Tensor, scale: Fraction) -> torch.Tensor:
        raise NotImplementedError

    def _init_single(self, checkpoint, allow_untrained: bool, config: dict) -> list:
        paths = self._setup(checkpoint, allow_untrained, config)
        if len(paths) > 1:
            raise UserError(f"model {self.model_name!r} is one network for every scale; give one checkpoint")
        return paths

    def _read_state_dict(self, path):
        if is_matconvnet_file(path):
            raise UserError(f"{str(path)!r} is a MATLAB .mat file; the MatConvNet importer covers the LapSRN/MS-LapSRN "
                            f"releases only: convert it to a PyTorch state_dict of {self.model_name!r} "
                            f"(`srbench models {self.model_name}` names its keys)")
        obj, sha = read_checkpoint(path, self.model_name)
        sd, _ = unwrap_state_dict(obj, path, self.model_name)
        return sd, sha

    def _check(self, x: torch.Tensor, channels: int = 3) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(f"{self.name} expects a (B, {channels}, h, w) batch, got {tuple(x.shape)}")
        return x.to(self._device, torch.float64)

    def _prepare(self, m: nn.Module) -> nn.Module:
        # channels_last: the same numbers (float32 rounding aside), 1.4-1.8x faster convolutions on CPU (oneDNN).
        # The conversion copies the weights: outside inference mode, so they never become inference tensors.
        with torch.inference_mode(False):
            return m.float().eval().to(self._device, memory_format=torch.channels_last)

    def _net_input(self, y: torch.Tensor) -> torch.Tensor:
        return y.to(self._device, torch.float32).contiguous(memory_format=torch.channels_last)

    def _luma_fn(self, s: Fraction):
        if not self._ready:
            self.to(self._device)
        return lambda y_lr, y_up: self.luma(self._net_input(y_lr), self._net_input(y_up), s)

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s = Fraction(scale)
        x = self._check(lr)
        with torch.inference_mode():
            return luma_pipeline(x, s, size, self._luma_fn(s), f"{self.name} x{s}")

    def super_resolve_plane(self, plane: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        """One grey plane (B, 1, h, w) in [0, 1] straight through the network, as ``SR_LapSRN.m`` treats a
        single-channel image (no rgb2ycbcr: the network sees the grey values themselves, not Y = 16/255 + 219/255 g).
        Returns (B, 1, size) float64, unclipped. The runner hands every model RGB (grey replicated), so only protocols
        that pass grey images on (e.g. the authors' evaluation) use it."""
        s = Fraction(scale)
        x = self._check(plane, channels=1)
        with torch.inference_mode():
            return crop_to(_full_size_luma(self._luma_fn(s), x, imresize(x, scale=s), s), size, f"{self.name} x{s}")


class PreUpsamplingUpscaler(LumaUpscaler):
    """One network for every scale, run on the MATLAB-bicubic-upscaled Y (SRCNN, VDSR): native in the card's range;
    larger scales run the same way, named by the card's ``beyond``. Checkpoints are our own state_dicts (one file)."""

    tiles_networks: ClassVar[bool] = True  # luma() runs the network through tiling.run_network

    def luma(self, y_lr: torch.Tensor, y_bicubic: torch.Tensor, scale: Fraction) -> torch.Tensor:
        return run_network(self.net, self._net_input(y_bicubic), 1)

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        """The network on the MATLAB-bicubic Y, cropped to the HR size (as ``luma_pipeline``)."""
        net = self.net

        def predict(lr, hr, s, gen):
            y = net(training_net_input(imresize(training_y(lr), scale=s)))
            return y[..., : hr.shape[-2], : hr.shape[-1]], training_y(hr).float()
        return TrainingForward(net, predict, "y")
