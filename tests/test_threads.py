"""``sr_bench.threads.total`` sums on one thread but stores the numbers of the configured thread count: it is checked
against torch's own multi-threaded sums, and SSIM (the C kernel's map summed with ``total``) and PSNR against a
float64 numpy/scipy reference, run with real threads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate1d

from sr_bench.metrics.psnr import psnr
from sr_bench.metrics.ssim import WINDOW, gaussian_1d, ssim
from sr_bench.threads import GRAIN_SIZE, configured, one_thread, total


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _torch_sum(x: torch.Tensor, n: int) -> float:
    torch.set_num_threads(n)
    return x.sum().item()


@pytest.mark.parametrize("n", [2, 3, 4])
def test_total_is_torchs_own_sum_with_that_many_threads(threads, n):
    gen = torch.Generator().manual_seed(n)
    sizes = [1, 1000, GRAIN_SIZE - 1, GRAIN_SIZE, GRAIN_SIZE + 1, 2 * GRAIN_SIZE + 7, 61_440, 100_003, 333_333]
    sizes += torch.randint(1, 400_000, (25,), generator=gen).tolist()
    differ_from_one_thread = 0
    for size in sizes:
        x = torch.randn(size, generator=gen, dtype=torch.float64) * 100
        expected = _torch_sum(x, n)
        differ_from_one_thread += expected != _torch_sum(x, 1)
        torch.set_num_threads(n)
        with one_thread():
            assert torch.get_num_threads() == 1 and configured() == n
            got = total(x).item()
        assert got == expected, (size, got, expected)  # bit for bit
    assert differ_from_one_thread > 0  # the split matters, so the check above can fail


def test_total_sums_a_transposed_tensor_in_memory_order(threads):
    # a bicubic SR comes out of imresize with its columns contiguous; torch reduces it in memory order
    gen = torch.Generator().manual_seed(1)
    for h, w in [(477, 317), (300, 700), (181, 181)]:
        x = torch.randn(1, 1, w, h, generator=gen, dtype=torch.float64).transpose(-1, -2)
        expected = _torch_sum(x, 2)
        torch.set_num_threads(2)
        with one_thread():
            assert total(x).item() == expected
    with pytest.raises(ValueError, match="dense"):
        total(torch.zeros(400, 400, dtype=torch.float64)[::2])


def test_one_thread_nests_and_restores(threads):
    torch.set_num_threads(2)
    with one_thread():
        with one_thread():
            assert configured() == 2 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2 and configured() == 2


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """``ssim_index.m`` in float64 numpy/scipy: separable Gaussian (fspecial's normalised vector), 'valid' part."""
    g = gaussian_1d()

    def filt(v):
        return correlate1d(correlate1d(v, g, axis=0), g, axis=1)[WINDOW // 2:-(WINDOW // 2), WINDOW // 2:-(WINDOW // 2)]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filt(a), filt(b)
    s11, s22, s12 = filt(a * a) - mu1 ** 2, filt(b * b) - mu2 ** 2, filt(a * b) - mu1 * mu2
    return float(np.mean((2 * mu1 * mu2 + c1) * (2 * s12 + c2) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))))


@pytest.mark.parametrize("n", [1, 2])
def test_psnr_and_ssim_with_n_threads_match_a_float64_reference(threads, n):
    # the thread-count-shaped sums (and the C kernel's map, when built) move the numbers by rounding only
    gen = torch.Generator().manual_seed(7)
    for h, w in [(321, 481), (262, 250), (40, 700)]:
        a = (torch.rand(1, 1, h, w, generator=gen, dtype=torch.float64) * 255).round()
        b = (a + torch.randn(a.shape, generator=gen, dtype=torch.float64) * 6).round().clamp(0, 255)
        an, bn = a[0, 0].numpy(), b[0, 0].numpy()
        torch.set_num_threads(n)
        assert ssim(a, b) == pytest.approx(_reference_ssim(an, bn), rel=0, abs=1e-12)
        assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / np.mean((an - bn) ** 2)), rel=1e-13)
        assert ssim(a, a) == 1.0  # every window's ratio is exactly 1, and a sum of ones is exact in any split
        assert torch.get_num_threads() == n


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT" and not k.startswith("SRBENCH_")}


def test_importing_sr_bench_leaves_openmp_alone():
    # a training script that imports the library keeps its own OpenMP behaviour
    code = "import os, sr_bench, sr_bench.metrics.ssim; assert 'GOMP_SPINCOUNT' not in os.environ"
    done = subprocess.run([sys.executable, "-c", code], check=False, env=_clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_srbench_entry_point_sets_the_spin_before_torch_loads():
    # libgomp reads the variable once, when torch loads it: the CLI module must not import torch before main() runs
    code = ("import os, sys, sr_bench.cli as c; loaded = 'torch' in sys.modules; sys.argv = ['srbench', '--version']\n"
            "try: c.main()\nexcept SystemExit: pass\n"
            "print(loaded, os.environ.get('GOMP_SPINCOUNT'))")
    done = subprocess.run([sys.executable, "-c", code], check=False, env=_clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split()[-2:] == ["False", "1000"], (done.stdout, done.stderr)
    done = subprocess.run([sys.executable, "-c", code], check=False, env={**_clean_env(), "GOMP_SPINCOUNT": "5"},
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-2:] == ["False", "5"], (done.stdout, done.stderr)  # the user's value wins
