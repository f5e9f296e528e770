"""Training throughput of ``srbench train`` against a bare PyTorch loop on the same network, measured in one run.

The reference is the least a training step can cost: the same network, Adam, L1, on batches already on the device.
``srbench train`` adds its data pipeline (random HR crops, MATLAB-bicubic LR made on the CPU in float64, flips)
and its bookkeeping. The ratio says how much of the device the pipeline leaves unused; ``../shared/docs/gpu.md``
quotes 67 it/s for the bare EDSR-baseline x2 loop (batch 16, LR patch 48) on an H200.

    python benchmarks/train_throughput.py                       # defaults: edsr-baseline x2, batch 16, patch 48
    python benchmarks/train_throughput.py --device cuda --steps 200 --warm 50
    python benchmarks/train_throughput.py --batch 4 --patch 24  # a quick CPU check

srbench's per-step time is (t(steps) - t(warm)) / (steps - warm) over two whole ``train()`` calls, which cancels
model building, image loading and checkpoint writing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.data import resolve_dataset
from sr_bench.provenance import device_name, resolve_device
from sr_bench.train import train
from sr_bench.train.families import build
from sr_bench.train.patches import load_images, random_batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(model: str, scale: str, batch: int, patch: int, steps: int, warm: int, device: torch.device) -> float:
    """Seconds per step of Adam + L1 on the network alone, batches pre-made on the device."""
    t = build(model, scale, {}, device)
    net = t.module.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))
    s = t.scales[0]
    side = int(patch * s)
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(batch, 3, patch, patch, generator=gen).to(device)
    hr = torch.rand(batch, 3, side, side, generator=gen).to(device)
    for i in range(steps):
        if i == warm:
            _sync(device)
            start = time.perf_counter()
        pred, target = t.predict(lr, hr, s, gen)
        loss = torch.nn.functional.l1_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return (time.perf_counter() - start) / (steps - warm)


def srbench_loop(model: str, scale: str, data: str, batch: int, patch: int, steps: int, warm: int,
                 device: str) -> float:
    times = []
    for n in (warm, steps):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            train(model, [data], Path(tmp) / "w.pt", scales=scale, steps=n, batch=batch, patch=patch,
                  save_every=10 ** 9, log_every=10 ** 9, seed=0, device=device, progress=False)
            times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / (steps - warm)


def batch_only(data: str, scale: str, batch: int, patch: int, n: int) -> float:
    """Seconds to make one (LR, HR) batch on the CPU, as the loop does."""
    images = load_images(resolve_dataset(data).items)
    pool = list(range(len(images)))
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(n):
        random_batch(images, pool, batch, patch, Fraction(scale), gen)
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="edsr-baseline")
    ap.add_argument("--scale", default="2")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    print(f"device {device_name(device)}; {args.model} x{args.scale}, batch {args.batch}, LR patch {args.patch}; "
          f"steps {args.steps} (first {args.warm} not timed)")
    ref = bare_loop(args.model, args.scale, args.batch, args.patch, args.steps, args.warm, device)
    ours = srbench_loop(args.model, args.scale, args.data, args.batch, args.patch, args.steps, args.warm, str(device))
    data = batch_only(args.data, args.scale, args.batch, args.patch, max(args.steps - args.warm, 5))
    print(f"bare PyTorch loop: {1 / ref:8.2f} it/s ({ref * 1e3:.1f} ms/step)")
    print(f"srbench train:     {1 / ours:8.2f} it/s ({ours * 1e3:.1f} ms/step)")
    print(f"  of which making one batch on the CPU: {data * 1e3:.1f} ms")
    print(f"ratio srbench / bare: {ref / ours:.2f}x the bare loop's speed")


if __name__ == "__main__":
    main()
