"""Training pairs: random HR crops and their LR, made exactly as the evaluation protocols make LR images.

A batch shares one scale s. Its HR patches are ``floor(patch * s)`` pixels square and its LR patches are
``ceil(hr / s) = patch`` pixels square (for every s > 1), so every batch is one tensor and the model is asked for
the HR patch's size, as a protocol asks for its SR size. The LR is the ``matlab`` / ``metasr`` degradation, so the
network trains on the inputs it is scored on. Randomness is counter-based, so a batch is a function of (seed, step)
whoever makes it (docs/training.md, "How a step is made"), and ``prefetched`` can make it early on a helper thread.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sr_bench.data.items import ImageItem
from sr_bench.errors import UserError
from sr_bench.imaging.io import ImageReadError
from sr_bench.imaging.quantize import to_uint8_values
from sr_bench.imaging.resize import imresize
from sr_bench.scales import scale_text

DEFAULT_CACHE_MB = 4096


def hr_side(patch: int, scale: Fraction) -> int:
    return math.floor(patch * Fraction(scale))


def as_rgb_tensor(arr: np.ndarray) -> torch.Tensor:
    """(3, H, W) uint8 from a decoded (H, W, C) array, gray replicated to RGB (as the Meta-SR and LIIF loaders do)."""
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    return t.expand(3, -1, -1).contiguous() if t.shape[0] == 1 else t.contiguous()


def load_images(items: list[ImageItem]) -> list[torch.Tensor]:
    """Every image decoded, as (3, H, W) uint8 tensors (small sets; ``ImageBank`` for large ones)."""
    return [as_rgb_tensor(item.load()) for item in items]


def image_size(item: ImageItem) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels."""
    try:
        with Image.open(item.path) as im:
            w, h = im.size
    except Exception as e:  # Pillow raises many types on bad headers
        raise ImageReadError(f"cannot read image {item.path}: unreadable or corrupt file ({e})") from None
    return h, w


class ImageBank:
    """The training images by index: ``sizes`` from the headers, ``bank[i]`` the (3, H, W) uint8 pixels, decoded
    on first use and kept while the cache holds at most ``cache_bytes`` (least recently used out first; one image
    larger than the cache is decoded on every use). Thread-safe: a helper thread makes batches from it."""

    def __init__(self, items: list[ImageItem], cache_bytes: int):
        self.items = list(items)
        self.sizes = [image_size(it) for it in self.items]
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.decodes = 0  # how many times an image was decoded (a cache too small for the data shows here)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        with self._lock:
            hit = self._cache.get(i)
            if hit is not None:
                self._cache.move_to_end(i)
                return hit
        im = as_rgb_tensor(self.items[i].load())
        if tuple(im.shape[-2:]) != self.sizes[i]:
            raise UserError(f"{self.items[i].path} changed while training (now {im.shape[-1]}x{im.shape[-2]}); "
                            f"leave the training images alone while a run reads them")
        with self._lock:
            self.decodes += 1
            size = im.numel()
            if size <= self.cache_bytes and i not in self._cache:
                while self._cache and self._held + size > self.cache_bytes:
                    _, old = self._cache.popitem(last=False)
                    self._held -= old.numel()
                self._cache[i] = im
                self._held += size
        return im


def files_sha256(paths: list[Path]) -> str:
    """One hash over the file names and bytes, in order: resuming on other data is caught, renaming a folder is not."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def draw(high: int, gen: torch.Generator) -> int:
    return int(torch.randint(high, (1,), generator=gen).item())


def seeded(*key: int | str) -> torch.Generator:
    """A generator seeded from ``key`` (e.g. seed, step, sample), independent of every other key's."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))


def random_crop(images, sizes: list[tuple[int, int]], pool: list[int], side: int,
                gen: torch.Generator) -> torch.Tensor:
    """One ``side``-square crop (uint8, 3 x side x side) of a random image of ``pool``, randomly flipped/rotated.
    ``images[i]`` gives image i's pixels, ``sizes[i]`` its (H, W)."""
    i = pool[draw(len(pool), gen)]
    h, w = sizes[i]
    y = draw(h - side + 1, gen)
    x = draw(w - side + 1, gen)
    crop = images[i][:, y:y + side, x:x + side]
    hflip, vflip, rot = torch.randint(2, (3,), generator=gen).tolist()
    if hflip:
        crop = crop.flip(-1)
    if vflip:
        crop = crop.flip(-2)
    if rot:  # with the two flips: all 8 symmetries of the square (EDSR's augmentation)
        crop = crop.transpose(-2, -1)
    return crop


