"""Building the models of a request as ``srbench run`` and ``srbench profile`` do: ``--model-opt`` options given to
the models that take them (``NAME.KEY=VALUE``: to NAME only, over an unaddressed ``KEY``), the checkpoint, random
weights for a learned model that has none when asked, the device; and the up-front check that every requested scale
can run. An option no named model takes, or an address naming a model not in ``--models``, is an error before
anything is built.
"""

from __future__ import annotations

import inspect
from fractions import Fraction

from sr_bench.errors import UserError, closest
from sr_bench.models.interface import Upscaler, scale_refusal
from sr_bench.models.registry import call_model_code, create_model, release_of, resolve
from sr_bench.models.strategies import PluginStrategy
from sr_bench.scales import scale_text

STRATEGY = "strategy"


def opted_strategies(factory) -> tuple[str, ...]:
    """The built-in decimal-scale strategies a plugin class opts into (``Upscaler.strategies``), or ()."""
    return tuple(getattr(factory, "strategies", ()) or ()) if inspect.isclass(factory) else ()


def takes_option(factory, key: str) -> bool:
    """Whether a model factory takes option ``key``: a parameter of that name (or ``**kwargs``), or ``strategy``
    for a plugin that opts into the built-in strategies."""
    params = inspect.signature(factory).parameters
    if key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return key == STRATEGY and bool(opted_strategies(factory))


def split_key(key: str) -> tuple[str | None, str]:
    """``"vdsr-tw.levels"`` -> ``("vdsr-tw", "levels")``; ``"levels"`` -> ``(None, "levels")``."""
    model, dot, option = key.rpartition(".")
    return (model, option) if dot else (None, key)


def options_for(name: str, opts: dict) -> dict:
    """The options of ``opts`` addressed to model ``name``: the unaddressed ones, then ``name.KEY`` over them."""
    out = {k: v for k, v in opts.items() if split_key(k)[0] is None}
    out.update({split_key(k)[1]: v for k, v in opts.items() if split_key(k)[0] == name})
    return out


def check_model_opts(names: list[str], opts: dict, checkpoints: dict | None = None) -> None:
    """Every option goes somewhere: an addressed one to a model of ``names`` that takes it, an unaddressed one to at
    least one of them. ``checkpoints``: name -> its ``--models`` checkpoint (``NAME=spandrel:PATH`` resolves by it)."""
    checkpoints = checkpoints or {}
    for key in opts:
        model, option = split_key(key)
        if model is None:
            if not any(takes_option(resolve(n, checkpoints.get(n)), option) for n in names):
                raise UserError(f"no model in --models takes the option {option!r} given with --model-opt")
        elif model not in names:
            near = closest(model, names)
            hint = f"did you mean {near[0]}.{option}?" if near else f"models of this run: {', '.join(names)}"
            raise UserError(f"--model-opt {key}=... is addressed to {model!r}, which is not in --models; {hint}")
        elif not takes_option(resolve(model, checkpoints.get(model)), option):
            raise UserError(f"model {model!r} takes no option {option!r} (--model-opt {key}=...); its options are "
                            f"the parameters of its factory "
                            f"{getattr(resolve(model, checkpoints.get(model)), '__name__', '')}")


def build_model(name: str, checkpoint: str | None = None, opts: dict | None = None, device="cpu",
                allow_untrained: bool = False) -> Upscaler:
    """Model ``name`` built with the options ``opts`` addresses to it (those its factory takes), ``checkpoint``,
    random weights for a learned model without one when ``allow_untrained``, moved to ``device``."""
    factory = resolve(name, checkpoint)
    own = options_for(name, dict(opts or {}))
    kwargs = {k: v for k, v in own.items() if takes_option(factory, k)}
    strategies = opted_strategies(factory)
    strategy = (kwargs.pop(STRATEGY, None) if strategies and STRATEGY not in inspect.signature(factory).parameters
                else None)
    if checkpoint is not None:
        if not takes_option(factory, "checkpoint"):
            raise UserError(f"model {name!r} has no weights to load; drop '={checkpoint}'")
        kwargs["checkpoint"] = checkpoint
    if allow_untrained and takes_option(factory, "allow_untrained"):
        kwargs["allow_untrained"] = True
    model = create_model(name, **kwargs)
    if strategies:
        model = PluginStrategy(model, strategy or strategies[0])
    return call_model_code(name, f"while moving it to {device}", model.to, device)


def check_scales(models: list[tuple[str, Upscaler]], scales: list[Fraction]) -> None:
    """Every (model, checkpoint, scale) of the request can run, or the model's one-line error, before any image is
    read. What rows record about the pair (strategy, checkpoint, release) is asked too: a model that cannot say fails
    now, not on the first image."""
    for name, model in models:
        for s in scales:
            doing = f"while checking x{scale_text(s)}"
            problem = call_model_code(name, doing, model.scale_problem, s)
            if problem:
                raise scale_refusal(name, s, problem)
            call_model_code(name, doing, model.strategy_for, s)
            release_of(name, call_model_code(name, doing, model.checkpoint_sha256_for, s))
