"""DBDN, CSFM, ASDN, FSDN and the named decimal-scale strategies (sr_bench.models.strategies).

- Parameter counts: papers.md §0 for DBDN/CSFM, this implementation's documented layouts for ASDN/FSDN (the cards
  state them), counted on the meta device.
- Every model makes exactly the requested size at 1.5 / 2 / 2.5 / 3 / 4 (LR 8x8, random weights; the integer-only
  ones through their strategy); ASDN also at x8 and x5.7 through recursive deployment (LR 4x4).
- LFR: level index and weight against the paper's formula; the combination O_i + w (O_{i-1} - O_i).
- Strategies: each one's result against its definition, on a tiny DBDN (same code, 2 units, 8 features).
- Strict reload of saved state_dicts, scale inference, and the user errors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models import create_model
from sr_bench.models.archs.asdn import ASDN, FSDN, ASDNUpscaler, FSDNUpscaler, lfr_level, lfr_scales
from sr_bench.models.archs.blocks import count_trainable
from sr_bench.models.archs.csfm import CSFM, CSFMUpscaler
from sr_bench.models.archs.dbdn import DBDN, DBDN_VARIANTS, DBDNUpscaler
from sr_bench.models.cards import card_for
from sr_bench.models.strategies import (
    INTEGER_STRATEGIES,
    recursion_count,
    recursive_plan,
)

SCALES = [Fraction(3, 2), Fraction(2), Fraction(5, 2), Fraction(3), Fraction(4)]
F = Fraction


def meta(factory):
    with torch.device("meta"):
        return factory()


def lr_batch(h: int, w: int, b: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)


def ceil_size(h, w, s):
    return (math.ceil(h * s), math.ceil(w * s))


# ------------------------------------------------------------------------------------------------ parameter counts

PARAMS = {
    # papers.md §0 (official Torch code layout, deconv tail)
    "dbdn x2": (lambda: DBDN(scale=2), 27_141_827),
    "dbdn x3": (lambda: DBDN(scale=3), 27_326_147),
    "dbdn x4": (lambda: DBDN(scale=4), 27_289_347),
    # documented alternatives (registry/dbdn.toml [variant_params])
    "dbdn-espcnn x2": (lambda: DBDN(scale=2, **DBDN_VARIANTS["dbdn-espcnn"]), 27_142_019),
    "dbdn-1x1 x2": (lambda: DBDN(scale=2, **DBDN_VARIANTS["dbdn-1x1"]), 22_685_379),
    "dbdn-1x1 x4": (lambda: DBDN(scale=4, **DBDN_VARIANTS["dbdn-1x1"]), 22_832_899),
    # papers.md §0 (the 'IEEE TCSVT paper - CSFM' PyTorch file)
    "csfm x2": (lambda: CSFM(scale=2), 12_071_875),
    "csfm x3": (lambda: CSFM(scale=3), 12_256_515),
    "csfm x4": (lambda: CSFM(scale=4), 12_219_587),
    # this implementation's documented layouts (unofficial hyper-parameters; papers.md "~22.4M")
    "asdn": (ASDN, 22_438_288),
    "fsdn x2": (lambda: FSDN(scale=2), 24_908_912),
    "fsdn x3": (lambda: FSDN(scale=3), 28_042_352),
    "fsdn x4": (lambda: FSDN(scale=4), 25_056_432),
    "fsdn x8": (lambda: FSDN(scale=8), 25_203_952),
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_counts(name):
    factory, expected = PARAMS[name]
    assert count_trainable(meta(factory)) == expected


def test_asdn_count_is_the_fmb_plus_eleven_irbs():
    net = meta(ASDN)
    fmb = count_trainable(net.head) + count_trainable(net.body)
    assert fmb == 22_401_856 and len(net.tail) == 11
    assert all(count_trainable(b) == 3_312 for b in net.tail)  # 1088*3+3 + (3*6+6) + (6*3+3)
    assert net.tail[0].conv.weight.shape == (3, 1088, 1, 1)


@pytest.mark.parametrize(
    "card,factories",
    [
        ("dbdn", {f"x{s}": (lambda s=s: DBDN(scale=s)) for s in (2, 3, 4)}),
        ("csfm", {f"x{s}": (lambda s=s: CSFM(scale=s)) for s in (2, 3, 4)}),
        ("asdn", {"all": ASDN}),
        ("fsdn", {f"x{s}": (lambda s=s: FSDN(scale=s)) for s in (2, 3, 4, 8)}),
    ],
)
def test_cards_state_the_counts_and_no_weights(card, factories):
    c = card_for(card)
    assert set(c["params"]) == set(factories)
    for key, factory in factories.items():
        assert count_trainable(meta(factory)) == c["params"][key], (card, key)
    assert c["weights"] == [] and c["weights_note"]
    assert c["published"] and all(p["source"] and p["rows"] for p in c["published"])
    for variant, counts in c.get("variant_params", {}).items():
        for key, n in counts.items():
            assert count_trainable(meta(lambda key=key, variant=variant: DBDN(scale=int(key[1:]),
                                                                              **DBDN_VARIANTS[variant]))) == n


def test_csfm_keys_follow_the_pytorch_file():
    keys = set(meta(lambda: CSFM(scale=4)).state_dict())
    for k in ["head.0.weight", "conv_3x3.weight", "fmm1.CSAR_chain.0.convs.0.weight",
              "fmm8.CSAR_chain.15.CA.conv_du.2.bias",
              "fmm3.CSAR_chain.7.SA.convs.2.weight", "fmm2.CSAR_chain.0.conv_1x1.weight", "node8.weight",
              "conv_3x3_bu.weight", "tail.0.0.weight", "tail.0.2.weight", "tail.1.weight", "sub_mean.bias"]:
        assert k in keys, k
    assert meta(lambda: CSFM(scale=4)).node8.weight.shape == (64, 9 * 64, 1, 1)


def test_dbdn_layout_follows_the_lua_code():
    net = meta(lambda: DBDN(scale=3))
    assert net.body.units[15].compress.weight.shape == (64, 1024, 3, 3)
    assert net.body.units[0].block.dense[7].weight.shape == (64, 512, 3, 3)
    assert net.body.units[0].block.fuse.weight.shape == (64, 576, 1, 1)
    assert net.body.fusion.weight.shape == (64, 1088, 1, 1)
    up = net.tail[0][0]
    assert isinstance(up, torch.nn.ConvTranspose2d) and up.kernel_size == (9, 9) and up.stride == (3, 3)


# ------------------------------------------------------------------------------------------------ adapters, sizes


@pytest.fixture(scope="module")
def big():
    """Untrained adapters; integer-only ones hold one x4 network (every scale <= 4 runs through it)."""
    return {
        "dbdn": DBDNUpscaler(allow_untrained=True, scale=4),
        "csfm": CSFMUpscaler(allow_untrained=True, scale=4),
        "fsdn": FSDNUpscaler(allow_untrained=True, scale=4),
        "asdn": ASDNUpscaler(allow_untrained=True),
    }


EXPECTED_STRATEGY = {
    "dbdn": lambda s: "native" if s == 4 else "ceil-then-down",
    "csfm": lambda s: "native" if s == 4 else "ceil-then-down",
    "fsdn": lambda s: "native" if s == 4 else "ceil-then-down",
    "asdn": lambda s: "native" if s <= 2 else "recursive-x2",
}


@pytest.mark.parametrize("name", ["dbdn", "csfm", "fsdn", "asdn"])
def test_every_model_makes_the_exact_size(big, name):
    model = big[name]
    assert model.untrained and model.checkpoint_sha256 is None
    lr = lr_batch(8, 8)
    for s in SCALES:
        size = ceil_size(8, 8, s)
        sr = model.super_resolve(lr, s, size)
        assert sr.shape == (1, 3, *size) and sr.dtype == torch.float64, (name, s)
        assert 0.0 <= float(sr.min()) and float(sr.max()) <= 1.0 and torch.isfinite(sr).all()
        assert model.strategy_for(s) == EXPECTED_STRATEGY[name](s), (name, s)


def test_asdn_recursive_deployment_x8_and_x5_7(big):
    model = big["asdn"]
    lr = lr_batch(4, 4)
    assert recursive_plan(F(8)) == [2, 2, 2] and recursion_count(F(8)) == 3
    sr = model.super_resolve(lr, F(8), (32, 32))
    assert sr.shape == (1, 3, 32, 32) and model.strategy_for(F(8)) == "recursive-x2"
    assert model.last_passes == [(2, (4, 4), (8, 8), 10, 0), (2, (8, 8), (16, 16), 10, 0),
                                 (2, (16, 16), (32, 32), 10, 0)]
    s = F(57, 10)
    assert recursive_plan(s) == [2, 2, F(1425, 1000)]
    size = ceil_size(4, 4, s)  # 23 x 23
    sr = model.super_resolve(lr, s, size)
    assert sr.shape == (1, 3, 23, 23) and model.strategy_for(s) == "recursive-x2"
    # x1.425: i = ceil(10 * 0.425) = 5 (r_5 = 1.5), w = 10 * (1.5 - 1.425) = 0.75, on 16x16 -> 23x23
    assert model.last_passes == [(2, (4, 4), (8, 8), 10, 0), (2, (8, 8), (16, 16), 10, 0),
                                 (F(57, 40), (16, 16), (23, 23), 5, F(3, 4))]
    # a floored protocol size is produced exactly as well (x3 = x2, x1.5; 1.5 * 8 = 12 is on level 5)
    assert model.super_resolve(lr, F(3), (11, 12)).shape == (1, 3, 11, 12)
    assert [p[0] for p in model.last_passes] == [2, F(3, 2)]
    assert recursive_plan(F(3)) == [2, F(3, 2)] and recursive_plan(F(4)) == [2, 2]
    assert recursive_plan(F(7, 5)) == [F(7, 5)] and recursive_plan(F(2)) == [2]


# ------------------------------------------------------------------------------------------------ LFR


def test_lfr_levels_and_weights():
    r = lfr_scales()
    assert r == [1 + F(level, 10) for level in range(11)] and r[0] == 1 and r[10] == 2
    for level in range(1, 11):  # on a level: w = 0, i = level
        assert lfr_level(r[level]) == (level, 0)
    for x, (i, w) in {F(145, 100): (5, F(1, 2)), F(1425, 1000): (5, F(3, 4)), F(101, 100): (1, F(9, 10)),
                      F(199, 100): (10, F(1, 10)), F(5, 4): (3, F(1, 2))}.items():
        assert lfr_level(x) == (i, w), x
    g = torch.Generator().manual_seed(3)
    for _ in range(50):  # the paper's formula, in exact fractions
        x = 1 + F(int(torch.randint(1, 10_001, (1,), generator=g)), 10_000)
        i, w = lfr_level(x)
        assert i == math.ceil(10 * (x - 1)) and w == 10 * (r[i] - x) and 0 <= w < 1 and r[i - 1] < x <= r[i]
    for bad in (F(1), F(201, 100)):
        with pytest.raises(ValueError):
            lfr_level(bad)
    assert lfr_level(F(13, 10), levels=4) == (1, F(1, 10))  # ASDN-3: levels 1, 4/3, 5/3, 2


def test_lfr_pass_combines_the_two_levels(big, monkeypatch):
    model = big["asdn"]
    x = lr_batch(10, 10).mul(255)
    # level inputs: ceil(r_l * h) (MATLAB imresize); level 0 (x1.0001) keeps the LR size
    assert model.level_input(x, 0).shape[-2:] == (10, 10)
    assert model.level_input(x, 4).shape[-2:] == (14, 14) and model.level_input(x, 10).shape[-2:] == (20, 20)
    assert torch.allclose(model.level_input(x, 0), x, atol=0.05 * 255)  # x1.0001 is nearly the identity

    def constant(xx, level):  # O_l = a constant image per level: the bicubic resize keeps it constant
        size = model.level_input(xx, level).shape
        return torch.full(size, 10.0 * level + 3.0, dtype=torch.float64)

    monkeypatch.setattr(model, "level_output", constant)
    cases = [(F(145, 100), 5, F(1, 2)), (F(1425, 1000), 5, F(3, 4)), (F(15, 10), 5, 0), (F(105, 100), 1, F(1, 2))]
    for s, i, w in cases:
        model.last_passes = []
        out = model.lfr_pass(x, s, ceil_size(10, 10, s))
        expected = (10.0 * i + 3) + float(w) * ((10.0 * (i - 1) + 3) - (10.0 * i + 3))
        assert out.shape[-2:] == ceil_size(10, 10, s)
        assert torch.allclose(out, torch.full_like(out, expected)), (s, float(out.mean()), expected)
        assert model.last_passes[-1][3:] == (i, w)


def test_lfr_on_a_level_is_the_level_output_itself(big):
    model = big["asdn"]
    lr = lr_batch(6, 6)
    x = lr.float().double() * 255  # as super_resolve: float32 input, float64 resizing
    o5 = model.level_output(x, 5)  # x1.5: 9 x 9
    assert torch.equal(model.super_resolve(lr, F(3, 2), (9, 9)), (o5 / 255).clamp(0, 1))
    assert torch.equal(model.super_resolve(lr, F(3, 2), (8, 9)), (o5[..., :8, :] / 255).clamp(0, 1))


# ------------------------------------------------------------------------------------------------ strategies


class TinyDBDN(DBDNUpscaler):
    """The DBDN code with 2 units of 2 layers and 8 features: fast enough to check strategies exactly."""

    variants = {"tiny": {"n_feats": 8, "n_units": 2, "n_layers": 2, "growth": 8, "compression_kernel": 3,
                         "upsampler": "deconv"}}
    default_variant = "tiny"


def _net(model, k, x):
    with torch.inference_mode():
        return model.net(k)(x.float()).double()


def _x255(lr):
    """The adapters' input: float32 RGB times 255 (float64 where it is resized)."""
    return lr.float().double() * 255


