"""Training throughput of ``srbench train`` against a bare PyTorch loop on the same network, measured in one run.

The reference is the least a training step can cost: the same network, Adam, L1, on batches already on the device,
under the same --precision / --channels-last / --compile. ``srbench train`` adds its data pipeline (random HR crops,
MATLAB-bicubic LR made on the CPU in float64, flips) and its bookkeeping. The ratio says how much of the device the
pipeline leaves unused; ``../shared/docs/gpu.md`` quotes, on an H200 at batch 16, 67 it/s for the bare EDSR-baseline
x2 loop (LR patch 48; 63 it/s in bf16) and 8.3 it/s for an ASDN-like body at 96 px in bf16.

    python benchmarks/train_throughput.py                       # defaults: edsr-baseline x2, batch 16, patch 48
    python benchmarks/train_throughput.py --device cuda --precision bf16 --steps 2000 --warm 300 --out edsr_x2.pt
    python benchmarks/train_throughput.py --model asdn --model-opt n_dab=2 --device cuda --precision bf16
    python benchmarks/train_throughput.py --batch 4 --patch 24  # a quick CPU check
    python benchmarks/train_throughput.py --batch 4 --patch 24 --steps 8 --warm 2 --rounds 5 --ddp 2   # CPU, shared

srbench's steps per second come from its own throughput log (PATH.json: images/s per --log-every window), over the
windows after --warm steps, so model building, image loading, the first steps' warm-up and checkpoint writing stay
out. With --out the trained checkpoint (and PATH.json) is kept there.

``--rounds R`` alternates the two loops R times (srbench resuming its run each round, its first --warm steps of each
round untimed) and reports the median of the per-round ratios: on a machine shared with other jobs the load drifts
over minutes, and timing the two loops minutes apart would measure the drift. ``--ddp N`` also times ``srbench
train`` under ``torchrun --nproc-per-node N`` (gloo on CPU; the same global batch, each process with 1/N of the
threads), reported beside it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.data import resolve_dataset
from sr_bench.provenance import device_name, resolve_device
from sr_bench.run.precision import autocast, tf32_switches
from sr_bench.train import train
from sr_bench.train.families import build
from sr_bench.train.patches import load_images, random_batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareLoop:
    """Adam + L1 on the network alone, batches pre-made on the device; ``run(n)`` times n steps."""

    def __init__(self, model: str, scale: str, opts: dict, batch: int, patch: int, device: torch.device,
                 precision: str, channels_last: bool, compile_: bool):
        self.t = build(model, scale, dict(opts), device)
        self.net = self.t.module.train()
        layout = torch.channels_last if channels_last else torch.preserve_format
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile_:
            self.net.compile()
        self.opt = torch.optim.Adam([p for p in self.net.parameters() if p.requires_grad], lr=1e-4,
                                    betas=(0.9, 0.999))
        self.s = self.t.scales[0]
        side = int(patch * self.s)
        self.gen = torch.Generator().manual_seed(0)
        self.lr = torch.rand(batch, 3, patch, patch, generator=self.gen).to(device, memory_format=layout)
        self.hr = torch.rand(batch, 3, side, side, generator=self.gen).to(device, memory_format=layout)
        self.device, self.precision = device, precision

    def run(self, steps: int, warm: int = 0) -> float:
        """Seconds per step over ``steps - warm`` steps after ``warm`` untimed ones."""
        with tf32_switches(self.precision, self.device):
            for i in range(steps):
                if i == warm:
                    _sync(self.device)
                    start = time.perf_counter()
                with autocast(self.precision, self.device):
                    pred, target = self.t.predict(self.lr, self.hr, self.s, self.gen)
                loss = torch.nn.functional.l1_loss(pred.float(), target.float())
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
            _sync(self.device)
        return (time.perf_counter() - start) / (steps - warm)


def bare_loop(model: str, scale: str, opts: dict, batch: int, patch: int, steps: int, warm: int,
              device: torch.device, precision: str, channels_last: bool, compile_: bool) -> float:
    """Seconds per step of Adam + L1 on the network alone, batches pre-made on the device."""
    return BareLoop(model, scale, opts, batch, patch, device, precision, channels_last, compile_).run(steps, warm)


def _timed(log: list, batch: int, after: int) -> tuple[int, float]:
    """(steps, seconds) of the throughput windows that start at or after step ``after``."""
    prev, n, seconds = None, 0, 0.0
    for step, ips in log:
        if prev is not None and prev >= after:
            n += step - prev
            seconds += (step - prev) * batch / ips
        prev = step
    return n, seconds


def srbench_loop(model: str, scale: str, opts: dict, data: str, batch: int, patch: int, steps: int, warm: int,
                 device: str, precision: str, channels_last: bool, compile_: bool, out: Path | None,
                 log_every: int, save_every: int = 0, resume: bool = False, start: int = 0) -> tuple[float, dict]:
    """Seconds per step of ``srbench train`` over steps ``start + warm`` .. ``steps`` (from its throughput log), and
    its PATH.json; ``resume`` continues the run at ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = out or Path(tmp) / "w.pt"
        train(model, [data], path, scales=scale, steps=steps, batch=batch, patch=patch, save_every=save_every,
              log_every=log_every, seed=0, device=device, progress=False, model_opts=dict(opts),
              precision=precision, channels_last=channels_last, compile=compile_, overwrite=not resume,
              resume=resume)
        record = json.loads(path.with_name(path.name + ".json").read_text())
    log = [[start, None]] + [e for e in record["throughput"]["log"] if e[0] > start]
    n, seconds = _timed(log, batch, start + warm)
    return seconds / n, record


