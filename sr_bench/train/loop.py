"""``srbench train``: the loop. L1 loss, Adam (betas 0.9/0.999), optional step halving of the learning rate.

Resuming is exact on CPU: the weights, Adam's state and the data generator's state are saved between two steps, the
learning rate is a function of the step alone, and nothing else draws random numbers; so N steps in one go and N/2
+ ``--resume`` to N give the same bits. (CUDA kernels are not bit-reproducible, so there it is only close.)

GPU options, all off by default (then a step is exactly the plain float32 step): ``--precision bf16`` (autocast
around the forward; weights, loss and Adam stay float32) or ``tf32``, ``--channels-last`` (NHWC weights and inputs,
what cuDNN's fast bf16/tf32 convolutions want), ``--compile`` (``torch.compile`` of the network's forward), ``--ema
DECAY`` (``sr_bench.train.ema``) and ``--clip-grad NORM`` (total gradient norm). The next batch is made on the CPU
while the GPU still runs the backward pass and Adam (CUDA queues them; the only wait is the loss read-out after the
forward), and throughput (images/s) is logged every ``--log-every`` steps.
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
from sr_bench.run.precision import autocast, check_precision, describe, tf32_switches
from sr_bench.scales import scale_text
from sr_bench.train import checkpoint as ckpt
from sr_bench.train.ema import EMA
from sr_bench.train.families import Trainable, build
from sr_bench.train.patches import check_patch, draw, files_sha256, hr_side, load_images, random_batch
from sr_bench.train.scales import describe as describe_scales

BETAS = (0.9, 0.999)
# The fields that decide the weights, and their flags: a resumed run must repeat them (--steps, --save-every,
# --log-every and --device may change).
_SAME_ON_RESUME = {"model": "MODEL", "model_opts": "--model-opt", "scales": "--scales", "batch": "--batch",
                   "patch": "--patch", "lr": "--lr", "lr_halve_every": "--lr-halve-every", "seed": "--seed",
                   "data_sha256": "--data (the files' sha256)", "ema": "--ema", "clip_grad": "--clip-grad"}
_BEFORE_OPTION = {"ema": 0.0, "clip_grad": 0.0}  # what a resume file written before the option existed means
TRAIN_PRECISIONS = ("fp32", "tf32", "bf16")


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
    throughput: list[list] = None  # [step, images per second over the steps since the previous entry]


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


def _check_gpu_options(precision: str, device: torch.device, ema: float, clip_grad: float) -> None:
    if precision == "fp16":
        raise UserError("--precision fp16 is not offered for training (float16 gradients need loss scaling); "
                        "use bf16, which has float32's range")
    check_precision(precision, device.type, TRAIN_PRECISIONS)
    if not (math.isfinite(ema) and 0 <= ema < 1):
        raise UserError(f"--ema must be a decay in [0, 1) (0: off; e.g. 0.999), got {ema}")
    if not (math.isfinite(clip_grad) and clip_grad >= 0):
        raise UserError(f"--clip-grad must be a gradient norm >= 0 (0: off), got {clip_grad}")


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
          progress: bool = True, precision: str = "fp32", channels_last: bool = False, compile: bool | str = False,
          ema: float = 0.0, clip_grad: float = 0.0) -> TrainResult:
    """Train ``model`` from its untrained init on HR images of ``data`` (dataset names, ``demo`` or folders) and
    write ``out`` (state_dict), ``out.json`` and ``out.resume``. See ``srbench train --help``. ``compile``: True for
    ``torch.compile``'s default backend, or a backend's name (e.g. ``"aot_eager"``, quick to build, for checks)."""
    _check_numbers(steps, batch, patch, lr, lr_halve_every, save_every, log_every)
    if not data:
        raise UserError("no training data: give --data with a dataset name, demo, or a folder of HR images")
    out = Path(out).expanduser()
    opts = dict(model_opts or {})
    dev = resolve_device(device)
    _check_gpu_options(precision, dev, ema, clip_grad)
    t = build(model, scales, opts, dev)
    ckpt.check_out(out, resume, overwrite)
    layout = torch.channels_last if channels_last else torch.preserve_format
    if channels_last:
        t.module.to(memory_format=torch.channels_last)

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
        "data_sha256": files_sha256([it.path for it in items]), "ema": float(ema), "clip_grad": float(clip_grad),
    }

    gen = torch.Generator().manual_seed(seed)
    params = [p for p in t.module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=BETAS)
    average = EMA(t.module, ema) if ema else None  # starts as the initial weights
    start, losses, window, sessions, created, speed = 0, [], [0.0, 0], [], _now(), []
    if resume:
        state = ckpt.load_resume(out)
        old = state["request"]
        for key, flag in _SAME_ON_RESUME.items():
            if old.get(key, _BEFORE_OPTION.get(key)) != request[key]:
                raise UserError(f"--resume: {flag} is {_short(request[key])} here but {_short(old.get(key))} in the "
                                f"interrupted run; repeat its options (see {str(ckpt.sidecar_path(out))!r})")
        t.module.load_state_dict(state["model"], strict=True)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        if average is not None:
            average.load(state["ema"])
        start, losses, window = int(state["step"]), list(state["losses"]), list(state["window"])
        sessions, created, speed = list(state["sessions"]), state["created"], list(state.get("throughput", []))
        if start >= steps:
            note(f"{out} is already at step {start} >= --steps {steps}; raise --steps to train longer")
            return _result(t, out, start, losses, notes, sha=sha256_file(out) if out.is_file() else "", speed=speed)
    session = {"from_step": start, "to_step": start, "device": device_name(dev), "started": _now(), "seconds": 0.0,
               "precision": precision, "channels_last": channels_last, "compile": compile, "images_per_second": None}
    sessions.append(session)
    if compile:
        # in place: the state_dict keys stay the network's own (no "_orig_mod." prefix)
        t.module.compile(**({"backend": compile} if isinstance(compile, str) else {}))
    clock = time.perf_counter()

    def save(done: int) -> str:
        elapsed = time.perf_counter() - clock
        session.update(to_step=done, seconds=round(elapsed, 3),
                       images_per_second=round((done - start) * batch / elapsed, 3) if elapsed > 0 else None)
        ckpt.save_resume(out, {"request": request, "step": done, "model": ckpt.cpu_state_dict(t.module),
                               "optimizer": opt.state_dict(), "generator": gen.get_state(), "losses": losses,
                               "window": window, "sessions": sessions, "created": created, "throughput": speed,
                               **({"ema": ckpt.cpu_state_dict(average.state)} if average is not None else {})})
        sha = ckpt.save_checkpoint(out, average.state if average is not None else t.module)
        ckpt.write_sidecar(out, _record(t, out, request, datasets, items, pool, done, steps, losses, sessions,
                                        created, sha, speed, session))
        return sha

    tqdm.write(f"training {model} at x{describe_scales(t.scales)} on {len(pool)} image(s), device "
               f"{device_name(dev)}{'' if precision == 'fp32' else ' ' + precision}: {out}", file=sys.stderr)
    bar = tqdm(total=steps, initial=start, disable=not progress, unit="step", file=sys.stderr, dynamic_ncols=True,
               desc=model)
    t.module.train()
    sha = ""
    # throughput window: steps since `tick`, less the time spent writing files (the loss read-out each step waits
    # for the device, so host time is device time)
    tick, timed, paused = time.perf_counter(), 0, 0.0
    try:
        with tf32_switches(precision, dev):
            for step in range(start, steps):
                rate = lr_at(step, lr, lr_halve_every)
                for group in opt.param_groups:
                    group["lr"] = rate
                s = t.scales[draw(len(t.scales), gen)] if len(t.scales) > 1 else t.scales[0]
                lr_batch, hr_batch = random_batch(images, pool, batch, patch, s, gen)
                with autocast(precision, dev):
                    pred, target = t.predict(lr_batch.to(dev, memory_format=layout),
                                             hr_batch.to(dev, memory_format=layout), s, gen)
                loss = (pred.float() - target.float()).abs().mean()  # float32 (a no-op unless autocast ran)
                value = loss.item()
                if not math.isfinite(value):
                    raise UserError(f"the loss became {value} at step {step + 1} (x{scale_text(s)}); lower --lr "
                                    f"(it was {rate:g}); the last saved checkpoint is kept")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad:
                    torch.nn.utils.clip_grad_norm_(params, clip_grad)
                opt.step()
                if average is not None:
                    average.update()
                done = step + 1
                window = [window[0] + value, window[1] + 1]
                timed += 1
                if done % log_every == 0 or done == steps:
                    losses.append([done, window[0] / window[1]])
                    now = time.perf_counter()
                    speed.append([done, round(timed * batch / (now - tick - paused), 3)])
                    tick, timed, paused = now, 0, 0.0
                    window = [0.0, 0]
                    bar.set_postfix(loss=f"{losses[-1][1]:.4f}", lr=f"{rate:.3g}", img_s=f"{speed[-1][1]:.4g}",
                                    refresh=False)
                bar.update(1)
                if save_every and done % save_every == 0 and done < steps:
                    saving = time.perf_counter()
                    save(done)
                    paused += time.perf_counter() - saving  # writing files is not a step
            sha = save(steps)
    finally:
        bar.close()
        t.module.eval()
    return _result(t, out, steps, losses, notes, sha, speed)


def _result(t: Trainable, out: Path, done: int, losses, notes, sha: str, speed=None) -> TrainResult:
    return TrainResult(checkpoint=out, sidecar=ckpt.sidecar_path(out), resume_file=ckpt.resume_path(out), sha256=sha,
                       steps_done=done, losses=losses, run_command=t.run_command(str(out)), notes=notes,
                       throughput=speed or [])


def _record(t: Trainable, out: Path, request: dict, datasets, items, pool, done: int, steps: int, losses, sessions,
            created: str, sha: str, speed, session: dict) -> dict:
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
        "throughput": {"unit": "images/s (patches of --batch per step), over each --log-every window; the first "
                               "window holds the warm-up (and --compile's compilation)", "log": speed},
        "precision": describe(session["precision"]),
        "channels_last": session["channels_last"],
        "compile": session["compile"],
        "ema": ({"decay": request["ema"], "init": "the initial weights",
                 "checkpoint": "PATH holds the EMA weights; the optimised weights are in PATH.resume"}
                if request["ema"] else None),
        "clip_grad": {"max_norm": request["clip_grad"], "norm": "total L2 norm over all parameters"}
                     if request["clip_grad"] else None,
        "sessions": sessions,
        "device": sessions[-1]["device"],
        "package_versions": package_versions(),
        "checkpoint": {"file": out.name, "sha256": sha, "layout": "state_dict"},
        "resume_file": ckpt.resume_path(out).name,
        "run_with": t.run_command(str(out)),
        "created": created,
        "updated": _now(),
    }
