"""PyTorch architectures (sr_bench.models.archs): parameter counts, official key names, checkpoint loading, adapters.

- Parameter counts must equal papers.md §0 exactly (trainable parameters; the fixed MeanShift convs are excluded).
  Big networks are built on the meta device, so counting costs nothing.
- Key names and shapes are compared with lists extracted from the official model definitions
  (tests/fixtures/official_keys/*.txt; each header names the repository, commit, files and command).
- Adapters: strict reload of our own state_dicts, output sizes at decimal scales, strategy names, errors.
Everything runs on CPU with tiny inputs (LR 12x10 for the small networks, 8x8 for the 15-43M ones).
"""

from __future__ import annotations

import hashlib
import math
import os
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models import create_model
from sr_bench.models.archs.blocks import count_trainable
from sr_bench.models.archs.edsr import EDSR, EDSR_VARIANTS, EDSRBaselineUpscaler, EDSRUpscaler
from sr_bench.models.archs.liif import LIIF, LIIFRDNUpscaler, LIIFUpscaler, make_encoder
from sr_bench.models.archs.metasr import MetaRDN, MetaSRUpscaler
from sr_bench.models.archs.rcan import RCAN, RCANUpscaler
from sr_bench.models.archs.rdn import RDN, RDNUpscaler
from sr_bench.models.cards import card_for

FIXTURES = Path(__file__).parent / "fixtures" / "official_keys"
SCALES = [Fraction(3, 2), Fraction(2), Fraction(5, 2), Fraction(3), Fraction(4)]


def meta(factory):
    with torch.device("meta"):
        return factory()


# ------------------------------------------------------------------------------------------------ parameter counts

def test_rdn_without_upsampler_counts_the_body_and_the_final_conv():
    # the feature extractor Meta-RDN and RDN-LIIF reuse (no card key): the card's RDN x2 less its UPNet, a 3x3 conv
    # 64 -> 64*2^2 before the pixel shuffle and a 3x3 conv 64 -> 3 after it (weights + biases)
    upsampler = (64 * 256 * 9 + 256) + (64 * 3 * 9 + 3)
    assert count_trainable(meta(lambda: RDN(no_upsampling=True))) == card_for("rdn")["params"]["x2"] - upsampler


