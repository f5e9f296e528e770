"""One definition per model: every built-in's card (``registry/*.toml``, checked by ``ModelCard``) says what its
adapter does — scales held and buildable, the strategy for other scales, learned or not, parameter counts — and a
loaded checkpoint is named after the card release with its sha256."""

from __future__ import annotations

import re
import tomllib
from fractions import Fraction

import pytest
import torch

from conftest import SHARED, need_shared
from sr_bench.errors import UserError
from sr_bench.hashing import file_sha256
from sr_bench.models import create_model, list_models
from sr_bench.models.archs.blocks import build_module, count_trainable
from sr_bench.models.cards import card_for, model_cards
from sr_bench.models.modelcard import UNRELEASED, ModelCard, release_name
from sr_bench.models.registry import release_of, resolve

BUILTINS = sorted({c["name"] for c in model_cards().values()})
WEIGHTS = SHARED / "weights" / "lapsrn-official"


def _card(name: str) -> ModelCard:
    return ModelCard.from_dict(card_for(name), f"registry/{name}.toml")


def test_every_card_file_is_a_registered_model_whose_adapter_reads_that_card():
    # the card files read here with tomllib, not through the registry: each is valid, every name and alias is a
    # model, and the class its entry names carries the card's name (the key its adapter reads its card by)
    from sr_bench.models.card_files import cards_dir

    names = set(list_models())
    files = sorted(cards_dir().glob("*.toml"))
    assert files
    for path in files:
        raw = tomllib.loads(path.read_text())
        card = ModelCard.from_dict(raw, str(path))
        assert path.stem == card.name and {card.name, *card.aliases} <= names, path
        assert card.range is not None or card.integers, path
        cls = resolve(card.name)
        assert getattr(cls, "model_name", card.name) == card.name, (path, cls)


def _output_scale(model, k: int) -> int:
    """The upscaling factor of the x``k`` network the adapter builds, from a forward on a 6x6 input."""
    # built on the meta device and given uninitialised CPU memory: only the output's shape counts here
    net = build_module(lambda: model.build(k), meta=True).to_empty(device="cpu") if hasattr(model, "build") \
        else model.net(k)
    with torch.no_grad():
        return net(torch.rand(1, 3 if hasattr(model, "build") else 1, 6, 6)).shape[-1] // 6


def _untrained(name: str):
    with torch.random.fork_rng(devices=[]):
        return create_model(name, allow_untrained=True) if _card(name).learned else create_model(name)


def _counted(model, key: str) -> int | None:
    """Trainable parameters of the network a card's ``[params]`` key names, from the adapter itself, or None for a
    key that is not a scale, ``all`` or the built variant (documented variants: the family tests count those)."""
    m = re.fullmatch(r"x(\d+)", key)
    if m and hasattr(model, "build"):  # one network per scale (EDSR-PyTorch style): built on the meta device
        return count_trainable(build_module(lambda: model.build(int(m.group(1))), meta=True))
    if m and hasattr(model, "nets"):  # LapSRN: the untrained x2^L pyramid
        return count_trainable(model.net(int(m.group(1))))
    if key == "all" or key == model.config.get("variant"):
        return sum(count_trainable(net) for net in getattr(model, "modules", lambda: [])())
    return None


@pytest.mark.parametrize("name", BUILTINS)
def test_card_and_adapter_agree(name):
    card, cls, model = _card(name), resolve(name), _untrained(name)
    assert model.learned == card.learned, name
    if card.range is not None:
        assert (model.scales.low, model.scales.high) == card.range and not model.scales.integers, name
        low, high = card.range
        if high < 64:  # above the native range: the card's `beyond` is what the rows will say
            assert model.strategy_for(high + Fraction(1, 2)) == (card.beyond or "native"), name
        assert model.strategy_for((low + high) / 2) == "native"
    else:
        # every scale the card says a network can have is one the adapter builds, upscaling by that factor
        buildable = set(card.integers) | set(card.also_builds)
        if hasattr(model, "build") or hasattr(model, "nets"):
            for k in sorted(buildable):
                assert _output_scale(model, k) == k, (name, k)
        assert set(model.scales.integers) <= set(card.integers), name  # an untrained smoke build
        assert card.strategy is not None and model.strategy == card.strategy, name
        above = max(card.integers) + Fraction(1, 2)
        if card.strategy == "ceil-then-down" and above < 64:  # no network above the largest: refused up front
            assert model.scale_problem(above) is not None, name
        assert set(getattr(cls, "per_scale_training", ())) <= buildable
    for release in card.releases:
        if release.scales is not None:
            assert set(release.scales) <= set(card.integers), (name, release.file)
            if card.range is None and release.sha256 == "" and len(release.scales) == 1:
                assert release.scales[0] in card.integers
    checked = {k: _counted(model, k) for k in card.params}
    assert any(v is not None for v in checked.values()), (name, "no [params] key the contract can count")
    for key, counted in checked.items():
        if counted is not None:
            assert counted == card.params[key], (name, key, counted)


