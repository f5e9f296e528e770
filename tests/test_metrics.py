"""PSNR and SSIM against skimage (an independent implementation) and basicsr's port of the MATLAB scripts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sr_bench.errors import UserError
from sr_bench.metrics import create_metric, list_metrics, metric_info
from sr_bench.metrics.psnr import psnr
from sr_bench.metrics.ssim import gaussian_1d, ssim


def _pair(seed, h=57, w=43):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 12, (h, w)).round(), 0, 255)
    return a, b


def test_psnr_matches_skimage():
    a, b = _pair(0)
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    assert psnr(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, abs=1e-10)


def test_psnr_identical_is_inf():
    a, _ = _pair(1)
    assert math.isinf(psnr(torch.from_numpy(a), torch.from_numpy(a)))


@pytest.mark.parametrize("seed,h,w", [(2, 57, 43), (3, 11, 11), (4, 128, 96)])
def test_ssim_matches_skimage_gaussian_valid(seed, h, w):
    a, b = _pair(seed, h, w)
    # skimage with Gaussian weights (sigma 1.5 -> 11 taps at truncate 3.5), population covariance, and its
    # (win-1)/2 border crop is Wang's ssim_index with 'valid' filtering
    ref = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, abs=1e-10)


def test_ssim_matches_basicsr(basicsr):
    a, b = _pair(5, 80, 64)
    ref = basicsr.calculate_ssim(a[:, :, None], b[:, :, None], crop_border=0, input_order="HWC")
    assert ssim(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, abs=1e-9)


def test_psnr_matches_basicsr(basicsr):
    a, b = _pair(6)
    ref = basicsr.calculate_psnr(a[:, :, None], b[:, :, None], crop_border=0, input_order="HWC")
    assert psnr(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, abs=1e-10)


def test_gaussian_window_is_fspecial():
    g = gaussian_1d()
    k2 = np.outer(g, g)
    assert k2.shape == (11, 11) and k2.sum() == pytest.approx(1.0)
    x = np.arange(-5, 6)
    raw = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(k2, raw / raw.sum(), atol=1e-16)


def test_ssim_small_image_is_nan():
    a = torch.zeros(8, 8, dtype=torch.float64)
    assert math.isnan(ssim(a, a))


def test_registry_metadata_and_unknown_names():
    assert {"psnr", "ssim", "lpips"} <= set(list_metrics())
    assert metric_info("psnr").higher_is_better and metric_info("psnr").view == "y"
    assert metric_info("ssim").upper == 1.0
    assert not metric_info("lpips").higher_is_better
    with pytest.raises(UserError, match="did you mean 'psnr'"):
        create_metric("psnrr")


def test_ssim_band_size_does_not_change_the_value():
    a, b = _pair(9, 140, 77)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    values = [ssim(ta, tb, block_rows=k) for k in (1, 7, 128, 1000)]
    assert max(values) - min(values) < 1e-14
