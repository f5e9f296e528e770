"""Y-only families (SRCNN, VDSR, LapSRN, MS-LapSRN): parameter counts, the SR_LapSRN.m colour pipeline, output sizes
and strategies, strict reloads, and the MatConvNet importer on the official LapSRN / MS-LapSRN files.

Everything runs on CPU with tiny inputs (LR 10x9, batch 2); the official-file tests read the six .mat files in
../shared/weights/lapsrn-official and are skipped, with the reason, where that folder is absent.
"""

from __future__ import annotations

import hashlib
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED, need_shared
from sr_bench.errors import UserError
from sr_bench.imaging.color import rgb2ycbcr_matlab_double, ycbcr2rgb_matlab_double
from sr_bench.imaging.resize import imresize
from sr_bench.models import create_model
from sr_bench.models.archs.blocks import count_trainable
from sr_bench.models.archs.lapsrn import CroppedConvTranspose2d, LapSRN, LapSRNUpscaler
from sr_bench.models.archs.mslapsrn import MSLapSRN, MSLapSRNUpscaler, levels_for
from sr_bench.models.archs.srcnn import SRCNN, SRCNNUpscaler
from sr_bench.models.archs.vdsr import VDSR, VDSRUpscaler
from sr_bench.models.cards import card_for
from sr_bench.models.luma import luma_pipeline

WEIGHTS = SHARED / "weights" / "lapsrn-official"
SCALES = [Fraction(3, 2), Fraction(2), Fraction(5, 2), Fraction(3), Fraction(4)]
OFFICIAL = ["LapSRN_x2.mat", "LapSRN_x4.mat", "LapSRN_x8.mat",
            "MSLapSRN_D5R2.mat", "MSLapSRN_D5R5.mat", "MSLapSRN_D5R8.mat"]


def meta(factory):
    with torch.device("meta"):
        return factory()


def lr_batch(h: int = 10, w: int = 9, b: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)


def ceil_size(h, w, s):
    return (math.ceil(h * s), math.ceil(w * s))


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def need_weights() -> Path:
    if not WEIGHTS.is_dir():
        need_shared(WEIGHTS)
    missing = [f for f in OFFICIAL if not (WEIGHTS / f).is_file()]
    if missing:
        need_shared(*(WEIGHTS / m for m in missing))
    return WEIGHTS


# ------------------------------------------------------------------------------------------------ parameter counts

PARAMS = {  # papers.md §0
    "srcnn 9-5-5": (lambda: SRCNN(5), 57_281),
    "srcnn 9-1-5": (lambda: SRCNN(1), 8_129),
    "vdsr": (VDSR, 665_921),
    "lapsrn x2": (lambda: LapSRN(2), 407_441),
    "lapsrn x4": (lambda: LapSRN(4), 814_242),
    "lapsrn x8": (lambda: LapSRN(8), 1_221_043),
    "lapsrn x8, depth 5 (the released LapSRN_x8.mat)": (lambda: LapSRN(8, depth=5), 667_123),
    "mslapsrn D5R2": (lambda: MSLapSRN(5, 2), 222_801),
    "mslapsrn D5R5": (lambda: MSLapSRN(5, 5), 222_801),
    "mslapsrn D5R8": (lambda: MSLapSRN(5, 8), 222_801),
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count_matches_papers_md(name):
    factory, expected = PARAMS[name]
    assert count_trainable(meta(factory)) == expected


@pytest.mark.parametrize("card,factories", [
    ("srcnn", {"9-5-5": lambda: SRCNN(5), "9-1-5": lambda: SRCNN(1)}),
    ("vdsr", {"all": VDSR}),
    ("lapsrn", {**{f"x{k}": (lambda k=k: LapSRN(k)) for k in (2, 4, 8)}, "x8-d5": lambda: LapSRN(8, depth=5)}),
    ("mslapsrn", {"all": MSLapSRN}),
])
def test_model_card_params_match_the_networks(card, factories):
    params = card_for(card)["params"]
    assert set(params) == set(factories)
    for key, factory in factories.items():
        assert count_trainable(meta(factory)) == params[key], (card, key)


def test_cards_describe_the_y_pipeline():
    for name, up in (("srcnn", "pre"), ("vdsr", "pre"), ("lapsrn", "progressive"), ("mslapsrn", "progressive")):
        card = card_for(name)
        assert card["input"]["color"] == "y" and card["input"]["upsampling"] == up
        assert card["learned"] is True and card["published"]
    assert card_for("srcnn")["scales"]["range"] == ["1", "4"] and card_for("vdsr")["scales"]["range"] == ["1", "4"]
    assert card_for("lapsrn")["scales"]["integers"] == [2, 4, 8] == card_for("mslapsrn")["scales"]["integers"]


# ------------------------------------------------------------------------------------------------ colour helpers


def test_matlab_double_ycbcr_round_trip_and_anchors():
    rgb = lr_batch(5, 4, b=1)
    ycc = rgb2ycbcr_matlab_double(rgb)
    assert torch.allclose(ycbcr2rgb_matlab_double(ycc, clip=False), rgb, atol=1e-12, rtol=0)
    black, white = torch.zeros(3, 1, 1, dtype=torch.float64), torch.ones(3, 1, 1, dtype=torch.float64)
    assert torch.allclose(rgb2ycbcr_matlab_double(black).flatten(),
                          torch.tensor([16.0, 128, 128], dtype=torch.float64) / 255.0, atol=1e-15)
    assert torch.allclose(rgb2ycbcr_matlab_double(white).flatten(),
                          torch.tensor([235.0, 128, 128], dtype=torch.float64) / 255.0, atol=1e-12)
    # MATLAB clips floating-point ycbcr2rgb output to [0, 1]
    out = ycbcr2rgb_matlab_double(torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64).view(3, 1, 1))
    assert float(out.max()) == 1.0


