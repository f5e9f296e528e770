"""Training recipes from the model cards (``srbench train NAME --recipe paper``) and the losses they name.

Every learned model's card has a ``[train]`` block; each resolves, a flag replaces exactly its field, and each runs
2 real steps on the demo images with its own loss, optimizer and schedule (batch and patch made small so the file
stays quick; PATH.json says which fields came from the flags). The losses are checked against formulas written
out here in float64 NumPy, the pyramid targets of the multi-level loss against basicsr's MATLAB ``imresize``.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.models.cards import card_for, model_cards
from sr_bench.models.modelcard import ModelCard
from sr_bench.scales import parse_scales
from sr_bench.train import train
from sr_bench.train.families import build
from sr_bench.train.loop import lr_at, lr_schedule
from sr_bench.train.losses import loss_value
from sr_bench.train.recipe import DEFAULTS, resolve_recipe

LEARNED = sorted(n for n in {c["name"] for c in model_cards().values()} if card_for(n).get("learned", True))


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: training steps on one thread


def _block(name: str) -> dict:
    return ModelCard.from_dict(card_for(name), name).train


def _scale_for(name: str) -> str | None:
    """A scale to train a one-network-per-scale model at: the first its card's recipe lists."""
    t = _block(name)
    return str(parse_scales(t["scales"])[0]) if "," in t["scales"] and not t["scales"].count(":") else None


def test_every_learned_model_has_a_traced_recipe():
    assert len(LEARNED) == 15
    for name in LEARNED:
        t = _block(name)
        assert t is not None, name
        assert ("paper" in t["source"].lower() or "/" in t["source"]) and "papers.md" not in t["source"]
        assert t["status"] in ("paper", "partial", "not-recovered"), name
        if t["status"] == "not-recovered":  # every value marked as sr_bench's choice, and said so
            assert set(t["choices"]) >= {k for k in DEFAULTS if k in t} and t["notes"], name
    assert _block("asdn")["status"] == _block("csfm")["status"] == "not-recovered"
    meta = _block("metasr")  # papers.md §1.8, field by field
    assert (meta["scales"], meta["patch"], meta["batch"], meta["loss"], meta["lr"], meta["lr_decay_every"],
            meta["lr_gamma"]) == ("1.1:4:0.1", 50, 16, "l1", 1e-4, 200000, 0.5)
    assert parse_scales(meta["scales"]) == [Fraction(11 + k, 10) for k in range(30)]
    assert _block("lapsrn")["loss"] == "multilevel-charbonnier" and _block("lapsrn")["charbonnier_eps"] == 1e-3


def test_flags_replace_single_fields():
    r = resolve_recipe("rcan", "paper", {"scales": "2", "lr": 2e-4, "steps": 10})
    assert (r.lr, r.steps, r.batch, r.patch, r.lr_decay_every, r.loss) == (2e-4, 10, 16, 48, 200000, "l1")
    rec = r.record()
    assert rec["from_flags"] == ["lr", "scales", "steps"] and "batch" in rec["from_card"] and rec["name"] == "paper"
    assert rec["source"] == _block("rcan")["source"]
    assert resolve_recipe("dbdn", "paper", {"scales": "3"}).patch == 32  # the per-scale patch table
    assert resolve_recipe("rcan", None, {"scales": "2"}).lr_decay_every == 0  # no recipe: sr_bench's defaults
    with pytest.raises(UserError, match="gives LR patches for x2, x3, x4, not x8; give --patch"):
        resolve_recipe("dbdn", "paper", {"scales": "8"})
    with pytest.raises(UserError, match="has no \\[train\\] block"):
        resolve_recipe("bicubic", "paper", {})


@pytest.mark.parametrize("name", LEARNED)
def test_every_recipe_runs_two_steps_on_the_demo_set(name, tmp_path):
    out = tmp_path / "w.pt"
    result = train(name, ["demo"], out, recipe="paper", scales=_scale_for(name), steps=2, batch=2, patch=8,
                   log_every=1, save_every=0, device="cpu", progress=False)
    record = json.loads(result.sidecar.read_text())
    block, values = _block(name), record["recipe"]["values"]
    assert record["recipe"]["name"] == "paper" and record["recipe"]["status"] == block["status"]
    assert set(record["recipe"]["from_flags"]) >= {"data", "steps", "batch", "patch"}
    for key in ("loss", "optimizer", "lr", "lr_decay_every", "lr_gamma", "weight_decay", "momentum", "clip_grad"):
        if key in block:
            assert values[key] == block[key], (name, key)
    assert len(result.losses) == 2 and all(np.isfinite(v) for _, v in result.losses), result.losses
    assert record["optimizer"]["name"] == {"adam": "Adam", "sgd": "SGD"}[block["optimizer"]]
    assert record["lr"]["schedule"][0] == [0, block["lr"]]


