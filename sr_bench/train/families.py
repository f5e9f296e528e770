"""How each built-in network family trains: which module the optimizer updates and saves, a differentiable forward
that mirrors the adapter's ``super_resolve``, and what ``srbench run`` needs to load the saved file.

The adapters run their networks under ``torch.inference_mode()`` (no autograd), so training calls the network
modules they hold, with the adapter's own pre- and post-processing: the value range (0..255 for the EDSR-PyTorch
style nets, [-1, 1] for LIIF, Y in 0..1 units for the MATLAB-style luma nets), the same MATLAB bicubic inputs
(VDSR/SRCNN, ASDN's LFR levels), the same crop or resize to the requested size. What is left out on purpose is the
final clamp to [0, 1]: it would zero the gradient of every pixel a fresh network puts out of range.

The module's own ``state_dict()`` is what gets saved, so its keys are exactly the ones the adapter's strict loader
builds: a trained file loads with ``--models NAME=PATH`` like an official release.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.imaging.color import rgb2ycbcr_matlab_double
from sr_bench.imaging.resize import imresize
from sr_bench.models.interface import Upscaler
from sr_bench.models.registry import resolve
from sr_bench.scales import scale_text
from sr_bench.train.scales import DEFAULT_HIGH, default_range, parse_train_scales

# (lr, hr, scale, generator) -> (prediction, target), both float32 and in the same units; the loss is their L1.
Predict = Callable[[torch.Tensor, torch.Tensor, Fraction, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

# Options that a training run sets itself, or that only matter at test time.
_RESERVED = {
    "checkpoint": "training starts from the untrained network; it takes no checkpoint",
    "allow_untrained": "training always starts from the untrained network",
    "scale": "give the scale with --scale",
    "strategy": "the decimal-scale strategy is a test-time choice: pass it to `srbench run --model-opt strategy=...`",
}


@dataclass
class Trainable:
    name: str
    model: Upscaler
    module: nn.Module  # what the optimizer updates and the checkpoint holds
    scales: list[Fraction]  # one is drawn per batch
    predict: Predict
    target: str  # "rgb" or "y": what the loss compares
    reload_opts: dict = field(default_factory=dict)  # --model-opt values `srbench run` needs for the file
    per_scale: bool = False  # one network per scale: the file is that scale's network

    @property
    def variant(self) -> str | None:
        v = getattr(self.model, "variant", None)
        return str(v) if v is not None else self.model.config.get("variant")

    def run_command(self, path: str) -> str:
        opts = "".join(f" --model-opt {k}={v}" for k, v in sorted(self.reload_opts.items()))
        scales = f" --scales {scale_text(self.scales[0])}" if self.per_scale else ""
        return f"srbench run --models {self.name}={path}{opts}{scales}"


def _y(rgb01: torch.Tensor) -> torch.Tensor:
    """Y in 0..1 units of MATLAB's double rgb2ycbcr, the luma nets' input and target (as ``luma.luma_pipeline``)."""
    return rgb2ycbcr_matlab_double(rgb01.to(torch.float64))[:, :1]


def _luma_net_input(y: torch.Tensor) -> torch.Tensor:
    # MATLAB's single precision, in the channels_last layout LumaUpscaler gives the luma nets' weights
    return y.to(torch.float32).contiguous(memory_format=torch.channels_last)


def _create(name: str, factory, opts: dict, **fixed) -> Upscaler:
    for key, why in _RESERVED.items():
        if key in opts:
            raise UserError(f"--model-opt {key}: {why}")
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in opts:
        if key not in params and not takes_any:
            known = [p for p in params if p not in _RESERVED]
            raise UserError(f"model {name!r} takes no option {key!r}; its options: {', '.join(known) or 'none'}")
    kwargs = {**opts, **fixed}
    if "allow_untrained" in params or takes_any:
        kwargs["allow_untrained"] = True
    return factory(**kwargs)


def _one_integer_scale(name: str, scales: list[Fraction] | None, allowed: list[int]) -> int:
    listed = "x" + ", x".join(map(str, allowed))
    if scales is None:
        raise UserError(f"model {name!r} has one network per scale: add --scale {allowed[0]} (it trains {listed})")
    if len(scales) != 1:
        raise UserError(f"model {name!r} has one network per scale: train one scale per run (--scale "
                        f"{allowed[0]}), then run them together with --models {name}=x2.pt{os.pathsep}x3.pt")
    s = scales[0]
    if s.denominator != 1 or int(s) not in allowed:
        raise UserError(f"model {name!r} trains {listed} (one network each), not x{scale_text(s)}; decimal scales "
                        f"run through its strategy at test time")
    return int(s)


def _within(name: str, scales: list[Fraction], low: Fraction, high: Fraction, beyond: str) -> None:
    outside = [s for s in scales if not low < s <= high]
    if outside:
        raise UserError(f"model {name!r} trains scales in ({scale_text(low)}, {scale_text(high)}], not "
                        f"x{scale_text(outside[0])}{beyond}; e.g. --scales {scale_text(low)}:"
                        f"{scale_text(min(high, DEFAULT_HIGH))}")


def build(name: str, scales_text: str | None, opts: dict, device: torch.device) -> Trainable:
    """The untrained model ``name`` (the same deterministic init as ``--allow-untrained``) on ``device``, ready to
    train at ``scales_text`` (None: the model's default), or a one-line UserError saying why it cannot train."""
    if "=" in name:
        raise UserError(f"give the model name only ({name.split('=')[0]!r}); training starts from random weights "
                        f"(to continue an interrupted run, repeat its command with --resume)")
    if name.endswith("+") and len(name) > 1:
        raise UserError(f"{name!r} is {name[:-1]!r} with a test-time x8 self-ensemble; train {name[:-1]!r} and "
                        f"run --models {name}=PATH")
    if name.startswith("basicsr:"):
        raise UserError(f"{name!r} comes from BasicSR: train it with BasicSR, then run --models {name}=net_g.pth")
    factory = resolve(name)
    scales = parse_train_scales(scales_text) if scales_text is not None else None

    from sr_bench.models.archs.asdn import ASDNUpscaler
    from sr_bench.models.archs.blocks import IntegerScaleUpscaler
    from sr_bench.models.archs.lapsrn import LapSRNUpscaler
    from sr_bench.models.archs.liif import LIIFUpscaler
    from sr_bench.models.archs.metasr import MetaSRUpscaler
    from sr_bench.models.archs.mslapsrn import MSLapSRNUpscaler
    from sr_bench.models.luma import PreUpsamplingUpscaler

    # one network per scale: the scale must be known before the model is built, as it builds only that network
    if inspect.isclass(factory) and issubclass(factory, (IntegerScaleUpscaler, LapSRNUpscaler)):
        family = factory.release_scales if issubclass(factory, IntegerScaleUpscaler) else factory.family_scales
        k = _one_integer_scale(name, scales, [k for k in family if k > 1])
        model = _create(name, factory, opts, scale=k).to(device)
        predict = _luma_lr_input(model.net(k)) if isinstance(model, LapSRNUpscaler) else _rgb255(model.net(k))
        return Trainable(name, model, model.net(k), [Fraction(k)], predict,
                         "y" if isinstance(model, LapSRNUpscaler) else "rgb", dict(opts), per_scale=True)

    model = _create(name, factory, opts).to(device)
    if not model.learned:
        raise UserError(f"model {name!r} is not learned (no weights to train); pick a learned model from "
                        f"`srbench models`, e.g. edsr-baseline")
    if isinstance(model, MSLapSRNUpscaler):
        held = sorted(int(s) for s in model.scales.integers)
        scales = scales or [Fraction(s) for s in held if s <= DEFAULT_HIGH]
        bad = [s for s in scales if s.denominator != 1 or int(s) not in held]
        if bad:
            raise UserError(f"model {name!r} trains x{', x'.join(map(str, held))} (its pyramid levels), not "
                            f"x{scale_text(bad[0])}")
        # a state_dict does not record the recursion count R; the loader takes it from this option
        return Trainable(name, model, model.net, scales, _luma_lr_input(model.net), "y",
                         {**opts, "recursions": model.net.recursions})

    makers = ((LIIFUpscaler, _liif), (MetaSRUpscaler, _metasr), (ASDNUpscaler, _asdn),
              (PreUpsamplingUpscaler, _luma_bicubic_input))
    maker = next((make for cls, make in makers if isinstance(model, cls)), None)
    if maker is None or model.scales.low is None:
        raise UserError(f"model {name!r} ({type(model).__name__}) is not a network family `srbench train` knows "
                        f"(EDSR/RDN/RCAN/DBDN/CSFM/FSDN, LIIF, Meta-SR, ASDN, SRCNN/VDSR, LapSRN/MS-LapSRN); "
                        f"train it with its own code and run --models {name}=PATH")
    beyond = " (larger scales run recursively at test time)" if isinstance(model, ASDNUpscaler) else ""
    scales = scales or default_range(model.scales)
    _within(name, scales, model.scales.low, model.scales.high, beyond)
    return Trainable(name, model, model.net, scales, maker(model, model.net),
                     "y" if maker is _luma_bicubic_input else "rgb", dict(opts))


# --------------------------------------------------------------------------------------------------------------------
# Differentiable forwards, one per family: (lr, hr, scale, generator) -> (prediction, target)
# --------------------------------------------------------------------------------------------------------------------


def _rgb255(net: nn.Module) -> Predict:
    """EDSR-PyTorch style nets (EDSR, RDN, RCAN, DBDN, CSFM, FSDN): RGB in 0..255 in and out."""
    def predict(lr, hr, s, gen):
        return net(lr * 255.0) / 255.0, hr
    return predict


def _luma_lr_input(net: nn.Module) -> Predict:
    """LapSRN / MS-LapSRN: the LR Y in, the Y upscaled by the pyramid out."""
    from sr_bench.models.archs.mslapsrn import MSLapSRN, levels_for

    def predict(lr, hr, s, gen):
        x = _luma_net_input(_y(lr))
        return (net(x, levels=levels_for(s)) if isinstance(net, MSLapSRN) else net(x)), _y(hr).float()
    return predict


def _luma_bicubic_input(model, net: nn.Module) -> Predict:
    """SRCNN / VDSR: the network on the MATLAB-bicubic Y, cropped to the HR size (as ``luma.luma_pipeline``)."""
    def predict(lr, hr, s, gen):
        y = net(_luma_net_input(imresize(_y(lr), scale=s)))
        return y[..., : hr.shape[-2], : hr.shape[-1]], _y(hr).float()
    return predict


def _liif(model, net: nn.Module) -> Predict:
    from sr_bench.models.archs.liif import make_coord

    def predict(lr, hr, s, gen):
        # LIIF's recipe: the loss sees a random subset of the HR pixels (2304 = 48^2 at patch 48), which bounds the
        # MLP's memory at large scales
        b, _, h, w = hr.shape
        q = min(lr.shape[-2] * lr.shape[-1], h * w)
        idx = torch.stack([torch.randperm(h * w, generator=gen)[:q] for _ in range(b)]).to(lr.device)
        coord = make_coord((h, w), device=lr.device)[idx]
        cell = torch.empty_like(coord)
        cell[..., 0], cell[..., 1] = 2 / h, 2 / w
        pred = net.query_rgb(net.gen_feat((lr - 0.5) / 0.5), coord, cell) * 0.5 + 0.5
        target = hr.flatten(2).transpose(1, 2).gather(1, idx[..., None].expand(-1, -1, hr.shape[1]))
        return pred, target
    return predict


def _metasr(model, net: nn.Module) -> Predict:
    def predict(lr, hr, s, gen):
        return net(lr * 255.0, float(s), tuple(hr.shape[-2:])) / 255.0, hr
    return predict


def _asdn(model, net: nn.Module) -> Predict:
    """``ASDNUpscaler.lfr_pass`` with autograd: level i's output, blended with level i-1's between levels, so both
    reconstruction branches learn what the deployed blend asks of them."""
    from sr_bench.models.archs.asdn import lfr_level
    from sr_bench.models.strategies import fit

    def predict(lr, hr, s, gen):
        x = lr.to(torch.float64) * 255.0  # level inputs in float64, as the adapter makes them
        i, w = lfr_level(s, model.levels)
        out = net(model.level_input(x, i).to(torch.float32), i)
        if w != 0:
            prev = net(model.level_input(x, i - 1).to(torch.float32), i - 1)
            out = out + float(w) * (imresize(prev, size=tuple(out.shape[-2:])) - out)
        return fit(out, tuple(hr.shape[-2:]), w == 0, f"{model.name} level {i}") / 255.0, hr
    return predict