def ddp_loop(nproc: int, model: str, scale: str, opts: list[str], data: str, batch: int, patch: int, steps: int,
             warm: int, log_every: int) -> float:
    """Seconds per step of ``srbench train`` under ``torchrun --nproc-per-node nproc`` (CPU, gloo)."""
    threads = max(1, torch.get_num_threads() // nproc)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.pt"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone", "-m",
               "sr_bench.train", model, "--scale", scale, "--data", data, "--batch", str(batch), "--patch",
               str(patch), "--steps", str(steps), "--log-every", str(log_every), "--save-every", "0", "--device",
               "cpu", "--no-progress", "--out", str(path), *[a for o in opts for a in ("--model-opt", o)]]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        record = json.loads(path.with_name(path.name + ".json").read_text())
    n, seconds = _timed([[0, None]] + record["throughput"]["log"], batch, warm)
    return seconds / n


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
    ap.add_argument("--model-opt", action="append", default=[], metavar="K=V", help="model option (repeatable)")
    ap.add_argument("--scale", default="2")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--bare-steps", type=int, default=None, help="steps of the bare loop (default --steps)")
    ap.add_argument("--bare-warm", type=int, default=None, help="untimed first steps of the bare loop (--warm)")
    ap.add_argument("--log-every", type=int, default=None, help="srbench's throughput window (default: warm/2)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--bare-only", action="store_true", help="time the bare loop only")
    ap.add_argument("--out", default=None, help="keep srbench's trained checkpoint here (PATH.json beside it)")
    ap.add_argument("--save-every", type=int, default=0, help="with --out: also save every N steps (0: at the end)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 avoids OpenMP threads spinning against other jobs on a shared CPU)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the bare loop and srbench R times; report the median per-round ratio")
    ap.add_argument("--ddp", type=int, default=0, metavar="N",
                    help="also time srbench train under torchrun with N processes (CPU gloo), reported beside")
    args = ap.parse_args()
    opts = {}
    for pair in args.model_opt:
        k, _, v = pair.partition("=")
        try:
            opts[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            opts[k] = v
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    how = f"{args.precision}{' channels-last' if args.channels_last else ''}{' compiled' if args.compile else ''}"
    print(f"device {device_name(device)}, torch {torch.__version__}; {args.model}{opts or ''} x{args.scale}, "
          f"batch {args.batch}, LR patch {args.patch}, {how}; steps {args.steps} (first {args.warm} not timed)",
          flush=True)
    bare_steps, bare_warm = args.bare_steps or args.steps, args.bare_warm if args.bare_warm is not None else args.warm
    log_every = args.log_every or max(1, args.warm // 2)
    if args.rounds > 1:
        rounds(args, opts, device, log_every)
        return
    ref = bare_loop(args.model, args.scale, opts, args.batch, args.patch, bare_steps, bare_warm, device,
                    args.precision, args.channels_last, args.compile)
    print(f"bare PyTorch loop: {1 / ref:8.2f} it/s ({ref * 1e3:.1f} ms/step over {bare_steps - bare_warm} steps)",
          flush=True)
    if args.bare_only:
        return
    ours, record = srbench_loop(args.model, args.scale, opts, args.data, args.batch, args.patch, args.steps,
                                args.warm, str(device), args.precision, args.channels_last, args.compile,
                                Path(args.out) if args.out else None, log_every, args.save_every)
    data = batch_only(args.data, args.scale, args.batch, args.patch, 20)
    print(f"srbench train:     {1 / ours:8.2f} it/s ({ours * 1e3:.1f} ms/step; PATH.json session "
          f"{record['sessions'][-1]['images_per_second']:.1f} images/s over all {args.steps} steps incl. warm-up)")
    print(f"  of which making one batch on the CPU: {data * 1e3:.1f} ms (on a helper thread with --prefetch, the "
          f"default on CUDA)")
    print(f"ratio srbench / bare: {ref / ours:.2f}x the bare loop's speed")
    losses = record["losses"]
    print(f"loss: {losses[0][1]:.4f} at step {losses[0][0]} -> {losses[-1][1]:.4f} at step {losses[-1][0]}")
    if args.ddp:
        report_ddp(args, log_every, ours)
    if args.out:
        print(f"checkpoint {args.out} (sha256 {record['checkpoint']['sha256'][:16]}); evaluate: {record['run_with']}")


def rounds(args, opts: dict, device: torch.device, log_every: int) -> None:
    bare = BareLoop(args.model, args.scale, opts, args.batch, args.patch, device, args.precision,
                    args.channels_last, args.compile)
    bare.run(args.warm + 1, args.warm)  # warm-up, not counted
    ratios, ours_all, ref_all = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "w.pt"
        for r in range(args.rounds):
            ref = bare.run(args.steps - args.warm)
            ours, record = srbench_loop(args.model, args.scale, opts, args.data, args.batch, args.patch,
                                        (r + 1) * args.steps, args.warm, str(device), args.precision,
                                        args.channels_last, args.compile, out, log_every, resume=r > 0,
                                        start=r * args.steps)
            ratios.append(ref / ours)
            ours_all.append(ours)
            ref_all.append(ref)
            print(f"round {r + 1}: bare {1 / ref:7.3f} it/s, srbench train {1 / ours:7.3f} it/s, ratio "
                  f"{ref / ours:.3f}", flush=True)
    print(f"bare PyTorch loop: {1 / statistics.median(ref_all):8.3f} it/s (median of {args.rounds} rounds of "
          f"{args.steps - args.warm} steps)")
    print(f"srbench train:     {1 / statistics.median(ours_all):8.3f} it/s (median; each round resumes the run, its "
          f"first {args.warm} steps untimed)")
    print(f"ratio srbench / bare: {statistics.median(ratios):.3f}x (median of the rounds; min {min(ratios):.3f}, "
          f"max {max(ratios):.3f})")
    if args.ddp:
        report_ddp(args, log_every, statistics.median(ours_all))


def report_ddp(args, log_every: int, ours: float) -> None:
    per = ddp_loop(args.ddp, args.model, args.scale, args.model_opt, args.data, args.batch, args.patch, args.steps,
                   args.warm, log_every)
    print(f"srbench train, torchrun {args.ddp} gloo processes (global batch {args.batch}, "
          f"{max(1, torch.get_num_threads() // args.ddp)} thread(s) each): {1 / per:8.3f} it/s, "
          f"{per and ours / per:.3f}x the one-process srbench figure")


if __name__ == "__main__":
    main()
