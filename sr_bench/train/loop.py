"""``srbench train``: the loop. L1 loss, Adam (betas 0.9/0.999), optional step halving of the learning rate.

Resuming is exact on CPU: the weights, Adam's state and the data generator's state are saved between two steps, the
learning rate is a function of the step alone, and nothing else draws random numbers; so N steps in one go and N/2
+ ``--resume`` to N give the same bits. (CUDA kernels are not bit-reproducible, so there it is only close.)
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sr_bench.data import resolve_dataset
from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import sha256_file
from sr_bench.provenance import device_name, package_versions, resolve_device
from sr_bench.scales import scale_text
from sr_bench.train import checkpoint as ckpt
from sr_bench.train.families import Trainable, build
from sr_bench.train.patches import check_patch, draw, files_sha256, hr_side, load_images, random_batch
from sr_bench.train.scales import describe

BETAS = (0.9, 0.999)
# The fields that decide the weights, and their flags: a resumed run must repeat them (--steps, --save-every,
# --log-every and --device may change).
_SAME_ON_RESUME = {"model": "MODEL", "model_opts": "--model-opt", "scales": "--scales", "batch": "--batch",
                   "patch": "--patch", "lr": "--lr", "lr_halve_every": "--lr-halve-every", "seed": "--seed",
                   "data_sha256": "--data (the files' sha256)"}


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"{value[0]}..{value[-1]} ({len(value)} values)"
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return repr(value)


@dataclass
class TrainResult:
    checkpoint: Path
    sidecar: Path
    resume_file: Path
    sha256: str
    steps_done: int
    losses: list[list]  # [step, mean L1 over the steps since the previous entry]
    run_command: str
    notes: list[str]


def lr_at(step: int, lr: float, halve_every: int) -> float:
    """The learning rate of step ``step`` (0-based): ``lr`` halved every ``halve_every`` steps (0: constant)."""
    return lr * 0.5 ** (step // halve_every) if halve_every else lr


def lr_schedule(steps: int, lr: float, halve_every: int) -> list[list]:
    """[first step, rate] for each rate the run uses."""
    if not halve_every:
        return [[0, lr]]
    return [[k, lr_at(k, lr, halve_every)] for k in range(0, steps, halve_every)]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_numbers(steps, batch, patch, lr, lr_halve_every, save_every, log_every) -> None:
    for flag, value, least in (("--steps", steps, 1), ("--batch", batch, 1), ("--patch", patch, 2),
                               ("--lr-halve-every", lr_halve_every, 0), ("--save-every", save_every, 0),
                               ("--log-every", log_every, 1)):
        if int(value) != value or value < least:
            raise UserError(f"{flag} must be a whole number >= {least}, got {value}")
    if not (math.isfinite(lr) and lr > 0):
        raise UserError(f"--lr must be a positive number, got {lr}")


def train(model: str, data: list[str], out: Path, *, steps: int, scales: str | None = None, batch: int = 16,
          patch: int = 48, lr: float = 1e-4, lr_halve_every: int = 0, seed: int = 0, device: str = "auto",
          save_every: int = 1000, log_every: int = 100, data_root: str | None = None,
          model_opts: dict | None = None, resume: bool = False, overwrite: bool = False,
          progress: bool = True) -> TrainResult:
    """Train ``model`` from its untrained init on HR images of ``data`` (dataset names, ``demo`` or folders) and
    write ``out`` (state_dict), ``out.json`` and ``out.resume``. See ``srbench train --help``."""
    _check_numbers(steps, batch, patch, lr, lr_halve_every, save_every, log_every)
    if not data:
        raise UserError("no training data: give --data with a dataset name, demo, or a folder of HR images")
    out = Path(out).expanduser()
    opts = dict(model_opts or {})
    dev = resolve_device(device)
    t = build(model, scales, opts, dev)
    ckpt.check_out(out, resume, overwrite)

    datasets = [resolve_dataset(d, data_root=data_root) for d in data]
    items = [it for ds in datasets for it in ds.items]
    images = load_images(items)
    pool = check_patch(images, patch, t.scales)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        tqdm.write(f"note: {text}", file=sys.stderr)

    if len(pool) < len(images):
        small = [items[i].name for i in range(len(items)) if i not in set(pool)]
        note(f"{len(small)} image(s) smaller than the {hr_side(patch, max(t.scales))}-pixel HR patch are not used: "
             f"{', '.join(small[:5])}{' ...' if len(small) > 5 else ''}")
    request = {
        "model": model, "model_opts": opts, "scales": [scale_text(s) for s in t.scales], "batch": batch,
        "patch": patch, "lr": lr, "lr_halve_every": lr_halve_every, "seed": seed,
        "data_sha256": files_sha256([it.path for it in items]),
    }

    gen = torch.Generator().manual_seed(seed)
    params = [p for p in t.module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=BETAS)
    start, losses, window, sessions, created = 0, [], [0.0, 0], [], _now()
    if resume:
        state = ckpt.load_resume(out)
        old = state["request"]
        for key, flag in _SAME_ON_RESUME.items():
            if old.get(key) != request[key]:
                raise UserError(f"--resume: {flag} is {_short(request[key])} here but {_short(old.get(key))} in the "
                                f"interrupted run; repeat its options (see {str(ckpt.sidecar_path(out))!r})")
        t.module.load_state_dict(state["model"], strict=True)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        start, losses, window = int(state["step"]), list(state["losses"]), list(state["window"])
        sessions, created = list(state["sessions"]), state["created"]
        if start >= steps:
            note(f"{out} is already at step {start} >= --steps {steps}; raise --steps to train longer")
            return _result(t, out, start, losses, notes, sha=sha256_file(out) if out.is_file() else "")
    session = {"from_step": start, "to_step": start, "device": device_name(dev), "started": _now(), "seconds": 0.0}
    sessions.append(session)
    clock = time.perf_counter()

    def save(done: int) -> str:
        session.update(to_step=done, seconds=round(time.perf_counter() - clock, 3))
        ckpt.save_resume(out, {"request": request, "step": done, "model": ckpt.cpu_state_dict(t.module),
                               "optimizer": opt.state_dict(), "generator": gen.get_state(), "losses": losses,
                               "window": window, "sessions": sessions, "created": created})
        sha = ckpt.save_checkpoint(out, t.module)
        ckpt.write_sidecar(out, _record(t, out, request, datasets, items, pool, done, steps, losses, sessions,
                                        created, sha))
        return sha

    tqdm.write(f"training {model} at x{describe(t.scales)} on {len(pool)} image(s), device {device_name(dev)}: "
               f"{out}", file=sys.stderr)
    bar = tqdm(total=steps, initial=start, disable=not progress, unit="step", file=sys.stderr, dynamic_ncols=True,
               desc=model)
    t.module.train()
    sha = ""
    try:
        for step in range(start, steps):
            rate = lr_at(step, lr, lr_halve_every)
            for group in opt.param_groups:
                group["lr"] = rate
            s = t.scales[draw(len(t.scales), gen)] if len(t.scales) > 1 else t.scales[0]
            lr_batch, hr_batch = random_batch(images, pool, batch, patch, s, gen)
            pred, target = t.predict(lr_batch.to(dev), hr_batch.to(dev), s, gen)
            loss = (pred - target).abs().mean()
            value = loss.item()
            if not math.isfinite(value):
                raise UserError(f"the loss became {value} at step {step + 1} (x{scale_text(s)}); lower --lr "
                                f"(it was {rate:g}); the last saved checkpoint is kept")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
            window = [window[0] + value, window[1] + 1]
            if done % log_every == 0 or done == steps:
                losses.append([done, window[0] / window[1]])
                window = [0.0, 0]
                bar.set_postfix(loss=f"{losses[-1][1]:.4f}", lr=f"{rate:.3g}", refresh=False)
            bar.update(1)
            if save_every and done % save_every == 0 and done < steps:
                save(done)
        sha = save(steps)
    finally:
        bar.close()
        t.module.eval()
    return _result(t, out, steps, losses, notes, sha)


def _result(t: Trainable, out: Path, done: int, losses, notes, sha: str) -> TrainResult:
    return TrainResult(checkpoint=out, sidecar=ckpt.sidecar_path(out), resume_file=ckpt.resume_path(out), sha256=sha,
                       steps_done=done, losses=losses, run_command=t.run_command(str(out)), notes=notes)


def _record(t: Trainable, out: Path, request: dict, datasets, items, pool, done: int, steps: int, losses, sessions,
            created: str, sha: str) -> dict:
    return {
        "format": "sr_bench-train/1",
        "model": t.name,
        "variant": t.variant,
        "model_opts": request["model_opts"],
        "model_config": t.model.config,
        "scales": request["scales"],
        "scale_sampling": "one scale per batch, uniform over the list" if len(t.scales) > 1 else "fixed",
        "steps_done": done,
        "steps": steps,
        "seed": request["seed"],
        "batch": request["batch"],
        "patch": {"lr": request["patch"], "hr": {scale_text(s): hr_side(request["patch"], s) for s in t.scales[:1]
                                                  + t.scales[-1:]}},
        "loss": f"L1 on {'RGB' if t.target == 'rgb' else 'Y (MATLAB rgb2ycbcr)'} in [0, 1] units",
        "optimizer": {"name": "Adam", "betas": list(BETAS), "eps": 1e-8},
        "lr": {"initial": request["lr"], "halve_every": request["lr_halve_every"],
               "schedule": lr_schedule(steps, request["lr"], request["lr_halve_every"])},
        "degradation": "MATLAB imresize(HR, 1/s) bicubic antialiased, rounded to uint8 (the matlab/metasr protocols)",
        "augmentation": "random horizontal/vertical flips and transposition (8 symmetries)",
        "init": "the model's deterministic untrained weights (the ones --allow-untrained runs)",
        "data": {"names": [d.name for d in datasets], "images": len(items), "used": len(pool),
                 "files_sha256": request["data_sha256"]},
        "losses": losses,
        "sessions": sessions,
        "device": sessions[-1]["device"],
        "package_versions": package_versions(),
        "checkpoint": {"file": out.name, "sha256": sha, "layout": "state_dict"},
        "resume_file": ckpt.resume_path(out).name,
        "run_with": t.run_command(str(out)),
        "created": created,
        "updated": _now(),
    }