def test_meanshift_is_in_state_dict_but_not_trainable():
    m = meta(lambda: EDSR(scale=2, **EDSR_VARIANTS["baseline"]))
    sd = m.state_dict()
    assert {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"} <= set(sd)
    assert not m.sub_mean.weight.requires_grad and not m.add_mean.bias.requires_grad
    total = sum(p.numel() for p in m.parameters())
    assert total - count_trainable(m) == 2 * (9 + 3)


@pytest.mark.parametrize(
    "card,factories",
    [
        ("edsr", {f"x{s}": (lambda s=s: EDSR(scale=s, **EDSR_VARIANTS["edsr"])) for s in (2, 3, 4)}),
        ("edsr-baseline", {f"x{s}": (lambda s=s: EDSR(scale=s, **EDSR_VARIANTS["baseline"])) for s in (2, 3, 4)}),
        ("rdn", {f"x{s}": (lambda s=s: RDN(scale=s)) for s in (2, 3, 4)}),
        ("rcan", {f"x{s}": (lambda s=s: RCAN(scale=s)) for s in (2, 3, 4, 8)}),
        ("metasr", {"all": MetaRDN}),
        ("liif", {"all": lambda: LIIF(make_encoder("edsr-baseline"))}),
        ("liif-rdn", {"all": lambda: LIIF(make_encoder("rdn"))}),
    ],
)
def test_model_card_params_match_the_networks(card, factories):
    params = card_for(card)["params"]
    assert set(params) == set(factories)
    for key, factory in factories.items():
        assert count_trainable(meta(factory)) == params[key], (card, key)


# ------------------------------------------------------------------------------------------------ official key names


def official_keys(fixture: str, tag: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for line in (FIXTURES / f"{fixture}.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        t, key, shape = line.split()
        if t in ("*", tag):
            out.append((key, tuple(int(d) for d in shape.split(","))))
    return out


KEYS = [
    *[("edsr-baseline", f"x{s}", lambda s=s: EDSR(scale=s, **EDSR_VARIANTS["baseline"])) for s in (2, 3, 4)],
    *[("edsr", f"x{s}", lambda s=s: EDSR(scale=s, **EDSR_VARIANTS["edsr"])) for s in (2, 3, 4)],
    *[("rdn", f"x{s}", lambda s=s: RDN(scale=s)) for s in (2, 3, 4)],
    *[("rdn-a", f"x{s}", lambda s=s: RDN(scale=s, RDNconfig="A")) for s in (2, 3, 4)],
    *[("rcan", f"x{s}", lambda s=s: RCAN(scale=s)) for s in (2, 3, 4, 8)],
    ("metasr", "*", MetaRDN),
    ("liif", "*", lambda: LIIF(make_encoder("edsr-baseline"))),
    ("liif-rdn", "*", lambda: LIIF(make_encoder("rdn"))),
]


@pytest.mark.parametrize("fixture,tag,factory", KEYS, ids=[f"{f}-{t}" for f, t, _ in KEYS])
def test_state_dict_keys_match_official(fixture, tag, factory):
    expected = official_keys(fixture, tag)
    assert expected, f"no keys for {fixture} {tag}"
    ours = [(k, tuple(v.shape)) for k, v in meta(factory).state_dict().items()]
    assert [k for k, _ in ours] == [k for k, _ in expected]  # same names, same order
    assert ours == expected  # and shapes


def test_fixture_headers_name_their_source():
    for path in FIXTURES.glob("*.txt"):
        head = [line for line in path.read_text().splitlines() if line.startswith("#")]
        text = "\n".join(head)
        assert "source: https://github.com/" in text and "@ " in text and "command:" in text, path.name


# ------------------------------------------------------------------------------------------------ adapters


@pytest.fixture(scope="module")
def small():
    """Untrained adapters with the small networks (all their scales), built once."""
    return {
        "edsr-baseline": EDSRBaselineUpscaler(allow_untrained=True),
        "liif": LIIFUpscaler(allow_untrained=True),
    }


@pytest.fixture(scope="module")
def big():
    """Untrained adapters with the 15-22M networks, one integer network each (x4: every scale <= 4 works)."""
    return {
        "rdn": RDNUpscaler(allow_untrained=True, scale=4),
        "rcan": RCANUpscaler(allow_untrained=True, scale=4),
        "metasr": MetaSRUpscaler(allow_untrained=True),
        "liif-rdn": LIIFRDNUpscaler(allow_untrained=True),
    }


def lr_batch(h: int, w: int, b: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)


def ceil_size(h, w, s):
    return (math.ceil(h * s), math.ceil(w * s))


EXPECTED_STRATEGY = {
    "edsr-baseline": lambda s: "native" if s in (2, 3, 4) else "ceil-then-down",
    "rdn": lambda s: "native" if s == 4 else "ceil-then-down",
    "rcan": lambda s: "native" if s == 4 else "ceil-then-down",
    "metasr": lambda s: "native",
    "liif": lambda s: "native",
    "liif-rdn": lambda s: "native",
}


@pytest.mark.parametrize("name", ["edsr-baseline", "liif"])
def test_small_adapters_make_the_exact_size_at_every_scale(small, name):
    model = small[name]
    assert model.untrained and model.checkpoint_sha256 is None
    lr = lr_batch(12, 10, b=2)
    for s in SCALES:
        size = ceil_size(12, 10, s)
        sr = model.super_resolve(lr, s, size)
        assert sr.shape == (2, 3, *size) and sr.dtype == torch.float64, (name, s)
        assert float(sr.min()) >= 0.0 and float(sr.max()) <= 1.0
        assert model.strategy_for(s) == EXPECTED_STRATEGY[name](s), (name, s)


@pytest.mark.parametrize("name", ["rdn", "rcan", "metasr", "liif-rdn"])
def test_big_adapters_make_the_exact_size_at_every_scale(big, name):
    model = big[name]
    lr = lr_batch(8, 8)
    for s in SCALES:
        size = ceil_size(8, 8, s)
        sr = model.super_resolve(lr, s, size)
        assert sr.shape == (1, 3, *size) and sr.dtype == torch.float64, (name, s)
        assert 0.0 <= float(sr.min()) and float(sr.max()) <= 1.0
        assert model.strategy_for(s) == EXPECTED_STRATEGY[name](s), (name, s)


def test_full_edsr_single_forward():
    model = create_model("edsr", allow_untrained=True, scale=2)
    assert isinstance(model, EDSRUpscaler) and model.variant == "edsr" and model.scales.integers == {2}
    sr = model.super_resolve(lr_batch(6, 5), Fraction(2), (12, 10))
    assert sr.shape == (1, 3, 12, 10)
    with pytest.raises(UserError, match="cannot run x3: .*needs a network of scale >= 3"):
        model.super_resolve(lr_batch(6, 5), Fraction(3), (18, 15))


def test_ceil_then_down_is_the_next_scale_then_matlab_bicubic(small):
    model = small["edsr-baseline"]
    lr = lr_batch(12, 10)
    s, size = Fraction(5, 2), (30, 25)
    with torch.inference_mode():
        x3 = model.net(3)(lr.float() * 255.0).double()
    expected = (imresize(x3, size=size) / 255.0).clamp(0, 1)
    assert torch.equal(model.super_resolve(lr, s, size), expected)
    # a native integer scale is the network output itself; a floored protocol size is its top-left crop
    with torch.inference_mode():
        x2 = model.net(2)(lr.float() * 255.0).double()
    assert torch.equal(model.super_resolve(lr, Fraction(2), (24, 20)), (x2 / 255.0).clamp(0, 1))
    assert torch.equal(model.super_resolve(lr, Fraction(2), (23, 19)), (x2[..., :23, :19] / 255.0).clamp(0, 1))
    with pytest.raises(UserError, match="needs a network of scale >= 5"):
        model.super_resolve(lr, Fraction(5), (60, 50))


def test_untrained_networks_are_deterministic_and_built_outside_inference_mode():
    a = EDSRBaselineUpscaler(allow_untrained=True, scale=2)
    b = EDSRBaselineUpscaler(allow_untrained=True, scale=2)
    lr = lr_batch(8, 8)
    with torch.inference_mode():  # the runner calls super_resolve like this; the lazy build must still work
        ya = a.super_resolve(lr, Fraction(2), (16, 16))
    assert torch.equal(ya, b.super_resolve(lr, Fraction(2), (16, 16)))
    assert all(not p.is_inference() for p in a.net(2).parameters())


def test_metasr_floor_size_is_the_top_left_of_the_ceil_size(big):
    model = big["metasr"]
    lr = lr_batch(7, 9)
    s = Fraction(23, 10)
    full = model.super_resolve(lr, s, ceil_size(7, 9, s))  # 17 x 21
    floor = model.super_resolve(lr, s, (int(2.3 * 7), int(2.3 * 9)))  # 16 x 20, the official int(r*h)
    assert full.shape[-2:] == (17, 21) and floor.shape[-2:] == (16, 20)
    assert torch.allclose(full[..., :16, :20], floor, atol=1e-6, rtol=0)
    assert model.strategy_for(Fraction(6)) == "extrapolate"


def test_metasr_meta_upscale_is_a_per_pixel_convolution():
    """Independent statement of Meta-Upscale: HR (i, j) -> LR (floor(i/r), floor(j/r)), kernel from (1/r, dy, dx)."""
    torch.manual_seed(0)
    with torch.device("meta"):
        net = MetaRDN()
    p2w = net.P2W.to_empty(device="cpu")
    for p in p2w.parameters():
        torch.nn.init.normal_(p, std=0.05)
    feat = torch.randn(2, 64, 5, 6)
    r = 1.7
    out = net.meta_upscale(feat, r, (8, 10))
    padded = F.pad(feat, (1, 1, 1, 1))
    for i, j in [(0, 0), (3, 7), (7, 9), (5, 2)]:
        ci, cj = torch.tensor([i], dtype=torch.float32) * (1.0 / r), torch.tensor([j], dtype=torch.float32) * (1.0 / r)
        li, lj = int(ci.floor()), int(cj.floor())
        pos = torch.tensor([[1.0 / r, float(ci - ci.floor()), float(cj - cj.floor())]])
        kernel = p2w(pos).view(64, 3, 3, 3)  # (c, kh, kw, out) as the official view(..., -1, 3) of an unfold order
        patch = padded[:, :, li:li + 3, lj:lj + 3]
        expected = torch.einsum("nchw,chwo->no", patch, kernel)
        assert torch.allclose(out[:, :, i, j], expected, atol=1e-5), (i, j)
    net.chunk_pixels = 7  # chunking by rows changes nothing
    assert torch.allclose(net.meta_upscale(feat, r, (8, 10)), out, atol=1e-5, rtol=1e-5)


def test_liif_query_chunks_do_not_change_the_result(small):
    model = small["liif"]
    lr = lr_batch(6, 5)
    whole = model.super_resolve(lr, Fraction(3), (18, 15))
    old = model.query_chunk
    try:
        model.query_chunk = 7
        assert torch.allclose(model.super_resolve(lr, Fraction(3), (18, 15)), whole, atol=1e-6, rtol=0)
    finally:
        model.query_chunk = old


# ------------------------------------------------------------------------------------------------ checkpoints


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("container", ["bare", "state_dict", "module"])
def test_edsr_baseline_strict_reload_and_scale_inference(tmp_path, small, container):
    src = small["edsr-baseline"]
    lr = lr_batch(12, 10)
    for k in (2, 3, 4):
        sd = src.net(k).state_dict()
        obj = {"bare": sd, "state_dict": {"state_dict": sd, "epoch": 3},
               "module": {f"module.{n}": v for n, v in sd.items()}}[container]
        path = tmp_path / f"edsr_baseline_x{k}.pt"
        torch.save(obj, path)
        model = EDSRBaselineUpscaler(checkpoint=str(path))  # scale inferred from the tail
        assert model.scales.integers == {k} and not model.untrained
        assert model.checkpoint_sha256 == _sha(path)
        size = (12 * k, 10 * k)
        assert torch.equal(model.super_resolve(lr, Fraction(k), size), src.super_resolve(lr, Fraction(k), size))


def test_several_checkpoints_one_per_scale(tmp_path, small):
    src = small["edsr-baseline"]
    paths = []
    for k in (2, 4):
        paths.append(tmp_path / f"x{k}.pt")
        torch.save(src.net(k).state_dict(), paths[-1])
    model = EDSRBaselineUpscaler(checkpoint=os.pathsep.join(map(str, paths)))
    assert model.scales.integers == {2, 4}
    assert model.checkpoint_sha256 == "+".join(_sha(p) for p in paths)
    assert model.strategy_for(Fraction(3)) == "ceil-then-down"
    lr = lr_batch(12, 10)
    assert torch.equal(model.super_resolve(lr, Fraction(3), (36, 30)),
                       (imresize(src.net(4)(lr.float() * 255).double().detach(), size=(36, 30)) / 255).clamp(0, 1))
    with pytest.raises(UserError, match="scale=2 was asked"):
        EDSRBaselineUpscaler(checkpoint=str(paths[1]), scale=2)


def test_liif_release_container_strict_reload(tmp_path, small):
    src = small["liif"]
    spec = {"name": "liif", "args": {
        "encoder_spec": {"name": "edsr-baseline", "args": {"no_upsampling": True}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256, 256, 256, 256]}}},
        "sd": src.net.state_dict()}
    path = tmp_path / "edsr-baseline-liif.pth"
    torch.save({"model": spec, "optimizer": {"name": "adam", "args": {"lr": 1e-4}, "sd": {}}, "epoch": 1000}, path)
    model = create_model("liif", checkpoint=str(path))
    assert model.checkpoint_sha256 == _sha(path) and not model.untrained
    lr = lr_batch(12, 10)
    for s in (Fraction(5, 2), Fraction(4)):
        size = ceil_size(12, 10, s)
        assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))
    with pytest.raises(UserError, match=r"'edsr-baseline' encoder.*--models liif=PATH"):
        create_model("liif-rdn", checkpoint=str(path))
    with pytest.raises(UserError, match=r"LIIF-repo 'liif' model.*--models liif=PATH"):
        create_model("edsr-baseline", checkpoint=str(path))


