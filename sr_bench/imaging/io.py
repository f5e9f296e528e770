"""Reading images from disk into uint8 ``(H, W, C)`` arrays, C 1 or 3 (the rule for each stored format:
docs/images.md), and hashing decoded pixels."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from sr_bench.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types that Pillow cannot hold at 16 bits: gray+alpha, RGB, RGBA.
_PNG_DEEP_COLOUR_TYPES = {2: "RGB", 4: "LA", 6: "RGBA"}
_HASH_TAG = b"sr_bench.pixels.v1"

# Paths already warned about, so a dataset read once per scale does not repeat the same warning.
_alpha_warned: set[str] = set()


class ImageReadError(UserError):
    """A file that cannot be decoded as an image (missing, truncated, corrupt, or an unsupported pixel format)."""


class AlphaDroppedWarning(UserWarning):
    """An image had a partly transparent alpha channel, which was dropped."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` into a uint8 array of shape ``(H, W, 1)`` or ``(H, W, 3)`` (the rules: docs/images.md)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"cannot read image {path}: no such file")
    try:
        deep = _is_deep_colour_png(path)
    except OSError as e:
        raise ImageReadError(f"cannot read image {path}: {_reason(e)}") from None
    if deep:
        arr16 = _decode_png16(path)
        return _drop_alpha(_im2uint8(arr16), arr16[..., -1] if arr16.shape[2] in (2, 4) else None, 65535, path)
    try:
        with Image.open(path) as im:
            im.load()
            arr = _to_array(im, path)
    except (ImageReadError, Warning):  # ours, and an AlphaDroppedWarning that -W error turned into an exception
        raise
    except Exception as e:  # Pillow's decoders raise many types on bad data (OSError, ValueError, SyntaxError, ...)
        raise ImageReadError(f"cannot read image {path}: unreadable or corrupt file ({_reason(e)})") from None
    # Pillow hands out read-only views; callers (torch.from_numpy, in-place crops) expect an array they own.
    return arr if arr.flags.writeable and arr.flags.c_contiguous else np.array(arr, order="C")


def pixel_sha256(arr: np.ndarray) -> str:
    """sha256 of decoded pixels: shape, dtype and values, independent of how the file was encoded.

    Two files that decode to the same array (e.g. a PNG re-saved at another compression level) hash the same; a
    different channel count (gray saved as RGB) is a different array and hashes differently.
    """
    a = np.asarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    a = np.ascontiguousarray(a)
    h = hashlib.sha256()
    h.update(_HASH_TAG + b"|" + a.dtype.str.encode() + b"|" + "x".join(map(str, a.shape)).encode() + b"|")
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _is_deep_colour_png(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(33)
    # IHDR is always the first chunk: 8-byte signature, 4 length, 4 type, 4 width, 4 height, depth, colour type.
    return (len(head) == 33 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16
            and head[25] in _PNG_DEEP_COLOUR_TYPES)


def _decode_png16(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs deprecated; the pinned version works, and a user cannot act on it.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import torch
            from torchvision.io import ImageReadMode, decode_png
        except ImportError:
            raise ImageReadError(f"cannot read image {path}: 16-bit colour PNG needs torchvision "
                                 "(pip install torchvision) or an 8-bit copy of the file") from None
        try:
            chw = decode_png(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), ImageReadMode.UNCHANGED)
        except Exception as e:  # torchvision reports corrupt data as RuntimeError
            raise ImageReadError(f"cannot read image {path}: unreadable or corrupt file ({_reason(e)})") from None
    return chw.permute(1, 2, 0).contiguous().numpy().astype(np.uint32)


def _im2uint8(v: np.ndarray) -> np.ndarray:
    # MATLAB im2uint8 on uint16: round(v/257). Integer form of floor(v/257 + 1/2); v/257 is never exactly .5.
    return ((v.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


def _drop_alpha(arr: np.ndarray, alpha: np.ndarray | None, opaque: int, path: Path) -> np.ndarray:
    if alpha is None:
        return np.ascontiguousarray(arr)
    if (alpha != opaque).any() and str(path.resolve()) not in _alpha_warned:
        _alpha_warned.add(str(path.resolve()))
        warnings.warn(f"{path}: alpha channel is not fully opaque; it is dropped and the stored colours are used as "
                      "they are (not composited)", AlphaDroppedWarning, stacklevel=2)
    return np.ascontiguousarray(arr[..., :-1])


def _to_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        return _from_palette(im, path)
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.uint8)[..., None]
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        target = "LA" if mode in ("LA", "La") else "RGBA"
        a = np.asarray(im if mode == target else im.convert(target), dtype=np.uint8)
        return _drop_alpha(a, a[..., -1], 255, path)
    if mode.startswith("I;16") or mode == "I":
        v = np.asarray(im)
        if v.size and (v.min() < 0 or v.max() > 65535):
            raise ImageReadError(f"cannot read image {path}: 32-bit integer pixels outside 0..65535 are not "
                                 "supported; save it as an 8- or 16-bit image")
        return _im2uint8(v)[..., None]
    if mode == "F":
        raise ImageReadError(f"cannot read image {path}: floating-point pixels have no agreed 8-bit scale; "
                             "save it as an 8- or 16-bit image")
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ValueError:
        raise ImageReadError(f"cannot read image {path}: pixel mode {mode!r} cannot be converted to RGB; "
                             "save it as RGB or gray") from None


def _from_palette(im: Image.Image, path: Path) -> np.ndarray:
    used = np.unique(np.asarray(im))
    palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    has_alpha = "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
    full = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    rgb = _drop_alpha(full, full[..., -1] if has_alpha else None, 255, path)
    if used.size and used.max() < len(palette):
        entries = palette[used]
        if (entries[:, 0] == entries[:, 1]).all() and (entries[:, 1] == entries[:, 2]).all():
            return np.ascontiguousarray(rgb[..., :1])
    return rgb
