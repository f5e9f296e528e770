"""Protocol rules: exact sizes, crops, shaves, colour handling and fingerprints."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.models.bicubic import Bicubic
from sr_bench.protocols import PROTOCOLS, ImageTooSmall, choose_protocol, get_protocol
from sr_bench.scales import parse_scales


def _img(c, h, w, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (c, h, w)).astype(np.float64))


def test_auto_picks_one_protocol_per_run():
    assert choose_protocol("auto", parse_scales("2,3,4")).name == "matlab"
    assert choose_protocol("auto", parse_scales("2,2.5")).name == "metasr"
    with pytest.raises(UserError, match="integer scales only"):
        choose_protocol("matlab", parse_scales("2.5"))
    with pytest.raises(UserError, match="did you mean 'metasr'"):
        get_protocol("meta-sr")


def test_fingerprints_distinct_and_cover_every_rule():
    fps = {p.fingerprint for p in PROTOCOLS.values()}
    assert len(fps) == len(PROTOCOLS)
    p = get_protocol("matlab")
    assert p.fingerprint == get_protocol("matlab").fingerprint
    for f in dataclasses.fields(p):
        if isinstance(getattr(p, f.name), str):
            changed = dataclasses.replace(p, **{f.name: getattr(p, f.name) + "!"})
            assert changed.fingerprint != p.fingerprint, f.name


def test_matlab_modcrop_lr_and_shave():
    p = get_protocol("matlab")
    hr = _img(3, 103, 77)
    case = p.prepare(hr, Fraction(3))
    assert case.hr.shape == (3, 102, 75) and case.lr.shape == (3, 34, 25) and case.shave == 3
    expected = imresize(hr[:, :102, :75], scale=Fraction(1, 3))
    assert torch.equal(case.lr, torch.floor(expected + 0.5).clamp(0, 255))
    v = p.views(case.hr.clone(), case)
    assert v.y[0].shape == (1, 1, 96, 69)


def test_matlab_gray_image_measures_gray_values():
    p = get_protocol("matlab")
    hr = _img(1, 40, 40)
    case = p.prepare(hr, Fraction(2))
    assert case.gray and case.lr.shape[0] == 1
    sr = Bicubic().super_resolve(case.lr.expand(3, -1, -1)[None] / 255, Fraction(2), case.sr_size)[0]
    v = p.views(p.quantize(sr), case)
    ref_sr = torch.floor(imresize(case.lr, scale=2) + 0.5).clamp(0, 255)
    assert torch.equal(v.y[0][0], ref_sr[:, 2:-2, 2:-2])  # the gray values themselves, not Y of replicated RGB
    assert torch.equal(v.y[1][0], hr[:, 2:-2, 2:-2])


def test_metasr_sizes_are_exact_and_never_exceed_hr():
    p = get_protocol("metasr")
    scales = parse_scales("1.1:4:0.1")
    for h in range(24, 200, 7):
        for s in scales:
            hc = h if (Fraction(h) / s).denominator == 1 else h - 4
            lr_h = math.ceil(Fraction(hc) / s)
            sr_h = math.floor(lr_h * s)
            assert sr_h <= h
    # the float traps from the issue: 476/1.4 and 276/2.3 are exact, so no 4-pixel crop
    case = p.prepare(_img(3, 476, 276), Fraction(7, 5))
    assert case.lr.shape[1] == 340 and case.sr_size[0] == 476
    case = p.prepare(_img(3, 276, 50), Fraction(23, 10))
    assert case.lr.shape[1] == 120 and case.sr_size[0] == 276
    assert case.shave == 3


def test_metasr_crop_rule_and_gray_replication():
    p = get_protocol("metasr")
    case = p.prepare(_img(1, 321, 480), Fraction(3, 2))
    # 321/1.5 = 214 exactly; 480/1.5 = 320: no crop, RGB made from gray
    assert case.lr.shape == (3, 214, 320) and case.sr_size == (321, 480) and case.shave == 2
    case = p.prepare(_img(3, 321, 480), Fraction(7, 5))
    # 321/1.4 is not whole -> 317 -> ceil(317/1.4)=227 -> floor(227*1.4)=317; 480/1.4 not whole -> 476 -> 340 -> 476
    assert case.lr.shape[1:] == (227, 340) and case.sr_size == (317, 476)


def test_metasr_psnr_is_y_of_difference():
    p = get_protocol("metasr")
    hr = _img(3, 60, 60, 1)
    case = p.prepare(hr, Fraction(5, 2))
    sr = (case.hr + torch.tensor([1.0, -2.0, 3.0]).view(3, 1, 1)).clamp(0, 255)
    v = p.views(sr, case)
    diff = (sr - case.hr)[:, 3:-3, 3:-3]
    ydiff = (65.738 * diff[0] + 129.057 * diff[1] + 25.064 * diff[2]) / 256
    torch.testing.assert_close(v.y[0][0, 0] - v.y[1][0, 0], ydiff)


def test_liif_sizes():
    p = get_protocol("liif")
    case = p.prepare(_img(3, 101, 77), Fraction(3))  # benchmark-style: MATLAB LR from modcrop
    assert case.sr_size == (99, 75) and case.lr.shape[1:] == (33, 25)
    case = p.prepare(_img(3, 101, 77), Fraction(5, 2))
    # h_lr = floor(101/2.5) = 40, HR crop round(100.0) = 100; w: floor(30.8) = 30 -> 75
    assert case.lr.shape[1:] == (40, 30) and case.sr_size == (100, 75) and case.shave == 3


def test_too_small_is_reported():
    with pytest.raises(ImageTooSmall, match="too small"):
        get_protocol("matlab").prepare(_img(3, 8, 8), Fraction(4))
    with pytest.raises(ImageTooSmall):
        get_protocol("metasr").prepare(_img(3, 9, 9), Fraction(4))


@pytest.mark.parametrize("name", ["matlab", "metasr", "liif"])
def test_too_small_names_the_images_own_size(name):
    """A 2x2 image at x4 crops to nothing; the message names the 2x2 the user has, not the 0x0 crop."""
    with pytest.raises(ImageTooSmall) as e:
        get_protocol(name).prepare(_img(3, 2, 2), Fraction(4))
    assert str(e.value).startswith("image 2x2 is too small for scale 4"), str(e.value)


def test_metasr_sr_larger_than_the_image_is_too_small():
    """36 is not a multiple of 10.5, so Meta-SR crops 4 rows: ceil(32 / 10.5) = 4 LR rows give an SR of
    floor(4 * 10.5) = 42 > 36. That image is an error row of the run, not a crash."""
    with pytest.raises(ImageTooSmall, match=r"image 36x36 is too small for scale 10\.5: .* SR of 42x42"):
        get_protocol("metasr").prepare(_img(3, 36, 36), Fraction(21, 2))
