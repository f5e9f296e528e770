"""The C kernels (``sr_bench.native``) against the torch formulation they replace, bit for bit, and the fallback
when no compiler is available. The torch path itself is checked against independent SSIM implementations in
``tests/test_metrics.py``; here the question is only whether the kernel changes a single bit."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_bench import cache, native
from sr_bench.errors import UserError
from sr_bench.imaging.color import (
    quantized_with_lumas,
    rgb2y_linear,
    rgb2y_matlab_uint8,
)
from sr_bench.imaging.quantize import to_uint8_values, unit_to_uint8_values
from sr_bench.metrics import ssim as ssim_module
from sr_bench.metrics.ssim import ssim
from sr_bench.native import pixels, ssim_map

DATA = Path(os.environ.get("SRBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A private kernel cache, and nothing loaded yet in this process; restored afterwards."""
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    native.forget()
    yield tmp_path / "cache" / "native"
    native.forget()


def _need(piece) -> None:
    """Skip, saying why, where ``piece`` (a module of ``sr_bench.native``) is not active on this machine: no C
    compiler, switched off, or its probe found other bits than torch's path (then the torch path runs)."""
    why = piece.unavailable()
    if why:
        pytest.skip(f"{piece.__name__} is not active here: {why}")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _torch_path(monkeypatch, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with the kernels switched off."""
    with monkeypatch.context() as m:
        m.setenv(native.ENV_SWITCH, "0")
        native.forget()
        value = fn(*args, **kwargs)
    native.forget()
    return value


def _planes(gen, h, w, kind):
    a = torch.rand(1, 1, h, w, generator=gen, dtype=torch.float64) * 255
    if kind == "integer":
        a = a.round()
        b = (a + torch.randn(a.shape, generator=gen, dtype=torch.float64) * 8).round().clamp(0, 255)
    elif kind == "float":
        b = a + torch.randn(a.shape, generator=gen, dtype=torch.float64) * 20
    else:  # wide range and signs: no product is exact, so every rounding has to be the same one
        a = (a - 128) * 1e3
        b = -a * 0.5 + torch.randn(a.shape, generator=gen, dtype=torch.float64) * 1e4
    return a, b


@pytest.mark.parametrize("n", [1, 2])
def test_ssim_kernel_equals_the_torch_formulation_bit_for_bit(fresh, monkeypatch, threads, n):
    torch.set_num_threads(n)
    _need(ssim_map)
    gen = torch.Generator().manual_seed(n)
    shapes = [(11, 11), (11, 300), (300, 11), (12, 13), (129, 140), (139, 257), (257, 139), (321, 481), (700, 64)]
    compared = 0
    for h, w in shapes:
        for kind in ("integer", "float", "wide"):
            a, b = _planes(gen, h, w, kind)
            assert ssim(a, b) == _torch_path(monkeypatch, ssim, a, b), (h, w, kind)  # ==, not approx
            compared += 1
            # read in place: a shaved view (rows farther apart than their length) beside a column-major copy
            big_a, big_b = _planes(gen, h + 5, w + 7, kind)
            va, vb = big_a[..., 2:-3, 3:-4], big_b.transpose(-1, -2).contiguous().transpose(-1, -2)[..., 2:-3, 3:-4]
            assert ssim(va, vb) == _torch_path(monkeypatch, ssim, va, vb), (h, w, kind, "views")
    assert compared == 27
    assert math.isnan(ssim(torch.zeros(10, 50), torch.zeros(10, 50)))  # smaller than one window, as before


def test_ssim_kernel_on_real_bicubic_results(fresh, monkeypatch):
    """The case the kernel is for: bicubic SR against HR on Set5 and Set14 at decimal scales (metasr protocol)."""
    from sr_bench.data import resolve_dataset
    from sr_bench.models.bicubic import Bicubic
    from sr_bench.protocols import get_protocol
    from sr_bench.protocols.base import HRSource

    _need(ssim_map)
    if not (DATA / "Set14").is_dir():
        pytest.skip(f"Set14 not found under {DATA}; set SRBENCH_DATA=../shared/datasets")
    protocol, model = get_protocol("metasr"), Bicubic()
    compared = 0
    for name in ("set5", "set14"):
        for item in resolve_dataset(name, data_root=str(DATA)).items[:5]:
            src = HRSource(torch.from_numpy(np.ascontiguousarray(item.load())).permute(2, 0, 1).double())
            for s in (Fraction(3, 2), Fraction(27, 10), Fraction(4)):
                case = protocol.prepare(src, s)
                sr = protocol.quantize(model.super_resolve(case.lr[None] / 255.0, s, case.sr_size)[0])
                a, b = protocol.views(sr, case).y_ssim
                assert ssim(a, b) == _torch_path(monkeypatch, ssim, a, b), (name, item.name, s)
                compared += 1
    assert compared == 30


def _layouts(x: torch.Tensor):
    """``x`` (C, H, W) in the memory layouts the evaluation meets: contiguous, pixel-interleaved (a decoded HWC
    image permuted), column-major (what a resize along W leaves), batched with W outermost, and views that are not
    one block of memory (a crop, one channel of three)."""
    yield "contiguous", x.contiguous()
    yield "interleaved", x.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    yield "column-major", x.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    yield "batched, W outermost", x[None].permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    yield "cropped", x.permute(1, 2, 0).contiguous().permute(2, 0, 1)[..., 1:-2, 2:-1]
    yield "gapped", x.repeat_interleave(2, dim=-1)[..., ::2]


def _same(ours: torch.Tensor, ref: torch.Tensor) -> bool:
    """Equal values (NaN where NaN) and the same memory order (strides of the dimensions longer than 1)."""
    def order(t):
        return [st for st, n in zip(t.stride(), t.shape, strict=True) if n != 1]
    if ours.numel() == 0:  # a crop of a one-pixel-high image: nothing to lay out
        return ours.shape == ref.shape
    return ours.shape == ref.shape and torch.equal(ours.isnan(), ref.isnan()) and torch.equal(
        ours.nan_to_num(), ref.nan_to_num()) and order(ours) == order(ref)


@pytest.mark.parametrize("n", [1, 2])
def test_pixel_kernels_equal_the_torch_ops_bit_for_bit(fresh, monkeypatch, threads, n):
    """Rounding to 8 bits and both lumas, with and without ``native/pixels.c``: values and layout."""
    torch.set_num_threads(n)
    _need(pixels)
    gen = torch.Generator().manual_seed(20 + n)
    # values that sit on rounding ties (k + 0.5, and x with 255 x on a tie), out of range, and NaN
    ties = torch.arange(-3, 260, dtype=torch.float64) + 0.5
    unit_ties = (torch.arange(-3, 260, dtype=torch.float64) + 0.5) / 255.0
    fused = 0
    for h, w in [(1, 1), (1, 77), (40, 1), (37, 53), (300, 420)]:
        count = 3 * h * w
        raw = torch.cat([ties, unit_ties, torch.tensor([math.nan, -0.0, 1e300, -1e300]),
                         torch.rand(count, generator=gen, dtype=torch.float64) * 300 - 20])[:count]
        if raw.numel() < count:
            raw = torch.cat([raw, torch.rand(count - raw.numel(), generator=gen, dtype=torch.float64)])
        x = raw[torch.randperm(count, generator=gen)].reshape(3, h, w)
        integers = (torch.rand(3, h, w, generator=gen, dtype=torch.float64) * 256).floor()
        for arrangement, v in _layouts(x):
            for fn in (to_uint8_values, unit_to_uint8_values):
                assert _same(fn(v), _torch_path(monkeypatch, fn, v)), (fn.__name__, h, w, arrangement)
            for kernels in (True, False):  # rounding in place, with the kernel and with torch's in-place ops
                mine = v.clone(memory_format=torch.preserve_format)
                rounded = to_uint8_values(mine, in_place=True) if kernels else _torch_path(
                    monkeypatch, to_uint8_values, mine, in_place=True)
                assert rounded.data_ptr() == mine.data_ptr() and _same(rounded, to_uint8_values(v)), arrangement
            fused += pixels.round_u8(v) is not None
            # quantising and both lumas in one pass against the three torch calls, values and layouts
            together = quantized_with_lumas(v / 300.0)
            if together is not None:
                q = _torch_path(monkeypatch, unit_to_uint8_values, v / 300.0)
                expected = (q, _torch_path(monkeypatch, rgb2y_linear, q),
                            _torch_path(monkeypatch, rgb2y_matlab_uint8, q))
                assert all(_same(a, b) for a, b in zip(together, expected, strict=True)), (h, w, arrangement)
                fused += 1
        for arrangement, v in _layouts(integers):
            for fn in (rgb2y_matlab_uint8, rgb2y_linear):
                for arg in (v, v[None], v[..., :1, :, :].expand_as(v)):  # a batch of one, gray replicated
                    assert _same(fn(arg), _torch_path(monkeypatch, fn, arg)), (fn.__name__, h, w, arrangement)
            fused += pixels.luma_linear(v, (0.25, 0.5, 0.25)) is not None
    assert fused >= 5 * 12  # the kernels ran: every layout but the two not in one block, for the rounding


def test_luma_kernel_on_every_8_bit_colour(fresh, monkeypatch):
    """All 2^24 colours, among them the 194 on an exact .5 tie in MATLAB's rgb2ycbcr, where the order of the
    additions decides the rounding."""
    _need(pixels)
    everything = torch.arange(1 << 24, dtype=torch.int64)
    for chunk in everything.split(1 << 20):
        rgb = torch.stack([chunk >> 16, (chunk >> 8) & 255, chunk & 255]).double().reshape(3, 1024, 1024)
        assert torch.equal(rgb2y_matlab_uint8(rgb), _torch_path(monkeypatch, rgb2y_matlab_uint8, rgb))
        assert torch.equal(rgb2y_linear(rgb), _torch_path(monkeypatch, rgb2y_linear, rgb))


def test_kernel_refuses_rows_outside_the_plane(fresh):
    _need(ssim_map)
    fn = ssim_map.kernel()
    x = torch.zeros(20, 30, dtype=torch.float64)
    out, work = torch.empty(30 * 30, dtype=torch.float64), torch.empty(5 * 30, dtype=torch.float64)
    args = (x.data_ptr(), 30, x.data_ptr(), 30, 20, 30)
    rest = (ssim_module._TAPS_C, 6.5, 58.5, out.data_ptr(), work.data_ptr())
    assert fn(*args, 0, 10, *rest) == 0  # rows 0..9 need input rows 0..19: all there
    assert fn(*args, 0, 11, *rest) == -1
    assert fn(*args, -1, 1, *rest) == -1


def test_built_once_then_loaded_from_the_cache(fresh):
    _need(ssim_map)
    [built] = fresh.glob("ssim_map-*.so")
    stamp = built.stat().st_mtime_ns
    # another process finds it there and compiles nothing: a rebuild would replace the file (new mtime)
    env = dict(os.environ)
    code = ("from sr_bench import native; import sys; "
            "sys.exit(0 if native.library('ssim_map') is not None else native.unavailable('ssim_map'))")
    done = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert built.stat().st_mtime_ns == stamp and len(list(fresh.glob("*.so"))) == 1
    assert not list(fresh.glob(".build-*"))  # no temporary build folder left behind


@pytest.mark.parametrize("setting, reason", [
    ({"CC": "no-such-compiler-xyz"}, "no C compiler 'no-such-compiler-xyz' on PATH"),
    ({"CC": "false"}, "compiling ssim_map.c with 'false' failed"),
    ({native.ENV_SWITCH: "0"}, "SRBENCH_NATIVE=0"),
])
def test_without_a_working_compiler_the_torch_path_gives_the_same_numbers(fresh, monkeypatch, setting, reason):
    gen = torch.Generator().manual_seed(3)
    a, b = _planes(gen, 140, 150, "integer")
    expected = ssim(a, b)  # with the kernel
    native.forget()
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    assert native.library("ssim_map") is None
    assert native.unavailable("ssim_map").startswith(reason), native.unavailable("ssim_map")
    assert ssim(a, b) == expected


def test_cache_key_follows_source_compiler_and_cpu(monkeypatch):
    # -march=native: a library built on one CPU must not be picked up on another (a shared home on a cluster)
    base = native._key(b"int f(void) { return 0; }", "cc")
    assert native._key(b"int f(void) { return 0; }", "cc") == base
    assert native._key(b"int f(void) { return 1; }", "cc") != base
    assert native._key(b"int f(void) { return 0; }", "gcc") != base
    monkeypatch.setattr(native, "_cpu_identity", lambda: "x86_64\nflags : sse2")
    assert native._key(b"int f(void) { return 0; }", "cc") != base


def test_each_piece_can_be_switched_off_alone(fresh, monkeypatch):
    monkeypatch.setenv(native.ENV_SWITCH, "-pixels")
    assert native.PIECES == ("ssim_map", "pixels")
    assert [native.switched_off(p) for p in native.PIECES] == ["", "SRBENCH_NATIVE=-pixels"]
    assert pixels.unavailable() == "SRBENCH_NATIVE=-pixels" and "SRBENCH_NATIVE" not in ssim_map.unavailable()
    monkeypatch.setenv(native.ENV_SWITCH, "pixels")  # only the pieces named
    assert [bool(native.switched_off(p)) for p in native.PIECES] == [True, False]
    monkeypatch.setenv(native.ENV_SWITCH, "-pixel")
    with pytest.raises(UserError, match="unknown native piece .* 'pixel'; did you mean 'pixels'"):
        native.switched_off("pixels")


def test_a_kernel_whose_probe_finds_other_bits_falls_back(fresh, monkeypatch):
    """A platform where the kernel's arithmetic is not torch's (say ``add_(alpha=)`` not fused) is detected at first
    use: the torch path runs, with its numbers, and the reason is kept for ``srbench doctor``."""
    _need(ssim_map)
    gen = torch.Generator().manual_seed(5)
    a, b = _planes(gen, 60, 70, "float")
    expected = _torch_path(monkeypatch, ssim, a, b)
    native.forget()
    real = ssim_map._torch_map
    monkeypatch.setattr(ssim_map, "_torch_map", lambda *args: real(*args).nextafter(torch.tensor(2.0)))
    assert ssim_map.kernel() is None
    assert "gave other bits than torch's path" in ssim_map.unavailable(), ssim_map.unavailable()
    assert ssim(a, b) == expected


def test_doctor_names_each_piece_and_why_it_is_off(fresh, monkeypatch):
    from click.testing import CliRunner

    from sr_bench.cli import cli

    monkeypatch.setenv(native.ENV_SWITCH, "-pixels")
    out = CliRunner().invoke(cli, ["doctor"])
    assert out.exit_code == 0, out.output
    said = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.output.splitlines())
    assert said["native pixels"] == "off: SRBENCH_NATIVE=-pixels"
    assert said["native ssim_map"] == "active" or said["native ssim_map"].startswith("off: ")
    assert said["torch"] == torch.__version__ and said["cache root"].startswith(f"{fresh.parent}  (")
