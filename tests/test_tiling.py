"""``--tile``: every built-in family gives the whole-image output from tiles (``sr_bench.models.tiling``).

Families are built untrained (seeded) with fewer and narrower blocks of their own layers (SRCNN at its card size):
the adapters, layers and decimal-scale paths are the ones a run uses, at a cost a CI CPU affords; docs/tiling.md
measures the full networks. Each runs with its family's recommended overlap (``tile_overlap``) on a 12x112 LR strip
cut into 16-pixel tiles, so that some tiles see neither end of the strip: their context really is cut. Families with
channel attention pool over the whole image, which no tile sees alone: they run pass after pass with the image-wide
statistics of the pass before (``tiling.image_statistic``), and the test shows that this, not one pass, gives the
whole-image output.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from sr_bench.imaging.resize import imresize
from sr_bench.models import create_model, tiling
from sr_bench.models.archs import rdn as rdn_arch
from sr_bench.models.archs.asdn import ASDN, FSDN
from sr_bench.models.archs.blocks import build_module
from sr_bench.models.archs.csfm import CSFM
from sr_bench.models.archs.dbdn import DBDN
from sr_bench.models.archs.edsr import EDSR
from sr_bench.models.archs.liif import LIIF, make_encoder
from sr_bench.models.archs.metasr import MetaRDN
from sr_bench.models.archs.mslapsrn import MSLapSRN
from sr_bench.models.archs.rcan import RCAN
from sr_bench.models.archs.rdn import RDN
from sr_bench.models.archs.vdsr import VDSR
from sr_bench.models.interface import ScaleSupport, Upscaler
from sr_bench.models.tiling import Tiling, super_resolve

LR_SIZE = (12, 112)
TILE = 16
TOLERANCE = 1e-5  # max |tiled - whole| on the [0, 1] SR


@pytest.fixture(scope="module", autouse=True)
def tiny_rdn_config():
    rdn_arch.RDN_CONFIGS["tiny"] = (2, 3, 16)  # (blocks, convs per block, growth)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of small convolutions: a thread team only adds its wake-ups
    yield
    torch.set_num_threads(threads)
    del rdn_arch.RDN_CONFIGS["tiny"]


def _lr() -> torch.Tensor:
    """A smooth image with texture: a bicubic-upscaled random field plus a little noise, in [0, 1]."""
    gen = torch.Generator().manual_seed(3)
    coarse = torch.rand(1, 3, 6, 26, generator=gen, dtype=torch.float64) * 255
    img = imresize(coarse, size=LR_SIZE) + torch.randn(1, 3, *LR_SIZE, generator=gen, dtype=torch.float64) * 8
    return (img / 255).clamp(0, 1)


def _prepared(model, factory):
    with torch.inference_mode(False):
        return model._prepare(build_module(factory, meta=False))


def _smaller(model, build):
    model.build = build  # the per-scale networks are built on first use, from this
    model.nets.clear()
    return model


def build(name: str, **opts) -> Upscaler:
    if name == "bicubic":
        return create_model("bicubic")
    m = create_model(name, allow_untrained=True, **opts)
    if name == "vdsr":
        m.net = _prepared(m, lambda: VDSR(depth=4, n_feats=16))
    if name == "lapsrn":
        m.depth = 2
        m.nets.clear()
    if name == "mslapsrn":
        m.net = _prepared(m, lambda: MSLapSRN(depth=2, recursions=2, n_feats=16))
    if name == "edsr-baseline":
        return _smaller(m, lambda k: EDSR(scale=k, n_resblocks=2, n_feats=16, res_scale=1.0, rgb_range=255))
    if name == "liif":
        m.net = _prepared(m, lambda: LIIF(make_encoder("edsr-baseline", {"n_resblocks": 2, "n_feats": 16}), (32, 32)))
    if name == "edsr":
        return _smaller(m, lambda k: EDSR(scale=k, n_resblocks=2, n_feats=32, res_scale=0.1, rgb_range=255))
    if name == "rdn":
        return _smaller(m, lambda k: RDN(G0=16, RDNkSize=3, RDNconfig="tiny", scale=k))
    if name == "rcan":
        return _smaller(m, lambda k: RCAN(n_resgroups=2, n_resblocks=2, n_feats=32, reduction=8, scale=k))
    if name == "dbdn":
        return _smaller(m, lambda k: DBDN(scale=k, n_feats=32, n_units=2, n_layers=2, growth=16))
    if name == "csfm":
        return _smaller(m, lambda k: CSFM(scale=k, n_feats=32, n_modules=2, n_blocks=2))
    if name == "fsdn":
        return _smaller(m, lambda k: FSDN(scale=k, n_feats=32, n_dab=2, n_layers=2, growth=16, reduction=8,
                                          deconv_feats=16))
    if name == "asdn":
        m.net = _prepared(m, lambda: ASDN(n_feats=16, n_dab=2, n_layers=2, growth=16, reduction=8))
    if name == "metasr":
        m.net = _prepared(m, lambda: MetaRDN(G0=16, RDNconfig="tiny"))
    if name == "liif-rdn":
        m.net = _prepared(m, lambda: LIIF(make_encoder("rdn", {"G0": 16, "RDNconfig": "tiny"}), (32, 32)))
    return m


# name, model options, scales: the native path and the decimal-scale path of each family
EXACT = [
    ("bicubic", {}, ["2", "2.5"]),
    ("srcnn", {}, ["2", "2.5"]),
    ("vdsr", {}, ["3", "2.5"]),
    ("lapsrn", {}, ["2", "2.5"]),
    ("mslapsrn", {}, ["2", "3"]),
    ("edsr-baseline", {}, ["2", "2.5"]),
    ("edsr-baseline", {"strategy": "recursive-x2"}, ["3.5"]),
    ("edsr-baseline", {"strategy": "floor-then-up"}, ["2.5"]),
    ("edsr-baseline", {"strategy": "bicubic-pre"}, ["1.5"]),
    ("edsr", {}, ["2", "2.5"]),
    ("rdn", {}, ["3", "2.5"]),
    ("dbdn", {}, ["2", "2.5"]),
    ("metasr", {}, ["2", "2.5"]),
    ("liif", {}, ["2", "2.5"]),
    ("liif-rdn", {}, ["2", "3.3"]),
]
ATTENTION = [("rcan", {}, "2"), ("csfm", {}, "2"), ("fsdn", {}, "2"), ("asdn", {}, "2")]


def _run(model, scale: str, tiled: bool, spans: list | None = None):
    s = Fraction(scale)
    lr = _lr()
    size = (int(LR_SIZE[0] * s), int(LR_SIZE[1] * s))  # Meta-SR's floor: fewer pixels than MATLAB's ceil
    with torch.inference_mode():
        return super_resolve(model, lr, s, size, Tiling(TILE, model.tile_overlap) if tiled else None)


@pytest.fixture
def spans(monkeypatch):
    """Every (core, input) span the tiled runs cut, to check that some tile's context really was cut."""
    seen = []
    original = tiling._spans

    def recording(n, core, context):
        out = original(n, core, context)
        seen.extend((n, a0, a1) for _, _, a0, a1 in out)
        return out

    monkeypatch.setattr(tiling, "_spans", recording)
    return seen


