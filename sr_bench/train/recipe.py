"""What a training run does, field by field: a flag given on the command line, else the model card's ``[train]``
block (``--recipe paper``), else ``DEFAULTS``; the resolved values and where each came from go to ``PATH.json``
(``record``). docs/training.md, "Recipes".
"""

from __future__ import annotations

from dataclasses import dataclass

from sr_bench.errors import UserError, unknown
from sr_bench.models.cards import card_for
from sr_bench.models.modelcard import TRAIN_VALUES, ModelCard
from sr_bench.models.registry import resolve
from sr_bench.scales import parse_scale, scale_text
from sr_bench.train.families import per_scale_training

RECIPES = ("paper",)
# sr_bench's own recipe: EDSR-PyTorch's defaults (LR patch 48, batch 16, L1, Adam 0.9/0.999/1e-8, lr 1e-4) with a
# constant rate and a short run
DEFAULTS = {
    "data": None, "scales": None, "patch": 48, "batch": 16, "steps": 1000, "loss": "l1", "charbonnier_eps": 1e-3,
    "optimizer": "adam", "betas": (0.9, 0.999), "eps": 1e-8, "momentum": 0.9, "weight_decay": 0.0, "lr": 1e-4,
    "lr_decay_every": 0, "lr_gamma": 0.5, "lr_min": 0.0, "clip_grad": 0.0, "clip_grad_kind": "norm",
}
# field -> the flag that sets it
FLAGS = {**{k: "--" + k.replace("_", "-") for k in DEFAULTS}, "eps": "--adam-eps"}
assert set(FLAGS) == set(DEFAULTS) == set(TRAIN_VALUES)


@dataclass(frozen=True)
class Recipe:
    """The resolved values of one run (plain values; ``scales`` is the --scales text or None for the model's
    default, ``data`` a list of dataset names/folders)."""

    data: tuple[str, ...] | None
    scales: str | None
    patch: int
    batch: int
    steps: int
    loss: str
    charbonnier_eps: float
    optimizer: str
    betas: tuple[float, float]
    eps: float
    momentum: float
    weight_decay: float
    lr: float
    lr_decay_every: int
    lr_gamma: float
    lr_min: float
    clip_grad: float
    clip_grad_kind: str
    name: str = "defaults"  # "defaults" or "paper"
    origin: tuple[tuple[str, str], ...] = ()  # field -> "flag" | "card" | "default"
    card: tuple[tuple[str, object], ...] = ()  # the card's source, status, choices, notes (recipe paper)

    def values(self) -> dict:
        return {k: getattr(self, k) for k in DEFAULTS}

    def record(self) -> dict:
        """What PATH.json says about the recipe."""
        origin = dict(self.origin)
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in self.values().items()}
        return {"name": self.name, **dict(self.card), "values": values,
                "from_flags": sorted(k for k, o in origin.items() if o == "flag"),
                "from_card": sorted(k for k, o in origin.items() if o == "card")}


def _patch_for(model: str, table: dict, scales: str | None) -> int:
    listed = ", ".join(f"x{k}" for k in table)
    if scales is None:
        raise UserError(f"the paper recipe of {model!r} has one LR patch per scale ({listed}); give --scale")
    try:
        s = parse_scale(scales)
    except UserError:
        raise UserError(f"the paper recipe of {model!r} has one LR patch per scale ({listed}); with --scales "
                        f"{scales} give --patch") from None
    for key, side in table.items():
        if parse_scale(key) == s:
            return int(side)
    raise UserError(f"the paper recipe of {model!r} gives LR patches for {listed}, not x{scale_text(s)}; "
                    f"give --patch")


def resolve_recipe(model: str, recipe: str | None, given: dict) -> Recipe:
    """The run's values: ``given`` (the flags set, field -> value; None entries are not set) over the card's
    ``[train]`` values (``recipe="paper"``) over ``DEFAULTS``."""
    given = {k: v for k, v in given.items() if v is not None}  # a field Recipe lacks is its TypeError below
    values, origin, card = dict(DEFAULTS), dict.fromkeys(DEFAULTS, "default"), {}
    if recipe is not None:
        if recipe not in RECIPES:
            raise unknown("recipe", recipe, RECIPES)
        found = card_for(model)
        if not found or "train" not in found:
            raise UserError(f"model {model!r} has no [train] block in its card, so --recipe paper has nothing to "
                            f"use; give the training options as flags (see `srbench train --help`)")
        block = ModelCard.from_dict(found, f"registry/{found['name']}.toml").train  # checked
        card = {k: block[k] for k in ("source", "status", "choices", "notes") if k in block}
        for key in DEFAULTS:
            if key in block:
                values[key], origin[key] = block[key], "card"
        if origin["scales"] == "card" and per_scale_training(resolve(model)):
            # one network per scale: the card lists the paper's scales, a run trains the one --scale names
            values["scales"], origin["scales"] = None, "default"
    for key, v in given.items():
        values[key], origin[key] = v, "flag"
    if isinstance(values["patch"], dict):
        values["patch"] = _patch_for(model, values["patch"], values["scales"])
    values["betas"] = tuple(float(b) for b in values["betas"])
    values["data"] = tuple(values["data"]) if values["data"] else None
    for key in ("lr", "eps", "momentum", "weight_decay", "lr_gamma", "lr_min", "clip_grad", "charbonnier_eps"):
        values[key] = float(values[key])
    return Recipe(**values, name=recipe or "defaults", origin=tuple(sorted(origin.items())),
                  card=tuple(card.items()))