def test_ceil_then_down_is_the_default():
    model = TinyDBDN(allow_untrained=True)
    assert model.strategy == "ceil-then-down" and model.scales.integers == {2, 3, 4}
    lr = lr_batch(7, 6)
    expected = (imresize(_net(model, 3, lr.float() * 255), size=(18, 15)) / 255).clamp(0, 1)
    assert torch.equal(model.super_resolve(lr, F(5, 2), (18, 15)), expected)
    assert [model.strategy_for(s) for s in SCALES] == ["ceil-then-down", "native", "ceil-then-down", "native", "native"]


def test_floor_then_up():
    model = TinyDBDN(allow_untrained=True, strategy="floor-then-up")
    lr = lr_batch(7, 6)
    expected = (imresize(_net(model, 2, lr.float() * 255), size=(18, 15)) / 255).clamp(0, 1)
    assert torch.equal(model.super_resolve(lr, F(5, 2), (18, 15)), expected)
    # below the smallest held scale there is nothing to floor to: ceil-then-down, and the column says so
    assert model.strategy_for(F(3, 2)) == "ceil-then-down" and model.strategy_for(F(5, 2)) == "floor-then-up"
    assert torch.equal(model.super_resolve(lr, F(3, 2), (11, 9)),
                       (imresize(_net(model, 2, lr.float() * 255), size=(11, 9)) / 255).clamp(0, 1))
    assert model.super_resolve(lr, F(6), (42, 36)).shape[-2:] == (42, 36)  # above x4: x4 then upscale


