"""Checkpoints for learned plugins, read and loaded the way the built-in models read and load theirs (README,
"Weights"): thin names for the loaders in ``archs/blocks.py``, which every built-in adapter uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from sr_bench.models.archs.blocks import (
    checkpoint_paths,
    load_strict,
    needs_weights,
    read_checkpoint,
    unwrap_state_dict,
)


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    sha256: str  # of the file's bytes: what result rows record
    state_dict: dict[str, torch.Tensor]


def read_weights(checkpoint, model: str, example: str = "WEIGHTS.pth") -> list[WeightsFile]:
    """Every file of ``checkpoint`` (the ``checkpoint`` argument a model receives from ``--models NAME=PATH``: one
    path, or several joined by ``os.pathsep``, or a list). No checkpoint is the built-ins' "needs weights" error,
    naming ``example``."""
    paths = checkpoint_paths(checkpoint)
    if not paths:
        raise needs_weights(model, example, builtin=False)
    out = []
    for path in paths:
        obj, sha = read_checkpoint(path, model)
        sd, _ = unwrap_state_dict(obj, path, model)
        out.append(WeightsFile(path=path, sha256=sha, state_dict=sd))
    return out


def load_weights(module: nn.Module, weights: WeightsFile, model: str, hint: str = "") -> nn.Module:
    """``module.load_state_dict(weights.state_dict, strict=True)``, or a one-line UserError naming up to five missing
    and unexpected keys and shape mismatches (plus ``hint``). Returns ``module``."""
    load_strict(module, weights.state_dict, model, weights.path, hint)
    return module
