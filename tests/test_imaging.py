"""Resize, colour and rounding against (a) a float64 re-implementation written here from MATLAB's imresize.m
definitions, loop by loop, and (b) basicsr's port."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from sr_bench.imaging.color import rgb2gray_matlab_uint8, rgb2y_linear, rgb2y_matlab_uint8
from sr_bench.imaging.quantize import round_half_away, unit_to_uint8_values
from sr_bench.imaging.resize import imresize, output_size


# ---- independent reference: MATLAB imresize.m, one output pixel at a time, plain float64 -----------------------
def _cubic(x: float) -> float:
    a = abs(x)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _ref_axis(v: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Resize axis 0 of v (n, ...) like MATLAB: contributions(), then a weighted sum with mirrored indices."""
    n = v.shape[0]
    aa = scale < 1
    width = 4.0 / scale if aa else 4.0
    out = np.zeros((out_len,) + v.shape[1:])
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = math.ceil(width) + 2
        idx = [left + k for k in range(taps)]
        w = [scale * _cubic(scale * (u - j)) if aa else _cubic(u - j) for j in idx]
        total = sum(w)
        for j, wj in zip(idx, w, strict=True):
            jj = j - 1  # mirror: [1..n, n..1] repeated
            jj = jj % (2 * n)
            if jj >= n:
                jj = 2 * n - 1 - jj
            out[x - 1] += (wj / total) * v[jj]
    return out


def ref_imresize(img: np.ndarray, scale: float, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """img (C, H, W) float64. Scale given as a float, the way a MATLAB user types it."""
    c, h, w = img.shape
    oh, ow = out_hw or (math.ceil(h * scale), math.ceil(w * scale))
    rows = _ref_axis(np.moveaxis(img, 1, 0), oh, scale)  # (oh, C, W)
    rows = np.moveaxis(rows, 0, 1)
    cols = _ref_axis(np.moveaxis(rows, 2, 0), ow, scale)  # (ow, C, oh)
    return np.moveaxis(cols, 0, 2)


CASES = [
    # (H, W, scale) -- odd sizes, downscale and upscale, integer and decimal
    (37, 29, Fraction(1, 2)),
    (37, 29, Fraction(1, 3)),
    (41, 33, Fraction(1, 4)),
    (35, 28, Fraction(5, 7)),  # 1/1.4
    (46, 31, Fraction(10, 23)),  # 1/2.3
    (40, 37, Fraction(10, 37)),  # 1/3.7
    (13, 11, Fraction(2)),
    (13, 11, Fraction(3)),
    (9, 14, Fraction(4)),
    (12, 9, Fraction(3, 2)),
    (10, 13, Fraction(23, 10)),
    (7, 9, Fraction(57, 10)),
]


@pytest.mark.parametrize("h,w,s", CASES)
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_matches_float64_reference(h, w, s, channels):
    rng = np.random.default_rng(h * 100 + w)
    img = rng.integers(0, 256, (channels, h, w)).astype(np.float64)
    ours = imresize(torch.from_numpy(img), scale=s).numpy()
    ref = ref_imresize(img, float(s))
    assert ours.shape == ref.shape == (channels, *output_size((h, w), s))
    # the reference computes coordinates from the float scale, ours from the exact fraction: ~1e-12 on 0..255
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_resize_explicit_size_and_batch():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2, 3, 31, 26)).astype(np.float64)
    ours = imresize(torch.from_numpy(img), size=(17, 40)).numpy()
    for b in range(2):
        # imresize(A, [h w]) uses per-axis scale out/in
        rows = np.moveaxis(_ref_axis(np.moveaxis(img[b], 1, 0), 17, 17 / 31), 0, 1)
        ref = np.moveaxis(_ref_axis(np.moveaxis(rows, 2, 0), 40, 40 / 26), 0, 2)
        np.testing.assert_allclose(ours[b], ref, atol=1e-9)