# ------------------------------------------------------------------------------------------------ adapters


@pytest.fixture(scope="module")
def untrained():
    return {
        "srcnn": SRCNNUpscaler(allow_untrained=True),
        "srcnn-915": SRCNNUpscaler(allow_untrained=True, variant="9-1-5"),
        "vdsr": VDSRUpscaler(allow_untrained=True),
        "lapsrn": LapSRNUpscaler(allow_untrained=True),
        "mslapsrn": MSLapSRNUpscaler(allow_untrained=True),
    }


EXPECTED_STRATEGY = {
    "srcnn": lambda s: "native",
    "srcnn-915": lambda s: "native",
    "vdsr": lambda s: "native",
    "lapsrn": lambda s: "native" if s in (2, 4, 8) else "ceil-then-down",
    "mslapsrn": lambda s: "native" if s in (2, 4, 8) else "ceil-then-down",
}


@pytest.mark.parametrize("name", list(EXPECTED_STRATEGY))
def test_adapters_make_the_exact_size_at_every_scale(untrained, name):
    model = untrained[name]
    assert model.untrained and model.checkpoint_sha256 is None
    lr = lr_batch()
    for s in SCALES:
        size = ceil_size(10, 9, s)
        sr = model.super_resolve(lr, s, size)
        assert sr.shape == (2, 3, *size) and sr.dtype == torch.float64, (name, s)
        assert float(sr.min()) >= 0.0 and float(sr.max()) <= 1.0
        assert model.strategy_for(s) == EXPECTED_STRATEGY[name](s), (name, s)
        floor = (int(10 * s), int(9 * s))  # a floored protocol size is the top-left of the full output
        assert torch.equal(model.super_resolve(lr, s, floor), sr[..., : floor[0], : floor[1]])


def test_strategy_names_outside_the_trained_scales(untrained):
    assert untrained["vdsr"].strategy_for(Fraction(6)) == "bicubic-pre"
    assert untrained["srcnn"].strategy_for(Fraction(8)) == "bicubic-pre"
    assert untrained["lapsrn"].strategy_for(Fraction(8)) == "native"
    assert untrained["lapsrn"].strategy_for(Fraction(6)) == "ceil-then-down"
    assert untrained["mslapsrn"].strategy_for(Fraction(7, 2)) == "ceil-then-down"
    assert [levels_for(Fraction(s)) for s in (1, 1.5, 2, 2.5, 3, 4, 5, 8)] == [1, 1, 1, 2, 2, 2, 3, 3]
    with pytest.raises(UserError, match="trained for x2, x4, x8"):
        untrained["mslapsrn"].super_resolve(lr_batch(3, 3, b=1), Fraction(9), (27, 27))
    single = LapSRNUpscaler(allow_untrained=True, scale=2)
    assert single.scales.integers == {2}
    with pytest.raises(UserError, match="cannot run x3: .*needs a network of scale >= 3"):
        single.super_resolve(lr_batch(3, 3, b=1), Fraction(3), (9, 9))