def test_bicubic_pre():
    model = TinyDBDN(allow_untrained=True, strategy="bicubic-pre")
    assert model.scales.integers == {1, 2, 3, 4} and model.net(1).tail[0].__len__() == 0  # x1: identity upsampler
    lr = lr_batch(7, 6)
    up = imresize(_x255(lr), size=(18, 15))
    expected = (_net(model, 1, up) / 255).clamp(0, 1)
    assert torch.equal(model.super_resolve(lr, F(5, 2), (18, 15)), expected)
    assert model.strategy_for(F(5, 2)) == "bicubic-pre" and model.strategy_for(F(3)) == "native"


def test_recursive_x2_on_an_integer_model():
    model = TinyDBDN(allow_untrained=True, scale=4, strategy="recursive-x2")
    assert model.scales.integers == {2, 4}  # the strategy's x2 network is added to the smoke build
    lr = lr_batch(4, 5)
    s, size = F(57, 10), ceil_size(4, 5, F(57, 10))  # 23 x 29
    y = _x255(lr)
    for _ in range(2):
        y = _net(model, 2, y).clamp(0, 255)
    expected = (imresize(_net(model, 2, y), size=size) / 255).clamp(0, 1)  # third x2 pass, then down to the size
    assert torch.equal(model.super_resolve(lr, s, size), expected)
    assert model.strategy_for(s) == "recursive-x2" and model.strategy_for(F(4)) == "native"
    assert model.super_resolve(lr, F(8), (32, 40)).shape[-2:] == (32, 40)


