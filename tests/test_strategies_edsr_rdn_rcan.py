"""EDSR-baseline, RDN and RCAN take every integer-model strategy (``strategy=``/``--model-opt strategy=``), and an x1
network (Meta-SR's EDSR(x1)/RDN(x1) baselines for ``bicubic-pre``) saves, reloads strictly with its scale inferred
from the keys, and gives the same output. The strategies' arithmetic itself is checked on a tiny DBDN in
test_archs_asdn_dbdn_csfm.py; here it is the wiring of each family."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
import torch

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models import create_model

FAMILIES = ["edsr-baseline", "rdn", "rcan"]


def lr_batch(h: int, w: int) -> torch.Tensor:
    return torch.rand(1, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


# the full matrix on the smallest family (the wiring is the same class for all three; the others are covered below)
@pytest.mark.parametrize("name", ["edsr-baseline"])
@pytest.mark.parametrize("strategy,expected", [
    ("ceil-then-down", ["ceil-then-down", "native", "ceil-then-down", "native"]),
    ("floor-then-up", ["ceil-then-down", "native", "floor-then-up", "native"]),
    ("bicubic-pre", ["bicubic-pre", "native", "bicubic-pre", "native"]),
    ("recursive-x2", ["recursive-x2", "native", "recursive-x2", "native"]),
])
def test_every_strategy_reaches_the_exact_size(name, strategy, expected):
    torch.manual_seed(0)
    model = create_model(name, allow_untrained=True, strategy=strategy)
    lr = lr_batch(6, 7)
    scales = [F(3, 2), F(2), F(5, 2), F(4)]
    assert [model.strategy_for(s) for s in scales] == expected
    for s in scales + ([F(57, 10)] if strategy != "ceil-then-down" else []):
        size = (int(6 * s), int(7 * s))
        assert model.super_resolve(lr, s, size).shape == (1, 3, *size), (name, strategy, s)
    if strategy == "ceil-then-down":  # nothing to go down from above the largest network: an error naming the way out
        with pytest.raises(UserError,
                           match=r"cannot run x5\.7: .*needs a network of scale >= 5\.7.*strategy=floor-then-up"):
            model.super_resolve(lr, F(57, 10), (34, 39))


@pytest.mark.parametrize("name", FAMILIES)
def test_floor_then_up_is_the_x2_network_then_bicubic_up(name):
    torch.manual_seed(0)
    model = create_model(name, allow_untrained=True, strategy="floor-then-up")
    lr = lr_batch(6, 7)
    with torch.inference_mode():
        y = model.net(2)(lr.float() * 255).double()
    expected = (imresize(y, size=(15, 17)) / 255).clamp(0, 1)
    assert torch.equal(model.super_resolve(lr, F(5, 2), (15, 17)), expected)


@pytest.mark.parametrize("name", FAMILIES)
def test_x1_network_saves_and_reloads_for_bicubic_pre(name, tmp_path):
    torch.manual_seed(0)
    src = create_model(name, allow_untrained=True, strategy="bicubic-pre")
    assert 1 in src.scales.integers
    path = tmp_path / f"{name}_x1.pt"
    torch.save(src.net(1).state_dict(), path)
    model = create_model(name, checkpoint=str(path), strategy="bicubic-pre")
    assert model.scales.integers == {1}  # inferred from the keys: no scale= given
    lr = lr_batch(5, 6)
    assert torch.equal(model.super_resolve(lr, F(5, 2), (12, 15)), src.super_resolve(lr, F(5, 2), (12, 15)))
    assert model.strategy_for(F(2)) == "bicubic-pre"
