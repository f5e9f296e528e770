"""A model card (TOML, fields in docs/model-cards.md) read by ``read_card`` as the plain dict the listing and the
tables use, and checked field by field by ``ModelCard.from_dict``, the typed view code and tests compare against.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from sr_bench.errors import UserError

SHA256 = re.compile(r"[0-9a-f]{64}")
UNRELEASED = "unreleased"  # a loaded file whose sha256 no card release has
COLORS = ("rgb", "y")
WEIGHTS_FILES = ("one", "per-scale")  # weights_files: one file for every scale, or one file per scale
UPSAMPLING = ("post", "pre", "progressive", "arbitrary", "interpolation")

# [train]: the paper's training recipe (``srbench train NAME --recipe paper``; sr_bench/train/recipe.py).
TRAIN_STATUS = ("paper", "partial", "not-recovered")  # how much of it the paper and its code state
TRAIN_LOSSES = ("l1", "mse", "charbonnier", "multilevel-charbonnier")
TRAIN_OPTIMIZERS = ("adam", "sgd")
TRAIN_CLIP_KINDS = ("norm", "adjustable")
# value fields and their kinds; "patch" may also be a table {scale = LR side} for one-network-per-scale models
TRAIN_VALUES = {
    "data": "names", "scales": "text", "patch": "patch", "batch": "count", "steps": "count", "loss": "text",
    "charbonnier_eps": "positive", "optimizer": "text", "betas": "betas", "eps": "positive", "momentum": "fraction",
    "weight_decay": "nonnegative", "lr": "positive", "lr_decay_every": "nonnegative_int", "lr_gamma": "gamma",
    "lr_min": "nonnegative", "clip_grad": "nonnegative", "clip_grad_kind": "text",
}


@dataclass(frozen=True)
class Release:
    """One ``[[weights]]`` entry: a published weights file."""

    file: str
    sha256: str  # "" when not known (a release nobody here could download)
    scales: tuple[int, ...] | None  # the scales the file serves; None: any scale
    url: str = ""
    format: str = ""
    variant: str | None = None


@dataclass(frozen=True)
class ModelCard:
    name: str
    aliases: tuple[str, ...]
    display_name: str
    entry: str | None  # built-ins: "module:attr"; plugin cards may leave it out
    learned: bool
    integers: tuple[int, ...]  # [scales] integers: the scales the model has trained networks for
    also_builds: tuple[int, ...]  # [scales] also_builds: further scales the architecture builds, with no release
    range: tuple[Fraction, Fraction] | None  # [scales] range: (low, high] handled natively
    strategy: str | None  # [scales] strategy: how other integer-model scales are reached
    beyond: str | None  # [scales] beyond: how a range model reaches scales above ``high``
    params: dict[str, int]
    releases: tuple[Release, ...]
    published: tuple[dict, ...]
    train: dict | None = None  # the checked [train] block
    replaces: tuple[str, ...] = ()  # plugin cards: the built-in names the plugin replaces on purpose
    weights_files: str | None = None  # "one" (one file serves every scale) or "per-scale"; None: from the releases
    where: str = field(default="?", compare=False)

    @staticmethod
    def from_dict(card: dict, where: str = "?") -> "ModelCard":
        """Check a card's types and values; a UserError names the file (``where``) and the field."""
        def bad(fieldname: str, why: str) -> UserError:
            return UserError(f"model card {where}: {fieldname} {why}")

        name = card.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad("name", "must be a non-empty string")
        aliases = card.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise bad("aliases", "must be a list of names")
        entry = card.get("entry")
        if entry is not None and (not isinstance(entry, str) or ":" not in entry):
            raise bad("entry", "must be 'module:attr'")
        learned = card.get("learned", True)
        if not isinstance(learned, bool):
            raise bad("learned", "must be true or false")
        replaces = card.get("replaces", [])
        replaces = [replaces] if isinstance(replaces, str) else replaces
        if not isinstance(replaces, list) or not all(isinstance(r, str) and r for r in replaces):
            raise bad("replaces", "must be the name of the built-in model the plugin replaces (or a list of names)")
        files = card.get("weights_files")
        if files is not None and files not in WEIGHTS_FILES:
            raise bad("weights_files", f"must be one of {', '.join(WEIGHTS_FILES)}")
        for key in ("display_name", "summary", "weights_note"):
            if key in card and not isinstance(card[key], str):
                raise bad(key, "must be a string")
        paper = card.get("paper", {})
        if not isinstance(paper, dict) or not all(isinstance(v, str) for v in paper.values()):
            raise bad("[paper]", "must be a table of strings (title, venue, arxiv, code, bibtex)")
        inp = card.get("input", {})
        for key, default, choices in (("color", "rgb", COLORS), ("upsampling", "post", UPSAMPLING)):
            if inp.get(key, default) not in choices:
                raise bad(f"[input] {key}", f"must be one of {', '.join(choices)}")

        scales = card.get("scales")
        if not isinstance(scales, dict) or not ({"integers", "range"} & set(scales)):
            raise bad("[scales]", "must give integers = [2, 3, 4] or range = [\"1\", \"4\"]")
        integers = _ints(scales.get("integers", []), lambda why: bad("[scales] integers", why))
        also = _ints(scales.get("also_builds", []), lambda why: bad("[scales] also_builds", why))
        if set(also) & set(integers):
            raise bad("[scales] also_builds", "repeats scales of integers")
        rng = None
        if "range" in scales:
            r = scales["range"]
            try:
                low, high = (Fraction(str(v)) for v in r)
            except (TypeError, ValueError, ZeroDivisionError):
                raise bad("[scales] range", "must be [low, high], e.g. [\"1\", \"4\"]") from None
            if not 1 <= low < high <= 64:
                raise bad("[scales] range", "needs 1 <= low < high <= 64")
            rng = (low, high)
        for key in ("strategy", "beyond"):
            if key in scales and not isinstance(scales[key], str):
                raise bad(f"[scales] {key}", "must be a strategy name")

        params = card.get("params", {})
        if not isinstance(params, dict) or not all(_whole(v, 0) for v in params.values()):
            raise bad("[params]", "must map keys (x2, all, ...) to whole numbers")

        weights = card.get("weights", [])
        if not isinstance(weights, list):
            raise bad("weights", "must be a list of [[weights]] tables")
        releases = []
        for i, w in enumerate(weights):
            what = f"[[weights]] #{i + 1}"
            if not isinstance(w, dict) or not isinstance(w.get("file"), str) or not w["file"]:
                raise bad(what, "needs file = \"NAME\"")
            sha = w.get("sha256", "")
            if not isinstance(sha, str) or (sha and not SHA256.fullmatch(sha)):
                raise bad(f"{what} sha256", "must be 64 lower-case hex digits (or empty when unknown)")
            releases.append(Release(file=w["file"], sha256=sha, scales=_release_scales(w.get("scale"), what, bad),
                                    url=str(w.get("url", "")), format=str(w.get("format", "")),
                                    variant=w.get("variant")))
        published = card.get("published", [])
        if not isinstance(published, list):
            raise bad("published", "must be a list of [[published]] tables")
        for i, b in enumerate(published):
            what = f"[[published]] #{i + 1}"
            if (not isinstance(b, dict) or not isinstance(b.get("source"), str)
                    or not isinstance(b.get("protocol"), str)):
                raise bad(what, "needs source and protocol strings")
            for flag in ("verified", "secondary", "self_ensemble"):
                if flag in b and not isinstance(b[flag], bool):
                    raise bad(f"{what} {flag}", "must be true or false")
            rows = b.get("rows")
            if not isinstance(rows, list) or not rows:
                raise bad(f"{what} rows", "must be [[dataset, scale, psnr, ssim?], ...]")
            for row in rows:
                if (not isinstance(row, list) or not 3 <= len(row) <= 4 or not isinstance(row[0], str)
                        or not all(_published_number(v) for v in row[2:])):
                    raise bad(f"{what} rows", f"has a bad row {row!r}: write [dataset, scale, psnr, ssim?]")
                try:
                    Fraction(str(row[1]))
                except (ValueError, ZeroDivisionError):
                    raise bad(f"{what} rows", f"has a bad scale {row[1]!r}") from None
        train = card.get("train")
        if train is not None:
            check_train_block(train, lambda key, why: bad(f"[train] {key}" if key else "[train]", why))
        return ModelCard(name=name, aliases=tuple(aliases), display_name=card.get("display_name", name), entry=entry,
                         learned=learned, integers=integers, also_builds=also, range=rng,
                         strategy=scales.get("strategy"), beyond=scales.get("beyond"), params=dict(params),
                         releases=tuple(releases), published=tuple(published), train=train,
                         replaces=tuple(replaces), weights_files=files, where=where)

    @property
    def per_scale_files(self) -> bool:
        """Whether ``--models NAME=...`` takes one file per scale (joined by os.pathsep) rather than one file for
        every scale: ``weights_files`` when the card says it, else what its releases show (each serving one scale of
        an integer-scale model), else whether the model has integer scales."""
        if self.weights_files is not None:
            return self.weights_files == "per-scale"
        served = [r.scales for r in self.releases]
        if served:
            return bool(self.integers) and all(s is not None and len(s) == 1 for s in served)
        return bool(self.integers) and self.range is None

    def release_for(self, sha256: str) -> Release | None:
        """The release whose sha256 is ``sha256``, or None."""
        return next((r for r in self.releases if r.sha256 and r.sha256 == sha256), None)


