"""Training pairs: random HR crops and their LR, made exactly as the evaluation protocols make LR images.

A batch shares one scale s. Its HR patches are ``floor(patch * s)`` pixels square and its LR patches are
``ceil(hr / s) = patch`` pixels square (for every s > 1), so every batch is one tensor and the model is asked for
the HR patch's size, as a protocol asks for its SR size. The LR is ``imresize(HR, 1/s)`` (MATLAB bicubic,
antialiased) rounded to uint8 values: the ``matlab`` / ``metasr`` degradation, so the network trains on the inputs
it is scored on.

All randomness comes from one ``torch.Generator`` in a fixed order (scale, then per sample: image, row, column,
three flip bits), so a seed fixes the batches, and saving the generator state between steps resumes them exactly.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError
from sr_bench.imaging.quantize import to_uint8_values
from sr_bench.imaging.resize import imresize
from sr_bench.scales import scale_text


def hr_side(patch: int, scale: Fraction) -> int:
    return math.floor(patch * Fraction(scale))


def load_images(items: list[ImageItem]) -> list[torch.Tensor]:
    """(3, H, W) uint8 tensors, gray replicated to RGB (as the Meta-SR and LIIF loaders do)."""
    images = []
    for item in items:
        arr = item.load()
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
        images.append(t.expand(3, -1, -1).contiguous() if t.shape[0] == 1 else t.contiguous())
    return images


def files_sha256(paths: list[Path]) -> str:
    """One hash over the file names and bytes, in order: resuming on other data is caught, renaming a folder is not."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def usable(images: list[torch.Tensor], side: int) -> list[int]:
    """Indices of the images that hold a ``side`` x ``side`` crop."""
    return [i for i, im in enumerate(images) if im.shape[-2] >= side and im.shape[-1] >= side]


def draw(high: int, gen: torch.Generator) -> int:
    """A uniform integer in [0, high) from ``gen``."""
    return int(torch.randint(high, (1,), generator=gen).item())


def random_crop(images: list[torch.Tensor], pool: list[int], side: int, gen: torch.Generator) -> torch.Tensor:
    """One ``side``-square crop (uint8, 3 x side x side) of a random image of ``pool``, randomly flipped/rotated."""
    im = images[pool[draw(len(pool), gen)]]
    y = draw(im.shape[-2] - side + 1, gen)
    x = draw(im.shape[-1] - side + 1, gen)
    crop = im[:, y:y + side, x:x + side]
    hflip, vflip, rot = torch.randint(2, (3,), generator=gen).tolist()
    if hflip:
        crop = crop.flip(-1)
    if vflip:
        crop = crop.flip(-2)
    if rot:  # with the two flips: all 8 symmetries of the square (EDSR's augmentation)
        crop = crop.transpose(-2, -1)
    return crop


def degrade(hr255: torch.Tensor, scale: Fraction) -> torch.Tensor:
    """LR of float64 HR values in 0..255: MATLAB ``imresize(HR, 1/s)`` rounded to uint8 values (still float)."""
    return to_uint8_values(imresize(hr255, scale=1 / Fraction(scale)))


def random_batch(images: list[torch.Tensor], pool: list[int], batch: int, patch: int, scale: Fraction,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) float32 RGB in [0, 1]: (batch, 3, patch, patch) and (batch, 3, hr, hr), hr = floor(patch * scale)."""
    side = hr_side(patch, scale)
    hr = torch.stack([random_crop(images, pool, side, gen) for _ in range(batch)]).to(torch.float64)
    lr = degrade(hr, scale)
    if lr.shape[-2:] != (patch, patch):  # ceil(floor(p s) / s) = p for every s > 1; a failure here is a bug
        raise RuntimeError(f"LR patch {tuple(lr.shape[-2:])} for HR {side} at x{scale}, expected {patch}")
    return (lr / 255.0).float(), (hr / 255.0).float()


def check_patch(images: list[torch.Tensor], patch: int, scales: list[Fraction]) -> list[int]:
    """The images every scale can crop from, or a UserError saying how small the patch must be."""
    top = max(scales)
    side = hr_side(patch, top)
    pool = usable(images, side)
    if not pool:
        best = max(min(im.shape[-2:]) for im in images)
        fits = max(math.floor(best / top), 1)
        raise UserError(f"no training image is at least {side}x{side} pixels (--patch {patch} at x{scale_text(top)}); "
                        f"the largest has a shorter side of {best}: lower --patch to {fits} or train on larger images")
    return pool
