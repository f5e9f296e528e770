"""What ``srbench train`` trains for a model: the module the optimizer updates and saves, the differentiable forward,
the scales a run draws, and what ``srbench run`` needs to load the saved file.

The forward is the adapter's (``Upscaler.training_forward``, next to the ``super_resolve`` it mirrors, with the same
value range, bicubic inputs and crop) without the final clamp to [0, 1], which would zero the gradient of every pixel
a fresh network puts out of range. The module's own ``state_dict()`` is what gets saved, so its keys are the ones the
adapter's strict loader builds: a trained file loads with ``--models NAME=PATH`` like an official release.
"""

from __future__ import annotations

import inspect
import math
import os
import shlex
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import torch

from sr_bench.errors import UserError
from sr_bench.models.building import takes_option
from sr_bench.models.interface import Upscaler
from sr_bench.models.options import option_text
from sr_bench.models.registry import call_model_code, resolve
from sr_bench.scales import parse_scale, parse_scales, scale_text

# Training scales stay exact fractions, as everywhere in sr_bench: floor(patch * s) and ceil(hr / s) are
# computed on them, so 1.4 never turns into 1.3999999 and moves a patch by a pixel.
# A continuous range LOW:HIGH is drawn on this grid: fine enough that neighbouring scales give HR patches one pixel
# apart at the default patch of 48, coarse enough that the MATLAB resize weights (cached per scale) are reused.
GRID = Fraction(1, 100)
# Default top of a continuous range: the x1..x4 range Meta-SR and LIIF train on.
DEFAULT_HIGH = Fraction(4)


def grid_range(low: Fraction, high: Fraction) -> list[Fraction]:
    """Every multiple of ``GRID`` in [low, high] that is > 1 (scale 1 would be no super-resolution)."""
    first, last = math.ceil(low / GRID), math.floor(high / GRID)
    return [k * GRID for k in range(first, last + 1) if k * GRID > 1]


def _bound(text: str, part: str) -> Fraction:
    # LOW may be exactly 1, meaning "just above 1" (1:4 reads as LIIF's range); parse_scale refuses 1 on its own.
    if text.strip() in ("1", "1.0"):
        return Fraction(1)
    if not text.strip():
        raise UserError(f"bad scale range {part!r}: write LOW:HIGH, e.g. 1:4, or a list such as 2,3,4")
    return parse_scale(text)


def parse_train_scales(text: str) -> list[Fraction]:
    """``2`` / ``2,3,4`` / ``1.1:4:0.1`` as in ``srbench run``, plus ``LOW:HIGH`` for a continuous range drawn on the
    0.01 grid. Sorted, without duplicates."""
    if not text or not text.strip():
        raise UserError("empty --scales: give e.g. --scale 2, or a range such as --scales 1:4")
    out: set[Fraction] = set()
    for part in (p.strip() for p in text.split(",")):
        if part.count(":") == 1:
            lo, hi = part.split(":")
            low, high = _bound(lo, part), _bound(hi, part)
            if high <= 1 or high < low:
                raise UserError(f"bad scale range {part!r}: HIGH must be > 1 and >= LOW, e.g. 1:4")
            values = grid_range(low, high)
            if not values:
                raise UserError(f"scale range {part!r} holds no scale on the {scale_text(GRID)} grid above 1")
            out.update(values)
        else:
            out.update(parse_scales(part))
    return sorted(out)


def describe_scales(scales: list[Fraction]) -> str:
    """``2``, ``2,4`` or ``1.01:4 (300 scales)``: short enough for a progress line or an error."""
    if len(scales) <= 4:
        return ",".join(scale_text(s) for s in scales)
    return f"{scale_text(scales[0])}:{scale_text(scales[-1])} ({len(scales)} scales)"


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
    predict: Callable  # TrainingForward.predict
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


def per_scale_training(factory) -> tuple[int, ...]:
    """The scales of a one-network-per-scale model (it builds the network of one), else ()."""
    return getattr(factory, "per_scale_training", ()) if inspect.isclass(factory) else ()


def _create(name: str, factory, opts: dict, **fixed) -> Upscaler:
    for key, why in _RESERVED.items():
        if key in opts:
            raise UserError(f"--model-opt {key}: {why}")
    for key in opts:
        if not takes_option(factory, key):
            known = [p for p in inspect.signature(factory).parameters if p not in _RESERVED]
            raise UserError(f"model {name!r} takes no option {key!r}; its options: {', '.join(known) or 'none'}")
    kwargs = {**opts, **fixed}
    if takes_option(factory, "allow_untrained"):
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
    per_scale = per_scale_training(factory)
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
        low, high = model.scales.low, model.scales.high
        beyond_strategy = model.strategy_for(high + 1) if high < 64 else "native"
        beyond = " (larger scales run recursively at test time)" if beyond_strategy == "recursive-x2" else ""
        scales = scales or grid_range(low, min(high, DEFAULT_HIGH))  # the trained range, capped at x4
        outside = [s for s in scales if not low < s <= high]
        if outside:
            raise UserError(f"model {name!r} trains scales in ({scale_text(low)}, {scale_text(high)}], not "
                            f"x{scale_text(outside[0])}{beyond}; e.g. --scales {scale_text(low)}:"
                            f"{scale_text(min(high, DEFAULT_HIGH))}")
    return Trainable(name, model, fwd.module, scales, fwd.predict, fwd.target, {**opts, **fwd.reload_opts},
                     predict_levels=fwd.predict_levels)