def pairs(crops: list[torch.Tensor], patch: int, scale: Fraction) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) float32 RGB in [0, 1] of uint8 HR crops: (n, 3, patch, patch) and (n, 3, hr, hr)."""
    hr = torch.stack(crops).to(torch.float64)
    lr = to_uint8_values(imresize(hr, scale=1 / Fraction(scale)))  # MATLAB imresize(HR, 1/s), uint8 values
    if lr.shape[-2:] != (patch, patch):  # ceil(floor(p s) / s) = p for every s > 1; a failure here is a bug
        raise RuntimeError(f"LR patch {tuple(lr.shape[-2:])} for HR {hr.shape[-1]} at x{scale}, expected {patch}")
    return (lr / 255.0).float(), (hr / 255.0).float()


def step_batch(images, sizes: list[tuple[int, int]], pool: list[int], scales: list[Fraction], patch: int, seed: int,
               step: int, first: int, count: int) -> tuple[Fraction, torch.Tensor, torch.Tensor]:
    """(scale, LR, HR) of samples ``first`` .. ``first + count - 1`` of step ``step``'s global batch."""
    s = scales[draw(len(scales), seeded(seed, step, "scale"))] if len(scales) > 1 else scales[0]
    side = hr_side(patch, s)
    crops = [random_crop(images, sizes, pool, side, seeded(seed, step, j)) for j in range(first, first + count)]
    lr, hr = pairs(crops, patch, s)
    return s, lr, hr


def random_batch(images: list[torch.Tensor], pool: list[int], batch: int, patch: int, scale: Fraction,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) of ``batch`` crops of decoded ``images`` drawn from one generator (checks and benchmarks)."""
    sizes = [tuple(im.shape[-2:]) for im in images]
    side = hr_side(patch, scale)
    return pairs([random_crop(images, sizes, pool, side, gen) for _ in range(batch)], patch, scale)


def check_patch(sizes: list[tuple[int, int]], patch: int, scales: list[Fraction]) -> list[int]:
    """The images every scale can crop from, or a UserError saying how small the patch must be."""
    top = max(scales)
    side = hr_side(patch, top)
    pool = [i for i, (h, w) in enumerate(sizes) if h >= side and w >= side]
    if not pool:
        best = max(min(hw) for hw in sizes)
        fits = max(math.floor(best / top), 1)
        raise UserError(f"no training image is at least {side}x{side} pixels (--patch {patch} at x{scale_text(top)}); "
                        f"the largest has a shorter side of {best}: lower --patch to {fits} or train on larger images")
    return pool


def prefetched(make: Callable[[int], tuple], start: int, stop: int, depth: int, pin: bool = False) -> Iterator[tuple]:
    """``make(step)`` for step in ``range(start, stop)``, in order, ``depth`` ahead on a helper thread (``depth`` 0:
    made on the calling thread when asked for). An exception in ``make`` is raised by the ``next()`` that would have
    returned its batch; ``close()`` stops the helper. On CUDA (``pin``) batches go to pinned memory, so the copy to
    the device is asynchronous (``non_blocking``). docs/training.md, "How a step is made, and throughput"."""
    def prepare(step: int) -> tuple:
        item = make(step)
        return tuple(x.pin_memory() if isinstance(x, torch.Tensor) else x for x in item) if pin else item

    if depth <= 0:
        yield from map(prepare, range(start, stop))
        return
    helper = ThreadPoolExecutor(1, thread_name_prefix="srbench-batches")
    steps = iter(range(start, stop))
    try:
        ahead = deque(helper.submit(prepare, step) for step in islice(steps, depth))
        while ahead:
            ahead.extend(helper.submit(prepare, step) for step in islice(steps, 1))
            yield ahead.popleft().result()
    finally:
        helper.shutdown(wait=True, cancel_futures=True)
