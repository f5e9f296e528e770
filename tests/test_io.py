"""read_image: every pixel format it promises to handle, and clean errors for what it cannot read."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from sr_bench.errors import UserError
from sr_bench.imaging.io import AlphaDroppedWarning, ImageReadError, pixel_sha256, read_image

RNG = np.random.default_rng(0)


def rgb(h=6, w=5):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def png16(path, arr: np.ndarray) -> None:
    """A 16-bit PNG written by hand: Pillow cannot write 16-bit colour, and these are what we must read."""
    h, w, c = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def im2uint8(v):
    return np.floor(v.astype(np.float64) / 257 + 0.5).astype(np.uint8)


def test_rgb_and_gray(tmp_path):
    a = rgb()
    Image.fromarray(a).save(tmp_path / "c.png")
    got = read_image(tmp_path / "c.png")
    assert got.dtype == np.uint8 and got.shape == (6, 5, 3) and np.array_equal(got, a)
    assert got.flags.writeable and got.flags.c_contiguous
    g = a[..., 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    assert np.array_equal(read_image(tmp_path / "g.png"), g[..., None])


def test_rgba_opaque_drops_alpha_silently(tmp_path):
    a = rgb()
    Image.fromarray(np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])).save(tmp_path / "o.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(read_image(tmp_path / "o.png"), a)


def test_rgba_transparent_keeps_stored_colours_and_warns_once(tmp_path):
    a = rgb()
    alpha = np.full(a.shape[:2], 255, np.uint8)
    alpha[0, 0] = 0
    Image.fromarray(np.dstack([a, alpha])).save(tmp_path / "t.png")
    with pytest.warns(AlphaDroppedWarning, match="t.png"):
        got = read_image(tmp_path / "t.png")
    assert np.array_equal(got, a)  # not composited: the transparent pixel keeps its stored colour
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "t.png")  # second read of the same file: no repeat


def test_la_gives_one_channel(tmp_path):
    g = rgb()[..., 0]
    alpha = np.full(g.shape, 255, np.uint8)
    alpha[1, 1] = 7
    Image.fromarray(np.dstack([g, alpha]), mode="LA").save(tmp_path / "la.png")
    with pytest.warns(AlphaDroppedWarning):
        got = read_image(tmp_path / "la.png")
    assert got.shape == (6, 5, 1) and np.array_equal(got[..., 0], g)


def test_palette_colour_and_gray(tmp_path):
    a = rgb(8, 8)
    p = Image.fromarray(a).quantize(colors=16)
    p.save(tmp_path / "p.png")
    expected = np.asarray(p.convert("RGB"))
    got = read_image(tmp_path / "p.png")
    assert got.shape == (8, 8, 3) and np.array_equal(got, expected)

    gray = Image.new("P", (4, 3))
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    idx = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    gray.putdata(idx.ravel().tolist())
    gray.save(tmp_path / "pg.png")
    got = read_image(tmp_path / "pg.png")
    assert got.shape == (3, 4, 1) and np.array_equal(got[..., 0], idx)


def test_palette_with_transparency_is_treated_as_alpha(tmp_path):
    im = Image.new("P", (3, 2))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putdata([0, 1, 0, 1, 0, 1])
    im.save(tmp_path / "pt.png", transparency=1)
    with pytest.warns(AlphaDroppedWarning):
        got = read_image(tmp_path / "pt.png")
    assert got.shape == (2, 3, 3) and tuple(got[0, 1]) == (0, 255, 0)


def test_bilevel_becomes_0_255(tmp_path):
    Image.fromarray(np.array([[True, False], [False, True]])).save(tmp_path / "b.png")
    got = read_image(tmp_path / "b.png")
    assert got.shape == (2, 2, 1) and set(np.unique(got)) == {0, 255}


def test_16bit_gray_uses_im2uint8_rounding(tmp_path):
    # 128 -> 0.498 -> 0, 129 -> 0.502 -> 1, 385 -> 1.498 -> 1, 386 -> 2; a high-byte cut would give 0,0,1,1.
    v = np.array([[0, 128, 129, 385], [386, 65535, 32896, 32895]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (2, 4, 1)
    assert got[..., 0].tolist() == [[0, 0, 1, 1], [2, 255, 128, 128]]
    assert np.array_equal(got[..., 0], im2uint8(v))


@pytest.mark.parametrize("channels", [3, 4, 2])
def test_16bit_colour_png_full_depth(tmp_path, channels):
    v = RNG.integers(0, 65536, (5, 7, channels), dtype=np.uint16)
    if channels in (2, 4):
        v[..., -1] = 65535
    png16(tmp_path / "c16.png", v)
    got = read_image(tmp_path / "c16.png")
    colour = v[..., :-1] if channels in (2, 4) else v
    assert got.shape == (5, 7, colour.shape[2])
    assert np.array_equal(got, im2uint8(colour))


def test_16bit_rgba_translucent_warns(tmp_path):
    v = RNG.integers(0, 65536, (3, 3, 4), dtype=np.uint16)
    v[..., 3] = 65535
    v[0, 0, 3] = 65534
    png16(tmp_path / "a16.png", v)
    with pytest.warns(AlphaDroppedWarning):
        assert read_image(tmp_path / "a16.png").shape == (3, 3, 3)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.fromarray(rgb(16, 16)).convert("CMYK").save(tmp_path / "k.jpg")
    assert read_image(tmp_path / "k.jpg").shape == (16, 16, 3)


def test_float_and_wide_int_are_refused(tmp_path):
    Image.fromarray(np.ones((2, 2), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageReadError, match="floating-point"):
        read_image(tmp_path / "f.tif")
    Image.fromarray(np.full((2, 2), 70000, np.int32)).save(tmp_path / "i.tif")
    with pytest.raises(ImageReadError, match="outside 0..65535"):
        read_image(tmp_path / "i.tif")


@pytest.mark.parametrize("content", [
    b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated", "flipped",
])
def test_corrupt_files_raise_image_read_error(tmp_path, content):
    path = tmp_path / "bad.png"
    if content in ("truncated", "flipped"):
        Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        data = bytearray(path.read_bytes())
        if content == "truncated":
            data = data[: len(data) // 2]
        else:
            data[60:200] = bytes(b ^ 0xFF for b in data[60:200])
        content = bytes(data)
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match="bad.png") as e:
        read_image(path)
    assert isinstance(e.value, UserError)
    assert "unreadable or corrupt" in str(e.value) and "\n" not in str(e.value)


def test_missing_and_truncated_16bit(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    png16(tmp_path / "c16.png", RNG.integers(0, 65536, (40, 40, 3), dtype=np.uint16))
    data = (tmp_path / "c16.png").read_bytes()
    (tmp_path / "c16.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="c16.png"):
        read_image(tmp_path / "c16.png")


def test_pixel_hash_survives_lossless_reencoding(tmp_path):
    a = rgb(20, 30)
    Image.fromarray(a).save(tmp_path / "a.png", compress_level=0)
    Image.fromarray(a).save(tmp_path / "b.png", compress_level=9, optimize=True)
    Image.fromarray(a).save(tmp_path / "c.bmp")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    hashes = {pixel_sha256(read_image(tmp_path / n)) for n in ("a.png", "b.png", "c.bmp")}
    assert len(hashes) == 1


def test_pixel_hash_sees_shape_dtype_and_values():
    a = rgb(4, 4)
    h = pixel_sha256(a)
    assert h == pixel_sha256(a.copy(order="F"))  # memory layout is not content
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert pixel_sha256(b) != h
    assert pixel_sha256(a.reshape(8, 2, 3)) != h  # same bytes, other shape
    assert pixel_sha256(a.astype(np.uint16)) != h
    w = np.arange(6, dtype=np.uint16).reshape(2, 3, 1)
    assert pixel_sha256(w) == pixel_sha256(w.astype(">u2"))  # byte order is not content