def test_the_recipes_data_must_exist(tmp_path):
    r = CliRunner().invoke(cli, ["train", "lapsrn", "--scale", "2", "--recipe", "paper", "--out",
                                 str(tmp_path / "w.pt"), "--no-progress"])
    assert r.exit_code == 2 and r.output.startswith("error: the paper recipe of 'lapsrn' trains on t91 + bsds200")
    assert "give --data" in r.output and len(r.output.strip().splitlines()) == 1


def test_learning_rate_schedules():
    # LapSRN: 1e-5 halved every 5000 steps, never below 1e-6
    assert [lr_at(k, 1e-5, 5000, 0.5, 1e-6) for k in (0, 4999, 5000, 10000, 15000, 20000, 99999)] == \
        [1e-5, 1e-5, 5e-6, 2.5e-6, 1.25e-6, 1e-6, 1e-6]
    assert lr_schedule(20000, 0.1, 5000, 0.1) == [[0, 0.1], [5000, 0.1 * 0.1], [10000, 0.1 * 0.1 ** 2],
                                                  [15000, 0.1 * 0.1 ** 3]]
    assert lr_at(123, 1e-4, 0) == 1e-4


# ------------------------------------------------------------------------------------------------- losses ----
def test_losses_are_the_textbook_formulas():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 2, 5, 6, generator=g), torch.rand(3, 2, 5, 6, generator=g)
    p, t = pred.double().numpy(), target.double().numpy()
    d = p - t
    assert loss_value("l1", pred, target).item() == pytest.approx(np.mean(np.abs(d)), rel=1e-6)
    assert loss_value("mse", pred, target).item() == pytest.approx(np.mean(d ** 2), rel=1e-6)
    for eps in (1e-3, 0.1):
        want = np.mean(np.sqrt(d ** 2 + eps ** 2))
        assert loss_value("charbonnier", pred, target, eps).item() == pytest.approx(want, rel=1e-6)
    # eps -> 0: Charbonnier -> L1
    assert loss_value("charbonnier", pred, target, 1e-6).item() == pytest.approx(np.mean(np.abs(d)), rel=1e-4)
    # LapSRN's vllab_nn_L1_loss: sum(sqrt(d.^2 + 1e-6)) over a level, for each level; MatConvNet divides by the batch
    levels = [(torch.rand(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g)),
              (torch.rand(3, 1, 8, 8, generator=g), torch.rand(3, 1, 8, 8, generator=g))]
    want = sum(np.sum(np.sqrt((a.double().numpy() - b.double().numpy()) ** 2 + 1e-6)) for a, b in levels) / 3
    got = loss_value("multilevel-charbonnier", [a for a, _ in levels], [b for _, b in levels], 1e-3).item()
    assert got == pytest.approx(want, rel=1e-6)


def test_lapsrn_levels_and_their_targets(basicsr):
    t = build("lapsrn", "4", {}, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 24, 24, generator=g, dtype=torch.float64).float()
    lr = torch.rand(2, 3, 6, 6, generator=g, dtype=torch.float64).float()
    with torch.no_grad():
        preds, targets = t.predict_levels(lr, hr, Fraction(4), g)
        final, y = t.predict(lr, hr, Fraction(4), g)
    assert [p.shape[-1] for p in preds] == [12, 24] and torch.equal(preds[-1], final)
    assert torch.equal(targets[-1], y)  # the finest level's target is the HR's Y itself
    # the x2 level's target: the HR Y MATLAB-bicubic downscaled by 2 (getBatch_LapSRN.m), by basicsr's imresize
    y64 = y.double().numpy()
    ref = np.stack([basicsr.imresize(y64[i, 0], 0.5) for i in range(2)])[:, None]
    assert np.abs(targets[0].double().numpy() - ref).max() < 1e-6
    with pytest.raises(UserError, match="needs the outputs of every pyramid level"):
        train("edsr-baseline", ["demo"], "unused.pt", scales="2", loss="multilevel-charbonnier", steps=1,
              device="cpu", progress=False)