def test_strategy_errors(tmp_path):
    with pytest.raises(UserError, match="no decimal-scale strategy 'nearest'.*ceil-then-down, floor-then-up"):
        TinyDBDN(allow_untrained=True, strategy="nearest")
    src = TinyDBDN(allow_untrained=True)
    path = tmp_path / "tiny_x3.pt"
    torch.save(src.net(3).state_dict(), path)
    with pytest.raises(UserError, match="needs a x2 network.*hold x3"):
        TinyDBDN(checkpoint=str(path), strategy="recursive-x2")
    with pytest.raises(UserError, match="needs a x1 network"):
        TinyDBDN(checkpoint=str(path), strategy="bicubic-pre")
    assert set(INTEGER_STRATEGIES) == {"ceil-then-down", "floor-then-up", "bicubic-pre", "recursive-x2"}


def test_x1_checkpoint_serves_bicubic_pre(tmp_path):
    src = TinyDBDN(allow_untrained=True, strategy="bicubic-pre")
    path = tmp_path / "tiny_x1.pt"
    torch.save(src.net(1).state_dict(), path)
    model = TinyDBDN(checkpoint=str(path), strategy="bicubic-pre")
    assert model.scales.integers == {1}
    lr = lr_batch(5, 5)
    assert torch.equal(model.super_resolve(lr, F(5, 2), (13, 13)), src.super_resolve(lr, F(5, 2), (13, 13)))
    assert model.strategy_for(F(2)) == "bicubic-pre" and src.strategy_for(F(2)) == "native"
    assert model.super_resolve(lr, F(2), (10, 10)).shape[-2:] == (10, 10)