def check_train_block(train, bad) -> None:
    """A card's ``[train]`` block (its fields: docs/model-cards.md); ``bad(key, why)`` makes the error."""
    if not isinstance(train, dict):
        raise bad("", "must be a table")
    extra = set(train) - set(TRAIN_VALUES) - {"source", "status", "choices", "notes"}
    if extra:
        raise bad(sorted(extra)[0], f"is not a [train] field; fields: source, status, choices, notes, "
                                     f"{', '.join(TRAIN_VALUES)}")
    source = train.get("source")
    # readers have the paper and the code, not our notes: the source names one of them (a repository path has a /)
    if not isinstance(source, str) or not ("paper" in source.lower() or "/" in source):
        raise bad("source", "must name the paper or the code files the recipe comes from")
    if train.get("status") not in TRAIN_STATUS:
        raise bad("status", f"must be one of {', '.join(TRAIN_STATUS)}")
    for key in ("choices", "notes"):
        value = train.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad(key, "must be a list of strings")
    unknown_choices = set(train.get("choices", [])) - set(TRAIN_VALUES)
    if unknown_choices:
        raise bad("choices", f"names {sorted(unknown_choices)[0]!r}, not a value field")
    given = [k for k in TRAIN_VALUES if k in train]
    if train["status"] == "not-recovered" and set(given) - set(train.get("choices", [])):
        raise bad("choices", "must list every value field when the recipe is not recovered (they are all choices)")
    if train["status"] != "paper" and not train.get("notes"):
        raise bad("notes", "must say what the paper leaves open when the status is not 'paper'")
    for key in given:
        check, want = _TRAIN_KINDS[TRAIN_VALUES[key]]
        if not check(train[key]):
            raise bad(key, f"must be {want}, not {train[key]!r}")
    for key, allowed in (("loss", TRAIN_LOSSES), ("optimizer", TRAIN_OPTIMIZERS), ("clip_grad_kind", TRAIN_CLIP_KINDS)):
        if key in train and train[key] not in allowed:
            raise bad(key, f"must be one of {', '.join(allowed)}")