@torch.inference_mode()
def _manual(lr, s, y_fn):
    """SR_LapSRN.m written out: rgb2ycbcr, imresize(img_LR, s), network Y resized to the imresize size, ycbcr2rgb."""
    ycc = rgb2ycbcr_matlab_double(lr)
    up = imresize(ycc, scale=s)
    y = y_fn(ycc[:, :1], up[:, :1]).double()
    if y.shape[-2:] != up.shape[-2:]:
        y = imresize(y, size=tuple(up.shape[-2:]))
    up[:, :1] = y
    return ycbcr2rgb_matlab_double(up)


def test_progressive_ceil_then_down_is_the_pyramid_then_matlab_bicubic(untrained):
    lr = lr_batch()
    ms, lap = untrained["mslapsrn"], untrained["lapsrn"]
    for s in (Fraction(3), Fraction(5, 2), Fraction(3, 2)):
        n = levels_for(s)
        expected = _manual(lr, s, lambda y, _, n=n: ms.net(y.float(), levels=n))
        assert torch.allclose(ms.super_resolve(lr, s, ceil_size(10, 9, s)), expected, atol=1e-6, rtol=0), s
        expected = _manual(lr, s, lambda y, _, n=n: lap.net(2**n)(y.float()))
        assert torch.allclose(lap.super_resolve(lr, s, ceil_size(10, 9, s)), expected, atol=1e-6, rtol=0), s


def test_pre_upsampling_networks_see_the_bicubic_y(untrained):
    lr = lr_batch()
    for name in ("vdsr", "srcnn"):
        model = untrained[name]
        for s in (Fraction(2), Fraction(5, 2)):
            expected = _manual(lr, s, lambda _, y_up, model=model: model.net(y_up.float()))
            assert torch.allclose(model.super_resolve(lr, s, ceil_size(10, 9, s)), expected, atol=1e-6, rtol=0)


def test_luma_pipeline_with_identity_network_is_matlab_bicubic():
    """With the network replaced by bicubic Y, the pipeline is imresize of the image (ycbcr conversions cancel)."""
    lr = lr_batch()
    s = Fraction(3)
    out = luma_pipeline(lr, s, ceil_size(10, 9, s), lambda y, y_up: y_up, "identity")
    assert torch.allclose(out, imresize(lr, scale=s).clamp(0, 1), atol=1e-12, rtol=0)


def test_grey_input_stays_grey_and_the_plane_path(untrained):
    g = lr_batch(b=1)[:, :1]
    out = untrained["mslapsrn"].super_resolve(g.expand(1, 3, 10, 9), Fraction(2), (20, 18))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-12) and torch.allclose(out[:, 0], out[:, 2], atol=1e-12)
    plane = untrained["mslapsrn"].super_resolve_plane(g, Fraction(3), (30, 27))
    assert plane.shape == (1, 1, 30, 27)
    with torch.inference_mode():
        expected = imresize(untrained["mslapsrn"].net(g.float(), levels=2).double(), size=(30, 27))
    assert torch.allclose(plane, expected, atol=1e-6, rtol=0)


def test_untrained_networks_are_deterministic_and_built_outside_inference_mode():
    with torch.inference_mode():
        a = MSLapSRNUpscaler(allow_untrained=True, recursions=2)
        b = MSLapSRNUpscaler(allow_untrained=True, recursions=2)
        lr = lr_batch(6, 5, b=1)
        ya = a.super_resolve(lr, Fraction(2), (12, 10))
    assert torch.equal(ya, b.super_resolve(lr, Fraction(2), (12, 10)))
    assert all(not p.is_inference() for p in a.net.parameters())
    assert a.config["variant"] == "D5R2" == MSLapSRNUpscaler(allow_untrained=True, variant="d5r2").config["variant"]
    with pytest.raises(UserError, match="contradicts recursions=3"):
        MSLapSRNUpscaler(allow_untrained=True, variant="D5R2", recursions=3)
    lap = LapSRNUpscaler(allow_untrained=True)
    with torch.inference_mode():
        lap.super_resolve(lr, Fraction(4), (24, 20))
    assert all(not p.is_inference() for p in lap.net(4).parameters())


# ------------------------------------------------------------------------------------------------ transposed conv