def test_card_errors_name_the_file_and_field():
    good = dict(card_for("rcan"))
    for change, needle in [
        ({"scales": {"integers": [2, "3"]}}, "[scales] integers must be a list of whole numbers"),
        ({"scales": {}}, "[scales] must give integers"),
        ({"scales": {"range": ["4", "2"]}}, "[scales] range needs 1 <= low < high <= 64"),
        ({"weights": [{"file": "a.pt", "sha256": "abc"}]}, "[[weights]] #1 sha256 must be 64"),
        ({"weights": [{"file": "a.pt", "scale": "x2"}]}, "[[weights]] #1 scale must be"),
        ({"params": {"x2": "15M"}}, "[params] must map"),
        ({"published": [{"source": "s", "protocol": "matlab", "rows": [["Set5", "2", "38.2 dB"]]}]}, "has a bad row"),
        ({"learned": "yes"}, "learned must be true or false"),
        ({"replaces": 3}, "replaces must be the name of the built-in model"),
        ({"weights_files": "two"}, "weights_files must be one of one, per-scale"),
        ({"train": {**card_for("rcan")["train"], "lr_rate": 1}}, "[train] lr_rate is not a [train] field"),
        ({"train": {**card_for("rcan")["train"], "loss": "l3"}}, "[train] loss must be one of l1, mse"),
        ({"train": {**card_for("rcan")["train"], "source": "our notes"}},
         "[train] source must name the paper or the code"),
        ({"train": {**card_for("rcan")["train"], "status": "not-recovered", "choices": ["lr"]}},
         "[train] choices must list every value field when the recipe is not recovered"),
        ({"train": {**card_for("rcan")["train"], "patch": {"2": 1}}}, "[train] patch must be an LR patch side >= 2"),
    ]:
        with pytest.raises(UserError, match=re.escape(needle)) as e:
            ModelCard.from_dict({**good, **change}, "my/card.toml")
        assert str(e.value).startswith("model card my/card.toml: ")


def test_release_names_from_card_sha256():
    card = {"name": "m", "scales": {"integers": [2, 4]},
            "weights": [{"file": "M_x2.pt", "scale": 2, "sha256": "a" * 64},
                        {"file": "M_x4.pt", "scale": 4, "sha256": "b" * 64},
                        {"file": "M_x8.pt", "scale": 8, "sha256": ""}]}  # unknown hash: matches nothing
    assert release_name(card, "a" * 64) == "M_x2.pt"
    assert release_name(card, "a" * 64 + "+" + "b" * 64) == "M_x2.pt+M_x4.pt"
    assert release_name(card, "a" * 64 + "+" + "c" * 64) == f"M_x2.pt+{UNRELEASED}"
    assert release_name(card, "c" * 64) == UNRELEASED == release_name(None, "c" * 64)
    assert release_name(card, "") == ""


def test_official_lapsrn_files_are_named_after_their_release(tmp_path):
    files = [WEIGHTS / f"LapSRN_x{k}.mat" for k in (2, 4)]
    if not all(f.is_file() for f in files):
        need_shared(WEIGHTS)
    import os

    model = create_model("lapsrn", checkpoint=os.pathsep.join(map(str, files)))
    card_sha = {w["file"]: w["sha256"] for w in card_for("lapsrn")["weights"]}
    for k, f in zip((2, 4), files, strict=True):
        sha = model.checkpoint_sha256_for(Fraction(k))
        assert sha == file_sha256(f) == card_sha[f.name]  # each scale's rows carry its own file's hash
        assert release_of("lapsrn", sha) == f.name
    # x3 runs the x4 network and resizes (ceil-then-down); its rows name every loaded file
    assert model.checkpoint_sha256_for(Fraction(3)) == model.checkpoint_sha256
    assert release_of("lapsrn", model.checkpoint_sha256) == "LapSRN_x2.mat+LapSRN_x4.mat"
    assert release_of("lapsrn+", model.checkpoint_sha256_for(Fraction(2))) == "LapSRN_x2.mat"
    # the same weights re-saved as a state_dict are another file: not a release
    path = tmp_path / "x2.pt"
    torch.save(model.nets[2].state_dict(), path)
    resaved = create_model("lapsrn", checkpoint=str(path))
    assert release_of("lapsrn", resaved.checkpoint_sha256) == UNRELEASED