def test_scale_with_smaller_size_is_top_left_of_full_output():
    x = torch.rand(3, 23, 19, dtype=torch.float64) * 255
    s = Fraction(27, 10)
    full = imresize(x, scale=s)
    part = imresize(x, scale=s, size=(60, 51))
    assert full.shape[-2:] == (63, 52)  # ceil(23*2.7)=63, ceil(19*2.7)=52
    torch.testing.assert_close(part, full[:, :60, :51], rtol=0, atol=1e-10)


def test_resize_float32_and_float64_agree():
    x = torch.rand(1, 3, 40, 30, dtype=torch.float64) * 255
    y64 = imresize(x, scale=Fraction(1, 3))
    y32 = imresize(x.float(), scale=Fraction(1, 3))
    assert y32.dtype == torch.float32
    assert (y64 - y32.double()).abs().max() < 1e-3


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2, 3, 4])
def test_resize_agrees_with_basicsr(basicsr, scale):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (3, 61, 47)).astype(np.float64)
    ours = imresize(torch.from_numpy(img), scale=Fraction(scale).limit_denominator(10)).numpy()
    theirs = basicsr.imresize(torch.from_numpy(img / 255).float(), scale).numpy().astype(np.float64) * 255
    assert ours.shape == theirs.shape
    # basicsr runs in float32 (coordinates included): ~1e-4 of 255 here
    assert np.abs(ours - theirs).max() < 5e-3
    assert (np.round(ours) == np.round(theirs)).mean() > 0.999


def test_round_half_away_not_banker():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, 254.5, 3.49999])
    assert round_half_away(x).tolist() == [1.0, 2.0, 3.0, -1.0, 255.0, 3.0]
    assert torch.round(torch.tensor(2.5)).item() == 2.0  # why we don't use torch.round


def test_unit_roundtrip_of_uint8_values_is_exact():
    k = torch.arange(256, dtype=torch.float64)
    assert torch.equal(unit_to_uint8_values(k / 255.0), k)
    halves = torch.arange(0, 256, dtype=torch.float64) + 0.5
    assert torch.equal((halves / 255.0) * 255.0, halves)  # dyadic SR values survive the [0,1] interface


def test_rgb2y_matches_exact_rational_matlab():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (3, 64, 64))
    ours = rgb2y_matlab_uint8(torch.from_numpy(rgb).double())[0].numpy()
    # exact: Y = 16 + (65481 R + 128553 G + 24966 B) / 255000, rounded half up
    num = 65481 * rgb[0] + 128553 * rgb[1] + 24966 * rgb[2] + 16 * 255000
    exact = (2 * num + 255000) // (2 * 255000)
    assert np.array_equal(ours, exact)


def test_rgb2y_matches_basicsr(basicsr):
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (48, 40, 3)).astype(np.uint8)
    theirs = basicsr.rgb2ycbcr(rgb, y_only=True)  # uint8 in, rounded uint8 out
    ours = rgb2y_matlab_uint8(torch.from_numpy(rgb).permute(2, 0, 1).double())[0].numpy()
    assert np.array_equal(ours, theirs.astype(np.float64))


def test_gray_and_linear_luma():
    v = torch.arange(256, dtype=torch.float64).view(1, 16, 16)
    rgb = v.expand(3, 16, 16)
    assert torch.equal(rgb2gray_matlab_uint8(rgb), v)  # equal channels stay themselves
    d = rgb2y_linear(rgb)
    torch.testing.assert_close(d, v * (65.738 + 129.057 + 25.064) / 256)


def test_fast_uint8_rounding_equals_half_away_then_saturate():
    from sr_bench.imaging.quantize import to_uint8_values

    x = torch.cat([torch.linspace(-3, 258, 100_001, dtype=torch.float64), torch.arange(-2, 258) + 0.5])
    assert torch.equal(to_uint8_values(x), round_half_away(x).clamp(0, 255))