@pytest.mark.parametrize("name,opts,scales", EXACT, ids=[f"{n}{'-' + '-'.join(o.values()) if o else ''}"
                                                            for n, o, _ in EXACT])
def test_tiled_equals_whole_image(name, opts, scales, spans):
    model = build(name, **opts)
    for scale in scales:
        whole = _run(model, scale, tiled=False)
        spans.clear()
        tiled = _run(model, scale, tiled=True)
        assert tiled.shape == whole.shape
        assert (tiled - whole).abs().max().item() <= TOLERANCE, (name, scale)
        if name != "bicubic":  # bicubic has no network to tile
            assert any(0 < a0 and a1 < n for n, a0, a1 in spans), "no tile had its context cut"


@pytest.mark.parametrize("name,opts,scale", ATTENTION, ids=[n for n, _, _ in ATTENTION])
def test_channel_attention_tiles_with_image_statistics(name, opts, scale, spans, monkeypatch):
    """Channel attention pools over the whole image: a tile's own statistics give another output (one pass), the
    image-wide statistics gathered from the tiles' cores over passes give the whole-image one."""
    model = build(name, **opts)
    whole = _run(model, scale, tiled=False)
    passes = []
    original = tiling._tiled_pass

    def counting(*args):
        passes.append(args[-1])
        return original(*args)

    monkeypatch.setattr(tiling, "_tiled_pass", counting)
    tiled = _run(model, scale, tiled=True)
    assert (tiled - whole).abs().max().item() <= TOLERANCE, name
    assert any(0 < a0 and a1 < n for n, a0, a1 in spans)
    assert passes and all(p.sums for p in passes)  # the attention layers pooled through image_statistic
    assert len(passes) > 1
    monkeypatch.setattr(tiling, "MAX_PASSES", 1)
    one_pass = _run(model, scale, tiled=True)
    assert (one_pass - whole).abs().max().item() > TOLERANCE  # per-tile statistics alone: not the whole image