def _matconvnet_convt(x: np.ndarray, f: np.ndarray, bias, up: int, crop) -> np.ndarray:
    """vl_nnconvt by its definition: x (H, W, D), f (FH, FW, K, D) in MatConvNet layout; the adjoint of vl_nnconv:
    y_full(u*i + a, u*j + b, k) += f(a, b, k, d) * x(i, j, d), then crop [top bottom left right]."""
    h, w, _ = x.shape
    fh, fw, k, _ = f.shape
    y = np.zeros((up * (h - 1) + fh, up * (w - 1) + fw, k))
    for i in range(h):
        for j in range(w):
            y[up * i: up * i + fh, up * j: up * j + fw, :] += np.einsum("abkd,d->abk", f, x[i, j])
    if bias is not None:
        y += bias
    top, bottom, left, right = crop
    return y[top: y.shape[0] - bottom, left: y.shape[1] - right]


@pytest.mark.parametrize("fh,cin,cout,crop",
                         [(3, 4, 5, (0, 1, 0, 1)), (4, 1, 1, (1, 1, 1, 1)), (3, 2, 3, (1, 0, 2, 0))])
def test_cropped_conv_transpose_is_matconvnet_convt(fh, cin, cout, crop):
    rng = np.random.default_rng(0)
    f = rng.standard_normal((fh, fh + 1 if fh == 3 else fh, cout, cin))  # non-square, to catch an H/W swap
    x = rng.standard_normal((5, 4, cin))
    bias = rng.standard_normal(cout)
    m = CroppedConvTranspose2d(cin, cout, (f.shape[0], f.shape[1]), stride=2, crop=crop).double()
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(f.transpose(3, 2, 0, 1).copy()))  # the importer's layout conversion
        m.bias.copy_(torch.from_numpy(bias))
    got = m(torch.from_numpy(x.transpose(2, 0, 1).copy())[None])[0].detach().numpy().transpose(1, 2, 0)
    want = _matconvnet_convt(x, f, bias, 2, crop)
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-10)
    if crop == (0, 1, 0, 1) and fh == 3 and f.shape[1] == 3:
        assert got.shape[:2] == (10, 8)  # 3x3, crop [0 1 0 1]: exactly 2H x 2W


def test_matconvnet_conv_layout_is_correlation_without_flip():
    """vl_nnconv: y(i, j, k) = sum f(a, b, d, k) x(i + a - p, j + b - p, d) -> Conv2d weight f.transpose(3, 2, 0, 1)."""
    rng = np.random.default_rng(1)
    f = rng.standard_normal((3, 3, 2, 3))
    x = rng.standard_normal((6, 5, 2))
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    want = np.zeros((6, 5, 3))
    for a in range(3):
        for b in range(3):
            want += np.einsum("ijd,dk->ijk", xp[a: a + 6, b: b + 5], f[a, b])
    got = F.conv2d(torch.from_numpy(x.transpose(2, 0, 1).copy())[None],
                   torch.from_numpy(f.transpose(3, 2, 0, 1).copy()), padding=1)[0].numpy().transpose(1, 2, 0)
    assert np.allclose(got, want, atol=1e-10)


# ------------------------------------------------------------------------------------------------ our checkpoints


@pytest.mark.parametrize("name", ["srcnn", "srcnn-915", "vdsr"])
def test_pre_upsampling_strict_reload(tmp_path, untrained, name):
    src = untrained[name]
    path = tmp_path / f"{name}.pt"
    torch.save(src.net.state_dict(), path)
    model = create_model(name.split("-")[0], checkpoint=str(path))
    assert model.checkpoint_sha256 == sha(path) and not model.untrained
    if name.startswith("srcnn"):
        assert model.variant == src.variant  # inferred from conv2
    lr = lr_batch()
    for s in (Fraction(2), Fraction(5, 2)):
        size = ceil_size(10, 9, s)
        assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))


def test_lapsrn_strict_reload_one_file_per_scale(tmp_path, untrained):
    src = untrained["lapsrn"]
    paths = []
    for k in (2, 4):
        paths.append(tmp_path / f"lapsrn_x{k}.pt")
        torch.save({"state_dict": src.net(k).state_dict()}, paths[-1])
    model = create_model("lapsrn", checkpoint=os.pathsep.join(map(str, paths)))
    assert model.scales.integers == {2, 4} and model.checkpoint_sha256 == "+".join(sha(p) for p in paths)
    lr = lr_batch()
    for s in (Fraction(2), Fraction(3), Fraction(4)):
        size = ceil_size(10, 9, s)
        assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))
    with pytest.raises(UserError, match="scale=2 was asked"):
        LapSRNUpscaler(checkpoint=str(paths[1]), scale=2)
    with pytest.raises(UserError, match="two checkpoints for x2"):
        LapSRNUpscaler(checkpoint=os.pathsep.join(map(str, [paths[0], paths[0]])))


