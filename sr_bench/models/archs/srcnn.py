"""SRCNN (Dong et al., ECCV'14 / TPAMI'16): three convolutions on the bicubic-upscaled Y channel.

``conv1`` 9x9 1->64 + ReLU, ``conv2`` f2 x f2 64->32 + ReLU (f2 = 5 for 9-5-5, 1 for 9-1-5), ``conv3`` 5x5 32->1.
Parameters: 9-5-5 57,281; 9-1-5 8,129 (papers.md §0).

Padding: the original convolutions are 'valid', so the output is 12 (9-5-5) / 8 (9-1-5) pixels smaller than the input
and the authors evaluate on the shrunken centre. For benchmarking, where every model must return the full target size,
all three convolutions are zero-padded 'same' (padding k // 2), as in the common PyTorch reimplementation
(yjn870/SRCNN-pytorch, whose key names ``conv1/conv2/conv3`` these are). A border of 6 pixels therefore sees zero
padding; with the usual shave of s pixels this costs a little PSNR at x2/x3 relative to the paper's 'valid' evaluation.
Y in 0..1 units in and out (MATLAB double), no clipping inside the network.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import build_module, load_strict
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
        if paths:
            sd, self.checkpoint_sha256 = self._read_state_dict(paths[0])
            w = sd.get("conv2.weight")
            found = next((v for v, f in SRCNN_VARIANTS.items() if w is not None and w.dim() == 4 and w.shape[-1] == f),
                         None)
            if variant is not None and found is not None and found != variant:
                raise UserError(f"checkpoint {str(paths[0])!r} is an SRCNN {found} model, "
                                f"but variant={variant} was asked")
            variant = variant or found or "9-5-5"
            f2 = SRCNN_VARIANTS[variant]
            net = build_module(lambda: SRCNN(f2), meta=True)
            load_strict(net, sd, self.model_name, paths[0])
        else:
            variant = variant or "9-5-5"
            f2 = SRCNN_VARIANTS[variant]
            net = build_module(lambda: SRCNN(f2), meta=False)
        self.variant = variant
        self.net = self._prepare(net)
        self.config.update(variant=variant, padding="zero-same")