def test_image_statistic_is_the_whole_feature_map_outside_tiles():
    """Outside a tiled forward the attention layers pool exactly as before (the calibration runs rely on it)."""
    x = torch.randn(2, 8, 5, 7)
    local = x.mean(dim=(-2, -1), keepdim=True)
    assert tiling.image_statistic(x, local) is local


def test_self_ensemble_tiles_its_inner_model():
    model = create_model("edsr-baseline+", allow_untrained=True)
    assert model.tiles_networks and model.tile_overlap == 32
    _smaller(model.inner, lambda k: EDSR(scale=k, n_resblocks=2, n_feats=16, res_scale=1.0, rgb_range=255))
    whole, tiled = _run(model, "2", tiled=False), _run(model, "2", tiled=True)
    assert (tiled - whole).abs().max().item() <= TOLERANCE


class ShiftEquivariantPlugin(Upscaler):
    """A plugin that does not tile its own network: MATLAB bicubic by the scale, then a fixed 3x3 filter."""

    def __init__(self):
        super().__init__(name="plugin", scales=ScaleSupport.any_scale(), learned=False)
        self.calls = []

    def super_resolve(self, lr, scale, size):
        self.calls.append(tuple(lr.shape[-2:]))
        up = imresize(lr * 255.0, scale=scale, size=size)
        k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=up.dtype) / 16
        out = torch.nn.functional.conv2d(torch.nn.functional.pad(up.reshape(-1, 1, *up.shape[-2:]), (1, 1, 1, 1),
                                                                 mode="replicate"), k[None, None])
        return (out.reshape(up.shape) / 255.0).clamp(0, 1)


@pytest.mark.parametrize("scale", ["2", "2.5", "4/3"])
def test_a_plugin_is_tiled_around_super_resolve_on_scale_aligned_tiles(scale):
    model = ShiftEquivariantPlugin()
    assert not model.tiles_networks
    s = Fraction(scale)
    lr = _lr()
    size = (int(LR_SIZE[0] * s), int(LR_SIZE[1] * s))
    whole = model.super_resolve(lr, s, size)
    model.calls.clear()
    tiled = super_resolve(model, lr, s, size, Tiling(TILE, 8))
    assert len(model.calls) > 2 and all(c[-1] < LR_SIZE[1] for c in model.calls)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max().item() <= 1e-12  # bicubic and a 3x3 filter: exact with 8 pixels of context


def test_tiling_checks_its_numbers():
    with pytest.raises(Exception, match="--tile must"):
        Tiling(0, 4)
    with pytest.raises(Exception, match="--tile-overlap must"):
        Tiling(16, -1)
    assert tiling.halved(None, (100, 300), 8) == Tiling(150, 8)
    assert tiling.halved(Tiling(20, 8), (100, 300), 8) is None  # below MIN_TILE