def test_mslapsrn_strict_reload_needs_r(tmp_path, untrained):
    src = untrained["mslapsrn"]  # D5R8
    path = tmp_path / "mine.pt"
    torch.save(src.net.state_dict(), path)
    with pytest.raises(UserError, match="recursions=R"):
        create_model("mslapsrn", checkpoint=str(path))
    lr = lr_batch()
    named = tmp_path / "mslapsrn_D5R8.pt"
    torch.save(src.net.state_dict(), named)
    for model in (create_model("mslapsrn", checkpoint=str(path), recursions=8),
                  create_model("mslapsrn", checkpoint=str(named))):
        assert model.config["variant"] == "D5R8"
        for s in (Fraction(2), Fraction(3)):
            size = ceil_size(10, 9, s)
            assert torch.equal(model.super_resolve(lr, s, size), src.super_resolve(lr, s, size))


def test_wrong_state_dict_names_keys(tmp_path, untrained):
    path = tmp_path / "vdsr.pt"
    torch.save(untrained["vdsr"].net.state_dict(), path)
    with pytest.raises(UserError) as e:
        create_model("srcnn", checkpoint=str(path))
    msg = str(e.value)
    assert "does not fit model 'srcnn'" in msg and "missing key(s): conv1.weight" in msg and "input.weight" in msg
    with pytest.raises(UserError, match="not a LapSRN state_dict"):
        create_model("lapsrn", checkpoint=str(path))



# ------------------------------------------------------------------------------------------------ official .mat files


def _card_sha(card: str, file: str) -> str:
    return next(w["sha256"] for w in card_for(card)["weights"] if w["file"] == file)


@pytest.mark.parametrize("k,depth,params", [(2, 10, 407_441), (4, 10, 814_242), (8, 5, 667_123)])
def test_official_lapsrn_files_load(k, depth, params):
    """The released x8 model has 5 convs per level (papers.md §0 counts depth 10: 1,221,043)."""
    weights = need_weights()
    from sr_bench.models.matconvnet import read_dagnn

    path = weights / f"LapSRN_x{k}.mat"
    model = create_model("lapsrn", checkpoint=str(path))
    assert model.scales.integers == {k} and model.config["depth"] == depth
    assert model.checkpoint_sha256 == sha(path) == _card_sha("lapsrn", path.name)
    net = model.net(k)
    assert count_trainable(net) == params
    dag = read_dagnn(path, "lapsrn")
    top = int(math.log2(k))  # MatConvNet level{top} is our levels.0
    up = dag.params[f"level{top}_upconv_f"]  # FH x FW x Cout x Cin
    assert torch.equal(net.levels[0].upconv.weight[5, 7].cpu(), torch.from_numpy(up[:, :, 7, 5]))
    res = dag.params["level1_residual_conv_f"]  # 3 x 3 x 64 (the trailing x1 dropped by MATLAB)
    assert res.shape == (3, 3, 64)
    assert torch.equal(net.levels[-1].residual.weight[0, 9].cpu(), torch.from_numpy(res[:, :, 9]))
    img = dag.params["level1_img_up_f"]  # 4 x 4, trained (not symmetric any more): rows stay rows
    assert torch.equal(net.levels[-1].img_up.weight[0, 0].cpu(), torch.from_numpy(img))
    assert not torch.equal(torch.from_numpy(img), torch.from_numpy(img).T)
    sr = model.super_resolve(lr_batch(6, 5, b=1), Fraction(k), (6 * k, 5 * k))
    assert sr.shape == (1, 3, 6 * k, 5 * k)


@pytest.mark.parametrize("r", [2, 5, 8])
def test_official_mslapsrn_files_load(r):
    weights = need_weights()
    path = weights / f"MSLapSRN_D5R{r}.mat"
    model = create_model("mslapsrn", checkpoint=str(path))
    assert model.config["variant"] == f"D5R{r}" and model.net.recursions == r
    assert model.checkpoint_sha256 == sha(path) == _card_sha("mslapsrn", path.name)
    assert count_trainable(model.net) == 222_801
    with pytest.raises(UserError, match="conflicting recursions"):
        create_model("mslapsrn", checkpoint=str(path), recursions=r + 1)
    for k in (2, 4, 8):
        assert model.super_resolve(lr_batch(5, 4, b=1), Fraction(k), (5 * k, 4 * k)).shape == (1, 3, 5 * k, 4 * k)