@pytest.mark.parametrize("name", ["rdn", "rcan", "metasr", "liif-rdn"])
def test_big_models_strict_reload(tmp_path, big, name):
    src = big[name]
    net = src.net(4) if name in ("rdn", "rcan") else src.net
    path = tmp_path / f"{name}.pt"
    sd = net.state_dict()
    torch.save(sd if name != "liif-rdn"
               else {"model": {"name": "liif", "args": {"encoder_spec": {"name": "rdn"}}, "sd": sd}},
               path)
    model = create_model(name, checkpoint=str(path))
    assert model.checkpoint_sha256 == _sha(path)
    lr = lr_batch(8, 8)
    s = Fraction(4) if name in ("rdn", "rcan") else Fraction(5, 2)
    size = ceil_size(8, 8, s)
    assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))
    if name in ("rdn", "rcan"):
        assert model.scales.integers == {4}


def test_full_edsr_strict_reload(tmp_path):
    src = EDSRUpscaler(allow_untrained=True, scale=2)
    path = tmp_path / "edsr_x2.pt"
    torch.save(src.net(2).state_dict(), path)
    model = create_model("edsr", checkpoint=str(path))
    assert model.scales.integers == {2}
    # MeanShift stays frozen after the assign-load
    assert count_trainable(model.net(2)) == card_for("edsr")["params"]["x2"]
    lr = lr_batch(5, 4)
    assert torch.equal(model.super_resolve(lr, Fraction(2), (10, 8)), src.super_resolve(lr, Fraction(2), (10, 8)))


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("name", ["edsr", "edsr-baseline", "rdn", "rcan", "metasr", "meta-rdn", "liif", "liif-rdn"])
def test_learned_model_without_weights_names_the_ways_out(name):
    with pytest.raises(UserError) as e:
        create_model(name)
    msg = str(e.value)
    assert "needs weights" in msg and "=PATH/TO/" in msg and "srbench train" in msg and "--allow-untrained" in msg
    assert "\n" not in msg


