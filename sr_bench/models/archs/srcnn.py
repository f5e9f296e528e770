"""SRCNN (Dong et al., ECCV'14 / TPAMI'16): three convolutions on the bicubic-upscaled Y channel (9-5-5 or 9-1-5).

Layout, key names and departures from the paper: docs/architectures.md, "SRCNN".
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.models.luma import PreUpsamplingUpscaler

SRCNN_VARIANTS = {"9-5-5": 5, "9-1-5": 1}


class SRCNN(nn.Module):
    def __init__(self, f2: int = 5, n1: int = 64, n2: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, n1, 9, padding=4)
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.conv3 = nn.Conv2d(n2, 1, 5, padding=2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(y)))))


class SRCNNUpscaler(PreUpsamplingUpscaler):
    """SRCNN on the MATLAB-bicubic Y; one network for every scale (``variant`` 9-5-5 or 9-1-5, inferred from a
    checkpoint's ``conv2.weight``)."""
    tile_overlap: ClassVar[int] = 8  # the receptive-field radius (bicubic-input pixels), so <= 8 LR pixels

    model_name: ClassVar[str] = "srcnn"

    def __init__(self, checkpoint=None, allow_untrained: bool = False, variant: str | None = None):
        if variant is not None and variant not in SRCNN_VARIANTS:
            raise UserError(f"model 'srcnn' has no variant {variant!r}; known: {', '.join(SRCNN_VARIANTS)}")
        paths = self._init_single(checkpoint, allow_untrained, {})
        sd, self.checkpoint_sha256 = self._read_state_dict(paths[0]) if paths else (None, None)
        if sd is not None:
            w = sd.get("conv2.weight")
            found = next((v for v, f in SRCNN_VARIANTS.items() if w is not None and w.dim() == 4 and w.shape[-1] == f),
                         None)
            if variant is not None and found is not None and found != variant:
                raise UserError(f"checkpoint {str(paths[0])!r} is an SRCNN {found} model, "
                                f"but variant={variant} was asked")
            variant = variant or found
        variant = variant or "9-5-5"
        self.variant = variant
        self.net = self._network(lambda: SRCNN(SRCNN_VARIANTS[variant]), sd, paths)
        self.config.update(variant=variant, padding="zero-same")