def test_official_mslapsrn_r_comes_from_the_layers_without_name_or_opts(tmp_path):
    weights = need_weights()
    copy = tmp_path / "renamed.mat"  # no D5R5 in the name, no _opts.mat beside it
    copy.write_bytes((weights / "MSLapSRN_D5R5.mat").read_bytes())
    assert create_model("mslapsrn", checkpoint=str(copy)).net.recursions == 5


def test_official_files_given_to_the_wrong_family():
    weights = need_weights()
    with pytest.raises(UserError, match="MS-LapSRN file.*--models mslapsrn=PATH"):
        create_model("lapsrn", checkpoint=str(weights / "MSLapSRN_D5R8.mat"))
    with pytest.raises(UserError, match="LapSRN file.*--models lapsrn=PATH"):
        create_model("mslapsrn", checkpoint=str(weights / "LapSRN_x2.mat"))
    with pytest.raises(UserError, match="no MatConvNet 'net' variable.*not the \\*_opts.mat"):
        create_model("mslapsrn", checkpoint=str(weights / "MSLapSRN_D5R8_opts.mat"))
    with pytest.raises(UserError, match="importer covers the LapSRN/MS-LapSRN"):
        create_model("vdsr", checkpoint=str(weights / "LapSRN_x2.mat"))


def _matlab_safe(x):
    """loadmat(struct_as_record=True) output made writable by savemat (empty cells come back as None)."""
    if x is None:
        return np.zeros((0, 0))
    if isinstance(x, np.ndarray) and x.dtype.names:
        out = x.copy()
        for idx in np.ndindex(x.shape):
            for f in x.dtype.names:
                out[idx][f] = _matlab_safe(x[idx][f])
        return out
    if isinstance(x, np.ndarray) and x.dtype == object:
        out = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(x.shape):
            out[idx] = _matlab_safe(x[idx])
        return out
    return x


def _rewrite(src: Path, dst: Path, edit) -> Path:
    import scipy.io

    net = _matlab_safe(scipy.io.loadmat(str(src), squeeze_me=False, struct_as_record=True)["net"])
    params = net[0, 0]["params"]
    names = [str(params[0, i]["name"][0]) for i in range(params.shape[1])]
    edit(params, names, net[0, 0]["layers"])
    scipy.io.savemat(str(dst), {"net": net})
    return dst


def test_tampered_official_file_names_the_params(tmp_path):
    weights = need_weights()

    def edit(params, names, layers):
        params[0, names.index("level1_conv3_f")]["name"] = np.array(["level1_conv3_w"])
        params[0, names.index("level1_upconv_b")]["value"] = np.zeros((1, 32), np.float32)

    # untouched round trip loads, so the errors below come from the edits
    same = _rewrite(weights / "LapSRN_x2.mat", tmp_path / "same.mat", lambda *a: None)
    assert create_model("lapsrn", checkpoint=str(same)).scales.integers == {2}
    bad = _rewrite(weights / "LapSRN_x2.mat", tmp_path / "tampered.mat", edit)
    with pytest.raises(UserError) as e:
        create_model("lapsrn", checkpoint=str(bad))
    msg = str(e.value)
    assert "does not fit model 'lapsrn'" in msg and "\n" not in msg
    assert "missing param(s): levels.0.convs.2.weight (MatConvNet level1_conv3_f)" in msg
    assert "unexpected param(s): level1_conv3_w (3,3,64,64)" in msg
    assert "shape mismatch(es): level1_upconv_b (1,32) -> levels.0.upconv.bias (32) vs model (64)" in msg


def test_tampered_layer_options_are_refused(tmp_path):
    weights = need_weights()

    def edit(params, names, layers):
        for i in range(layers.shape[1]):
            if str(layers[0, i]["name"][0]) == "level1_upconv":
                layers[0, i]["block"][0, 0]["crop"] = np.array([[1, 0, 1, 0]], dtype=np.uint8)

    bad = _rewrite(weights / "LapSRN_x2.mat", tmp_path / "crop.mat", edit)
    with pytest.raises(UserError, match=r"level1_upconv: convt \(3, 3\) crop \[1, 0, 1, 0\], expected \(0, 1, 0, 1\)"):
        create_model("lapsrn", checkpoint=str(bad))


def test_not_a_mat_file(tmp_path):
    bad = tmp_path / "x.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file, but truncated")
    with pytest.raises(UserError, match="could not be read as a MATLAB .mat file"):
        create_model("lapsrn", checkpoint=str(bad))
    with pytest.raises(UserError, match="not found"):
        create_model("mslapsrn", checkpoint=str(tmp_path / "missing.mat"))