def test_wrong_checkpoint_names_keys_and_shapes(tmp_path, small):
    path = tmp_path / "edsr_baseline_x2.pt"
    torch.save(small["edsr-baseline"].net(2).state_dict(), path)
    with pytest.raises(UserError) as e:
        create_model("rcan", checkpoint=str(path))
    msg = str(e.value)
    assert "does not fit model 'rcan'" in msg and "missing key(s)" in msg and "unexpected key(s)" in msg
    assert "body.0.body.0.body.3.conv_du.0.weight" in msg and "more)" in msg
    with pytest.raises(UserError) as e:  # same keys, other widths: shape mismatches and a hint
        create_model("edsr", checkpoint=str(path))
    msg = str(e.value)
    assert "shape mismatch" in msg and "head.0.weight (64,3,3,3) vs model (256,3,3,3)" in msg
    assert "--models edsr-baseline=PATH" in msg


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        create_model("rcan", checkpoint=str(tmp_path / "nope.pt"))
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(UserError, match="holds no state_dict"):
        create_model("edsr-baseline", checkpoint=str(tensor))
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module: weights_only refuses it
    with pytest.raises(UserError, match=r"pickled Python objects \(torch.nn.modules.linear.Linear\).*weights_only"):
        create_model("edsr-baseline", checkpoint=str(pickled))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="could not be read"):
        create_model("edsr-baseline", checkpoint=str(garbage))


def test_arbitrary_scale_models_take_no_scale():
    with pytest.raises(UserError, match="takes no scale"):
        MetaSRUpscaler(allow_untrained=True, scale=2)
    with pytest.raises(UserError, match="not x5"):
        EDSRBaselineUpscaler(allow_untrained=True, scale=5)