# ------------------------------------------------------------------------------------------------ checkpoints


def test_dbdn_strict_reload_infers_scale_and_variant(tmp_path, big):
    src = big["dbdn"]
    path = tmp_path / "DBDN_x4.pt"
    torch.save(src.net(4).state_dict(), path)
    model = create_model("dbdn", checkpoint=str(path))
    assert model.scales.integers == {4} and not model.untrained and model.variant == "dbdn"
    lr = lr_batch(8, 8)
    for s in (F(4), F(3)):
        size = ceil_size(8, 8, s)
        assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))
    with pytest.raises(UserError, match="does not fit model 'dbdn'.*compress.weight.*pass variant='dbdn'"):
        create_model("dbdn", checkpoint=str(path), variant="dbdn-1x1")


def test_dbdn_espcnn_and_x3_deconv_scale_inference(tmp_path):
    small = {"n_feats": 8, "n_units": 2, "n_layers": 2, "growth": 8}
    from sr_bench.models.archs.dbdn import dbdn_layout_of

    for up, k in [("espcnn", 2), ("espcnn", 3), ("espcnn", 4), ("deconv", 3), ("deconv", 8), ("deconv", 1)]:
        sd = DBDN(scale=k, upsampler=up, **small).state_dict()
        layout = dbdn_layout_of(sd)
        assert layout["scale"] == k and layout["upsampler"] == (up if k != 1 else None), (up, k)


@pytest.mark.parametrize("name", ["csfm", "fsdn", "asdn"])
def test_strict_reload(tmp_path, big, name):
    src = big[name]
    net = src.net if name == "asdn" else src.net(4)
    path = tmp_path / f"{name}.pt"
    torch.save(net.state_dict(), path)
    model = create_model(name, checkpoint=str(path))
    assert not model.untrained and len(model.checkpoint_sha256) == 64
    if name != "asdn":
        assert model.scales.integers == {4}
    lr = lr_batch(6, 6)
    s = F(5, 2)
    size = ceil_size(6, 6, s)
    assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))


def test_fsdn_and_asdn_checkpoints_are_told_apart(tmp_path, big):
    path = tmp_path / "asdn.pt"
    torch.save(big["asdn"].net.state_dict(), path)
    with pytest.raises(UserError, match="does not fit model 'fsdn'.*--models asdn=PATH"):
        create_model("fsdn", checkpoint=str(path))
    small = FSDN(scale=2, n_feats=8, n_dab=2, n_layers=1, growth=8, reduction=4, deconv_feats=8).state_dict()
    from sr_bench.models.archs.asdn import fsdn_scale_of

    assert fsdn_scale_of(small) == 2
    assert fsdn_scale_of(FSDN(scale=3, n_feats=8, n_dab=1, n_layers=1, growth=8, reduction=4).state_dict()) == 3
    path2 = tmp_path / "fsdn_small.pt"
    torch.save(small, path2)
    with pytest.raises(UserError, match="does not fit model 'asdn'.*FSDN checkpoint"):
        create_model("asdn", checkpoint=str(path2))


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("name", ["dbdn", "csfm", "asdn", "fsdn", "srcnn", "vdsr", "lapsrn", "mslapsrn"])
def test_learned_model_without_weights_names_the_ways_out(name):
    with pytest.raises(UserError) as e:
        create_model(name)
    msg = str(e.value)
    assert f"model {name!r} needs weights" in msg and "=PATH/TO/" in msg and "srbench train" in msg
    # the card is found with a command any install has, not a file of the source tree
    assert "--allow-untrained" in msg and f"`srbench models {name}`" in msg and "registry/" not in msg
    assert "\n" not in msg
    # the example file is one the card names, or one in its releases' style when it has none
    example = msg.split("=PATH/TO/", 1)[1].split(" ", 1)[0]
    files = [w["file"] for w in card_for(name)["weights"]]
    assert example in files if files else example.endswith(".pt")


def test_asdn_takes_no_scale_and_no_unknown_variant():
    with pytest.raises(UserError, match="takes no scale"):
        create_model("asdn", allow_untrained=True, scale=2)
    with pytest.raises(UserError, match="no variant 'x'.*asdn, asdn-maxpool"):
        create_model("asdn", allow_untrained=True, variant="x")
