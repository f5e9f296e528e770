"""A protocol = frozen rules + three pure functions: prepare HR, make LR, and build the views metrics measure.

Tensors are (C, H, W) float64 holding 8-bit values 0..255 (uint8 semantics kept in float so one dtype flows through);
C is 1 (gray) or 3 (RGB).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch

from sr_bench.scales import scale_text


class ImageTooSmall(ValueError):
    """The image cannot be evaluated at this scale (recorded as an error row, the run goes on)."""


class HRSource:
    """One HR image and what is derived from it, shared by all scales of a run.

    Every protocol compares against a top-left crop of one full-size HR (after its colour rule), and colour
    conversions are per-pixel, so a full-size luma computed once serves every scale: ``derived`` memoises them.
    """

    def __init__(self, hr: torch.Tensor):
        self.hr = hr
        self._memo: dict[str, torch.Tensor] = {}

    def derived(self, key: str, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]


def as_source(hr: torch.Tensor | HRSource) -> HRSource:
    return hr if isinstance(hr, HRSource) else HRSource(hr)


@dataclass(frozen=True)
class Case:
    """One (image, scale) prepared by a protocol."""

    hr: torch.Tensor  # the HR the SR is compared with: a top-left crop of ``full`` to sr_size
    lr: torch.Tensor  # model input, 0..255 integer values
    sr_size: tuple[int, int]
    shave: int
    gray: bool  # the source image had one channel
    full: torch.Tensor  # the full-size HR ``hr`` is cropped from
    source: HRSource

    def hr_derived(self, key: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``fn(hr)`` for a per-pixel ``fn``, computed once per image on the full HR and cropped."""
        full = self.source.derived(key, lambda: fn(self.full))
        return full[..., : self.sr_size[0], : self.sr_size[1]]


class Views:
    """The (sr, hr) pair each metric view receives (see ``sr_bench.metrics.base.View``), built on first use:
    a run without LPIPS never pays for the RGB view, one with PSNR only never builds the SSIM luma."""

    def __init__(self, **builders: Callable[[], tuple[torch.Tensor, torch.Tensor]]):
        self._builders = {view: functools.cache(build) for view, build in builders.items()}

    def pair(self, view: str) -> tuple[torch.Tensor, torch.Tensor]:
        if view not in self._builders:
            raise KeyError(f"this protocol provides no {view!r} view (has: {', '.join(self._builders)})")
        return self._builders[view]()

    def __getattr__(self, view: str) -> tuple[torch.Tensor, torch.Tensor]:
        if view.startswith("_"):
            raise AttributeError(view)
        return self.pair(view)


@dataclass(frozen=True)
class Protocol:
    """Base of named protocols. Every dataclass field is a rule and enters the fingerprint; the defaults here are
    every protocol's."""

    name: str
    version: int = 1
    summary: str = ""
    lpips_region: str = "full SR image, RGB in [-1, 1], not shaved"

    def rules(self) -> dict:
        # lpips_region is declared here, first, but listed after the protocol's own rules (run.json, report)
        fields = sorted(dataclasses.fields(self), key=lambda f: f.name == "lpips_region")
        return {f.name: getattr(self, f.name) for f in fields}

    @functools.cached_property  # rules are frozen; every row of a run carries it
    def fingerprint(self) -> str:
        blob = json.dumps(self.rules(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def check_scale(self, s: Fraction) -> None:
        """Raise UserError if this protocol cannot evaluate scale ``s`` at all."""

    def prepare(self, hr: torch.Tensor, s: Fraction) -> Case:
        raise NotImplementedError

    def quantize(self, sr01: torch.Tensor) -> torch.Tensor:
        """Model output in [0, 1] -> 0..255 values the metrics see."""
        raise NotImplementedError

    def views(self, sr: torch.Tensor, case: Case) -> Views:
        raise NotImplementedError


def shave(x: torch.Tensor, n: int) -> torch.Tensor:
    return x[..., n:-n, n:-n] if n > 0 else x


def require_size(h: int, w: int, need: int, s: Fraction, image: tuple[int, int]) -> None:
    """ImageTooSmall unless ``h``x``w``, the image's size ``image`` or what the protocol's crop left of it, is at least
    ``need``x``need`` (the message names the size the user knows, not a crop of 0x0)."""
    if h < need or w < need:
        size = f"image {image[0]}x{image[1]} is too small for scale {scale_text(s)}"
        if image != (h, w):
            raise ImageTooSmall(f"{size}: the protocol's crop leaves {h}x{w}, and it needs at least {need}x{need}")
        raise ImageTooSmall(f"{size} (needs at least {need}x{need})")
