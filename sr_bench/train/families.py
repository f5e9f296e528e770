"""What ``srbench train`` trains for a model: the module the optimizer updates and saves, the differentiable forward,
the scales a run draws, and what ``srbench run`` needs to load the saved file.

The forward lives with each model's adapter (``Upscaler.training_forward``, next to the ``super_resolve`` it
mirrors): the adapters run their networks under ``torch.inference_mode()`` (no autograd), so training calls the
network modules they hold, with the adapter's own pre- and post-processing: the value range (0..255 for the
EDSR-PyTorch style nets, [-1, 1] for LIIF, Y in 0..1 units for the MATLAB-style luma nets), the same MATLAB bicubic
inputs (VDSR/SRCNN, ASDN's LFR levels), the same crop or resize to the requested size. What is left out on purpose is
the final clamp to [0, 1]: it would zero the gradient of every pixel a fresh network puts out of range.

The module's own ``state_dict()`` is what gets saved, so its keys are exactly the ones the adapter's strict loader
builds: a trained file loads with ``--models NAME=PATH`` like an official release.
"""

from __future__ import annotations

import inspect
import os
import shlex
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import torch

from sr_bench.errors import UserError
from sr_bench.models.interface import Upscaler
from sr_bench.models.options import option_text
from sr_bench.models.registry import call_model_code, resolve
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
    module: torch.nn.Module  # what the optimizer updates and the checkpoint holds
    scales: list[Fraction]  # one is drawn per batch
    predict: Predict
    target: str  # "rgb" or "y": what the loss compares
    reload_opts: dict = field(default_factory=dict)  # --model-opt values `srbench run` needs for the file
    per_scale: bool = False  # one network per scale: the file is that scale's network
    predict_levels: Callable | None = None  # pyramid nets: every level's prediction and target (multi-level loss)

    @property
    def variant(self) -> str | None:
        v = getattr(self.model, "variant", None)
        return str(v) if v is not None else self.model.config.get("variant")

    def run_command(self, path: str) -> str:
        opts = "".join(f" --model-opt {shlex.quote(f'{k}={option_text(v)}')}"
                       for k, v in sorted(self.reload_opts.items()))
        scales = f" --scales {scale_text(self.scales[0])}" if self.per_scale else ""
        return f"srbench run --models {self.name}={path}{opts}{scales}"


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
    return call_model_code(name, "while creating it", factory, **kwargs)


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
    train at ``scales_text`` (None: the model's default), or a one-line UserError saying why it cannot train.

    The forward comes from the model's adapter (``Upscaler.training_forward``); what is decided here is which scales
    a run draws."""
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

    # one network per scale: the scale must be known before the model is built, as it builds only that network
    per_scale = getattr(factory, "per_scale_training", ()) if inspect.isclass(factory) else ()
    if per_scale:
        k = _one_integer_scale(name, scales, list(per_scale))
        model = _create(name, factory, opts, scale=k).to(device)
        fwd = model.training_forward(Fraction(k))
        return Trainable(name, model, fwd.module, [Fraction(k)], fwd.predict, fwd.target,
                         {**opts, **fwd.reload_opts}, per_scale=True, predict_levels=fwd.predict_levels)

    model = _create(name, factory, opts).to(device)
    if not model.learned:
        raise UserError(f"model {name!r} is not learned (no weights to train); pick a learned model from "
                        f"`srbench models`, e.g. edsr-baseline")
    fwd = model.training_forward()
    if fwd is None:
        raise UserError(f"model {name!r} ({type(model).__name__}) is not a network family `srbench train` knows "
                        f"(EDSR/RDN/RCAN/DBDN/CSFM/FSDN, LIIF, Meta-SR, ASDN, SRCNN/VDSR, LapSRN/MS-LapSRN); "
                        f"train it with its own code and run --models {name}=PATH")
    if model.scales.low is None:  # one network at several integer scales (MS-LapSRN's pyramid levels)
        held = sorted(int(s) for s in model.scales.integers)
        scales = scales or [Fraction(s) for s in held if s <= DEFAULT_HIGH]
        bad = [s for s in scales if s.denominator != 1 or int(s) not in held]
        if bad:
            raise UserError(f"model {name!r} trains x{', x'.join(map(str, held))} (its pyramid levels), not "
                            f"x{scale_text(bad[0])}")
    else:
        beyond_strategy = model.strategy_for(model.scales.high + 1) if model.scales.high < 64 else "native"
        beyond = " (larger scales run recursively at test time)" if beyond_strategy == "recursive-x2" else ""
        scales = scales or default_range(model.scales)
        _within(name, scales, model.scales.low, model.scales.high, beyond)
    return Trainable(name, model, fwd.module, scales, fwd.predict, fwd.target, {**opts, **fwd.reload_opts},
                     predict_levels=fwd.predict_levels)
