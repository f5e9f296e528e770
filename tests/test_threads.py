"""``sr_bench.threads.total`` sums on one thread but stores the numbers of the configured thread count: it is checked
against torch's own multi-threaded sums, and SSIM (the C kernel's map summed with ``total``) and PSNR against the
plain torch formulation they had, run with real threads."""

from __future__ import annotations

import math

import pytest
import torch

from sr_bench.metrics.psnr import psnr
from sr_bench.metrics.ssim import WINDOW, _TAPS, ssim
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


def _plain_ssim(a, b, block_rows=128):
    """SSIM as it was computed before the band blocking: whole 128-row blocks, summed with torch's threads."""
    x, y = a.double().reshape(a.shape[-2:]), b.double().reshape(b.shape[-2:])
    h, w = x.shape
    maps = torch.stack([x, y, x * x, y * y, x * y], 1)
    out_h, out_w = h - WINDOW + 1, w - WINDOW + 1

    def shifted(src, dim, n):
        acc = src.narrow(dim, 0, n) * _TAPS[0]
        for k in range(1, WINDOW):
            acc.add_(src.narrow(dim, k, n), alpha=_TAPS[k])
        return acc

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    tot = torch.zeros((), dtype=torch.float64)
    for r0 in range(0, out_h, block_rows):
        n = min(block_rows, out_h - r0)
        mu1, mu2, xx, yy, xy = shifted(shifted(maps[r0:r0 + n + WINDOW - 1], 0, n), 2, out_w).unbind(1)
        mu12 = mu1 * mu2
        mu1.square_()
        mu2.square_()
        num = (2 * mu12 + c1).mul_(xy.sub_(mu12).mul_(2).add_(c2))
        den = (mu1 + mu2 + c1).mul_(xx.sub_(mu1).add_(yy.sub_(mu2)).add_(c2))
        tot += num.div_(den).sum()
    return (tot / (out_h * out_w)).item()


@pytest.mark.parametrize("n", [1, 2])
def test_psnr_and_ssim_keep_the_numbers_of_n_threads(threads, n):
    gen = torch.Generator().manual_seed(7)
    for h, w in [(321, 481), (262, 250), (40, 700)]:
        a = (torch.rand(1, 1, h, w, generator=gen, dtype=torch.float64) * 255).round()
        b = (a + torch.randn(a.shape, generator=gen, dtype=torch.float64) * 6).round().clamp(0, 255)
        torch.set_num_threads(n)
        expected_ssim = _plain_ssim(a, b)
        expected_psnr = 10 * math.log10(255 ** 2 / torch.mean((a - b) ** 2).item())
        assert ssim(a, b) == expected_ssim
        assert psnr(a, b) == expected_psnr
        assert torch.get_num_threads() == n