def _whole(v, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


_TRAIN_KINDS = {  # a TRAIN_VALUES kind -> (the check, what a value must be)
    "names": (lambda v: isinstance(v, list) and v and all(isinstance(x, str) and x for x in v),
              "a list of dataset names"),
    "text": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"),
    "count": (lambda v: _whole(v, 1), "a whole number >= 1"),
    "nonnegative_int": (lambda v: _whole(v, 0), "a whole number >= 0"),
    "positive": (lambda v: _number(v) and v > 0, "a number > 0"),
    "nonnegative": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "fraction": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "gamma": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "betas": (lambda v: isinstance(v, list) and len(v) == 2 and all(_number(x) and 0 <= x < 1 for x in v),
              "[beta1, beta2], each in [0, 1)"),
    "patch": (lambda v: _whole(v, 2) or (isinstance(v, dict) and v and all(_whole(x, 2) for x in v.values())),
              "an LR patch side >= 2, or a table {\"2\" = 48, \"3\" = 32} per scale"),
}


def _ints(value, bad) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_whole(v, 1) for v in value):
        raise bad("must be a list of whole numbers >= 1")
    if len(set(value)) != len(value):
        raise bad("repeats a scale")
    return tuple(value)


def _release_scales(value, what: str, bad) -> tuple[int, ...] | None:
    if value is None or value == "any":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, str) and re.fullmatch(r"\d+(,\d+)*", value.replace(" ", "")):
        return tuple(int(v) for v in value.replace(" ", "").split(","))
    raise bad(f"{what} scale", "must be a scale (2), a list of scales (\"2,4,8\") or \"any\"")


def release_name(card: dict | None, sha256: str) -> str:
    """What a row says about its weights: the release file names (``LapSRN_x2.mat``; several files joined by ``+``
    as ``checkpoint_sha256`` joins their hashes), ``unreleased`` for a file no release of the card has, ``""``
    without weights."""
    if not sha256:
        return ""
    model = ModelCard.from_dict(card) if card else None
    hits = [model.release_for(part) if model else None for part in sha256.split("+")]
    return "+".join(hit.file if hit else UNRELEASED for hit in hits) if any(hits) else UNRELEASED


def _published_number(v) -> bool:
    """A published value: a number, or a string holding one as the paper prints it ("38.00")."""
    if isinstance(v, str):
        return re.fullmatch(r"-?\d+(\.\d+)?", v.strip()) is not None
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_card(path, whose: str = "") -> dict:
    """The card file at ``path`` as a dict, each ``[[published]]`` block also holding its values as the card writes
    them in ``printed`` (one list of strings per row, None where not a float): TOML floats keep no trailing zeros, and
    a published 38.00 or 0.9270 must print as such (report/reported.py). ``whose`` goes after the path in the error."""
    try:
        text = Path(path).read_text()
        card, exact = tomllib.loads(text), tomllib.loads(text, parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"model card {path}{whose} is not valid TOML ({e}); fix or remove it") from None
    for block, raw in zip(card.get("published", []) or [], exact.get("published", []) or [], strict=True):
        if isinstance(block, dict) and isinstance(raw, dict) and isinstance(raw.get("rows"), list):
            block["printed"] = [[str(v) if isinstance(v, Decimal) else None for v in row] if isinstance(row, list)
                                else [] for row in raw["rows"]]
    return card
