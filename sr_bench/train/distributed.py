"""Several processes training one model: ``torchrun --nproc-per-node N -m sr_bench.train ...`` (or ``srbench train
--nproc N``, which runs exactly that; docs/training.md). torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
MASTER_PORT; sr_bench joins the process group from those and wraps the network in DistributedDataParallel.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn

from sr_bench.errors import UserError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Ranks:
    """This process's place in a torchrun launch (a single process when not launched by torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UserError("RANK / WORLD_SIZE / LOCAL_RANK must be whole numbers (torchrun sets them)") from None
    return Ranks(rank, world, local)


def start(ranks: Ranks, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA devices, gloo for CPU), and leave it when the process exits."""
    if not ranks.active or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # rank 0 validates and writes files while the others wait in the next collective: allow for a long validation
    dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world, timeout=timedelta(minutes=60))
    atexit.register(_stop)


def _stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class StepModule(nn.Module):
    """The network with its family's training forward as ``forward``: what DistributedDataParallel wraps, since the
    adapters' forwards are closures around the network (LIIF's even calls methods other than ``forward``), and DDP
    only averages the gradients of a backward that started from its own ``forward``."""

    def __init__(self, net: nn.Module, predict):
        super().__init__()
        self.net = net
        self._predict = predict

    def forward(self, lr, hr, scale, gen):
        return self._predict(lr, hr, scale, gen)


def every_parameter_used(net: nn.Module, predict, scales, device: torch.device) -> bool:
    """Whether a forward at the smallest and at the largest scale gives every trainable parameter a gradient (on a
    tiny input; the gradients are cleared after). ASDN's reconstruction branches, for one, depend on the scale."""
    params = [p for p in net.parameters() if p.requires_grad]
    used: set[int] = set()
    side = 8
    for s in {min(scales), max(scales)}:
        hr_side = int(side * s)
        lr = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device)
        hr = torch.rand(1, 3, hr_side, hr_side, generator=torch.Generator().manual_seed(1)).to(device)
        pred, _ = predict(lr, hr, s, torch.Generator().manual_seed(2))
        preds = pred if isinstance(pred, (list, tuple)) else [pred]  # pyramid nets: one per level
        sum(x.float().sum() for x in preds).backward()
        used |= {i for i, p in enumerate(params) if p.grad is not None}
        for p in params:
            p.grad = None
    return len(used) == len(params)


def wrap(net: nn.Module, predict, scales, ranks: Ranks, device: torch.device):
    """``predict`` as DistributedDataParallel runs it (gradients averaged over the ranks), or as it is."""
    if not ranks.active:
        return predict
    unused = not every_parameter_used(net, predict, scales, device)
    return nn.parallel.DistributedDataParallel(StepModule(net, predict),
                                               device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=unused)


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``torchrun --nproc-per-node nproc -m sr_bench.train ARGV`` and return its exit status."""
    # torchrun's parser reads every option, even after the script's name: ARGV's --nproc (the launched processes do
    # without it, they see WORLD_SIZE) would be an ambiguous abbreviation of its --nproc-per-node
    args, skip = [], False
    for a in argv:
        if not skip and a != "--nproc" and not a.startswith("--nproc="):
            args.append(a)
        skip = a == "--nproc"
    # torchrun is `python -m torch.distributed.run`; this interpreter's, so the processes import this sr_bench
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone", "-m",
           "sr_bench.train", *args]
    return subprocess.call(cmd)
