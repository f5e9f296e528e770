"""VDSR (Kim et al., CVPR'16): 20 3x3 convolutions on the bicubic-upscaled Y, plus the input (global residual).

``input`` 1->64 + ReLU, ``body.{0..17}`` 64->64 + ReLU, ``output`` 64->1, zero padding 1 everywhere (the official
MatConvNet model pads, so the output has the input's size); biases included: 665,921 parameters (papers.md §0).
One network serves x2/x3/x4 (trained on all three at once). Y in 0..1 units (MATLAB double), no clipping inside.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from sr_bench.models.luma import PreUpsamplingUpscaler


class VDSR(nn.Module):
    def __init__(self, depth: int = 20, n_feats: int = 64):
        super().__init__()
        self.input = nn.Conv2d(1, n_feats, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(n_feats, n_feats, 3, padding=1) for _ in range(depth - 2))
        self.output = nn.Conv2d(n_feats, 1, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.input(y))
        for conv in self.body:
            h = self.relu(conv(h))
        return self.output(h) + y


class VDSRUpscaler(PreUpsamplingUpscaler):
    """VDSR on the MATLAB-bicubic Y; one network for every scale (trained on x2, x3, x4)."""
    tile_overlap: ClassVar[int] = 20  # the receptive-field radius: 20 3x3 convolutions on the bicubic input

    model_name: ClassVar[str] = "vdsr"

    def __init__(self, checkpoint=None, allow_untrained: bool = False):
        paths = self._init_single(checkpoint, allow_untrained, {})
        sd, self.checkpoint_sha256 = self._read_state_dict(paths[0]) if paths else (None, None)
        self.net = self._network(VDSR, sd, paths)
