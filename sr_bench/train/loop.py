"""``srbench train``: the loop. One recipe (``recipe.Recipe``) drives the loss, the optimizer (Adam or SGD) and the
step schedule of the learning rate; README's Training section and docs/training.md describe the options.

Resuming is exact on CPU: the weights and the optimizer's state are saved between two steps, the learning rate is a
function of the step alone, and every batch is a function of (seed, step) (``patches.step_batch``); so N steps in
one go and N/2 + ``--resume`` to N give the same bits (CUDA kernels are not bit-reproducible, so there it is only
close). With N processes ``--batch`` is the global batch and rank 0 alone writes files, validates and prints, so
the files do not depend on the number of processes.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as tdist
from tqdm import tqdm

from sr_bench.data import resolve_dataset
from sr_bench.errors import UserError, unknown
from sr_bench.hashing import file_sha256
from sr_bench.models.modelcard import TRAIN_CLIP_KINDS, TRAIN_LOSSES, TRAIN_OPTIMIZERS
from sr_bench.provenance import device_name, package_versions, resolve_device
from sr_bench.run.precision import autocast, check_precision, describe, tf32_switches
from sr_bench.scales import scale_text
from sr_bench.train import checkpoint as ckpt
from sr_bench.train import distributed as dist
from sr_bench.train import patches
from sr_bench.train.families import Trainable, build, describe_scales
from sr_bench.train.losses import DESCRIPTIONS, loss_value, multilevel
from sr_bench.train.patches import DEFAULT_CACHE_MB, ImageBank, check_patch, files_sha256, hr_side, seeded, step_batch
from sr_bench.train.recipe import FLAGS, Recipe, resolve_recipe

# The fields that decide the weights, and their flags: a resumed run must repeat them (--steps, --save-every,
# --log-every, --device, --nproc and the validation options may change).
_SAME_ON_RESUME = {"model": "MODEL", "model_opts": "--model-opt", "seed": "--seed",
                   "data_sha256": "--data (the files' sha256)", "ema": "--ema",
                   **{k: flag for k, flag in FLAGS.items() if k not in ("data", "steps")}}


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
    losses: list[list]  # [step, mean loss over the steps since the previous entry]
    run_command: str
    notes: list[str]
    throughput: list[list] = None  # [step, images per second over the steps since the previous entry]
    validation: list[list] = None  # [step, {scale: {metric: mean}}]
    best: dict | None = None  # {"step", "value", "metric", "file", "sha256"} of PATH.best


def lr_at(step: int, lr: float, every: int, gamma: float = 0.5, lr_min: float = 0.0) -> float:
    """The learning rate of step ``step`` (0-based): ``lr`` times ``gamma`` every ``every`` steps (0: constant), never
    below ``lr_min``."""
    return max(lr * gamma ** (step // every), lr_min) if every else lr


def lr_schedule(steps: int, lr: float, every: int, gamma: float = 0.5, lr_min: float = 0.0) -> list[list]:
    """[first step, rate] for each rate the run uses."""
    if not every:
        return [[0, lr]]
    out = []
    for k in range(0, steps, every):
        rate = lr_at(k, lr, every, gamma, lr_min)
        if not out or out[-1][1] != rate:
            out.append([k, rate])
    return out


class EMA:
    """An exponential moving average of the weights (``--ema DECAY``), BasicSR's ``net_g_ema``: it starts as the
    initial weights and after every optimizer step becomes ``decay * ema + (1 - decay) * weights``. Every entry of
    the state_dict is averaged, so fixed tensors (EDSR's mean shift) stay what they are."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.live = module.state_dict()  # detached views of the parameters: they follow the optimizer's steps
        self.state = {k: v.detach().clone() for k, v in self.live.items()}
        floats = [k for k, v in self.live.items() if v.is_floating_point()]
        self._pairs = ([self.state[k] for k in floats], [self.live[k] for k in floats])
        self._other = [k for k in self.live if k not in set(floats)]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - self.decay)  # ema += (1-d) (w - ema)
        for k in self._other:
            self.state[k].copy_(self.live[k])

    @torch.no_grad()
    def load(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in self.state.items():
            v.copy_(state[k])


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_options(r: Recipe, save_every: int, log_every: int, val_every: int, precision: str, device: torch.device,
                   ema: float, ranks: dist.Ranks) -> None:
    if precision == "fp16":
        raise UserError("--precision fp16 is not offered for training (float16 gradients need loss scaling); "
                        "use bf16, which has float32's range")
    check_precision(precision, device.type, ("fp32", "tf32", "bf16"))
    for flag, value, least in (("--steps", r.steps, 1), ("--batch", r.batch, 1), ("--patch", r.patch, 2),
                               ("--lr-decay-every", r.lr_decay_every, 0), ("--save-every", save_every, 0),
                               ("--log-every", log_every, 1), ("--val-every", val_every, 0)):
        if int(value) != value or value < least:
            raise UserError(f"{flag} must be a whole number >= {least}, got {value}")
    for flag, value, ok, want in (
            ("--lr", r.lr, r.lr > 0, "a positive number"),
            ("--lr-gamma", r.lr_gamma, 0 < r.lr_gamma <= 1, "in (0, 1]"),
            ("--lr-min", r.lr_min, 0 <= r.lr_min, ">= 0"),
            ("--momentum", r.momentum, 0 <= r.momentum < 1, "in [0, 1)"),
            ("--weight-decay", r.weight_decay, 0 <= r.weight_decay, ">= 0"),
            ("--adam-eps", r.eps, r.eps > 0, "> 0"),
            ("--clip-grad", r.clip_grad, r.clip_grad >= 0, "a gradient norm >= 0 (0: off)"),
            ("--betas", r.betas, len(r.betas) == 2 and all(0 <= b < 1 for b in r.betas), "two numbers in [0, 1)"),
            ("--ema", ema, 0 <= ema < 1, "a decay in [0, 1) (0: off; e.g. 0.999)"),
            ("--charbonnier-eps", r.charbonnier_eps, 0 < r.charbonnier_eps < 1, "in (0, 1)")):
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise UserError(f"{flag} must be {want}, got {value}")
    for kind, value, known in (("optimizer", r.optimizer, TRAIN_OPTIMIZERS), ("loss", r.loss, TRAIN_LOSSES),
                               ("--clip-grad-kind", r.clip_grad_kind, TRAIN_CLIP_KINDS)):
        if value not in known:
            raise unknown(kind, value, known)
    if r.batch % ranks.world:
        raise UserError(f"--batch {r.batch} (the global batch) does not split over {ranks.world} processes; give a "
                        f"multiple of {ranks.world}, e.g. --batch {max(ranks.world, r.batch - r.batch % ranks.world)}")


def _agree(ranks: dist.Ranks, fn):
    """``fn()`` on rank 0 and its result on every rank; a UserError there is raised on every rank (so no rank waits
    in a collective for one that stopped)."""
    if not ranks.active:
        return fn()
    box = [None]
    if ranks.main:
        try:
            box[0] = ("ok", fn())
        except UserError as e:
            box[0] = ("error", str(e))
    tdist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise UserError(value)
    return value


def _device(device: str, ranks: dist.Ranks) -> torch.device:
    dev = resolve_device(device)
    if ranks.active and dev.type == "cuda" and dev.index in (None, 0) and device in ("auto", "cuda", "cuda:0"):
        dev = torch.device("cuda", ranks.local_rank)  # one GPU per local process, as torchrun intends
    return dev


def train(model: str, data: list[str] | None, out: Path, *, steps: int | None = None, scales: str | None = None,
          batch: int | None = None, patch: int | None = None, lr: float | None = None,
          lr_decay_every: int | None = None, lr_halve_every: int | None = None, lr_gamma: float | None = None,
          lr_min: float | None = None, loss: str | None = None, charbonnier_eps: float | None = None,
          optimizer: str | None = None, betas: tuple[float, float] | None = None, adam_eps: float | None = None,
          momentum: float | None = None, weight_decay: float | None = None, clip_grad: float | None = None,
          clip_grad_kind: str | None = None, recipe: str | None = None, seed: int = 0, device: str = "auto",
          save_every: int = 1000, log_every: int = 100, data_root: str | None = None, model_opts: dict | None = None,
          resume: bool = False, overwrite: bool = False, progress: bool = True, precision: str = "fp32",
          channels_last: bool = False, compile: bool | str = False, ema: float = 0.0, prefetch: int | None = None,
          cache_mb: int = DEFAULT_CACHE_MB, val: str | None = None, val_scales: str | None = None, val_every: int = 0,
          val_metric: str = "psnr") -> TrainResult:
    """Train ``model`` from its untrained init on HR images of ``data`` (dataset names, ``demo`` or folders; None:
    the recipe's) and write ``out`` (state_dict), ``out.json`` and ``out.resume`` (and ``out.best`` with ``val``).
    See ``srbench train --help``. Recipe fields left None come from ``recipe`` ("paper": the model card's
    ``[train]``) or sr_bench's defaults. ``compile``: True for ``torch.compile``'s default backend, or a backend's
    name (e.g. ``"aot_eager"``, quick to build, for checks). Under torchrun, every process calls this."""
    if lr_halve_every is not None:
        if lr_decay_every is not None and lr_decay_every != lr_halve_every:
            raise UserError("give --lr-decay-every or its old name --lr-halve-every, not both")
        lr_decay_every = lr_halve_every
    given = {"data": tuple(data) if data else None, "scales": scales, "patch": patch, "batch": batch, "steps": steps,
             "loss": loss, "charbonnier_eps": charbonnier_eps, "optimizer": optimizer, "betas": betas,
             "eps": adam_eps, "momentum": momentum, "weight_decay": weight_decay, "lr": lr,
             "lr_decay_every": lr_decay_every, "lr_gamma": lr_gamma, "lr_min": lr_min, "clip_grad": clip_grad,
             "clip_grad_kind": clip_grad_kind}
    ranks = dist.from_env()
    rec = resolve_recipe(model, recipe, given)
    dev = _device(device, ranks)
    _check_options(rec, save_every, log_every, val_every, precision, dev, ema, ranks)
    if not rec.data:
        raise UserError("no training data: give --data with a dataset name, demo, or a folder of HR images "
                        "(or --recipe paper for the paper's data)")
    if (val_every or val_scales) and not val:
        raise UserError(f"{'--val-every' if val_every else '--val-scales'} needs --val DATASET (the images to "
                        f"validate on, e.g. set5)")
    out = Path(out).expanduser()
    opts = dict(model_opts or {})
    t = build(model, rec.scales, opts, dev)
    if multilevel(rec.loss) and t.predict_levels is None:
        raise UserError(f"--loss {rec.loss} needs the outputs of every pyramid level (LapSRN, MS-LapSRN); "
                        f"{model!r} has one output: use --loss charbonnier or l1")
    dist.start(ranks, dev)  # left at exit: a later train() in the process reuses the group
    steps, batch, patch = rec.steps, rec.batch, rec.patch
    progress = progress and ranks.main
    prefetch = (2 if dev.type == "cuda" else 0) if prefetch is None else prefetch
    _agree(ranks, lambda: ckpt.check_out(out, resume, overwrite))
    layout = torch.channels_last if channels_last else torch.preserve_format
    if channels_last:
        t.module.to(memory_format=torch.channels_last)

    try:
        datasets = [resolve_dataset(d, data_root=data_root) for d in rec.data]
    except UserError as e:
        if dict(rec.origin)["data"] != "card":
            raise
        raise UserError(f"the paper recipe of {model!r} trains on {' + '.join(rec.data)} ({e}); give --data with "
                        f"those images (folders) or others") from None
    items = [it for ds in datasets for it in ds.items]
    bank = ImageBank(items, int(cache_mb) << 20)
    pool = check_patch(bank.sizes, patch, t.scales)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if ranks.main:
            tqdm.write(f"note: {text}", file=sys.stderr)

    if len(pool) < len(items):
        small = [items[i].name for i in range(len(items)) if i not in set(pool)]
        note(f"{len(small)} image(s) smaller than the {hr_side(patch, max(t.scales))}-pixel HR patch are not used: "
             f"{', '.join(small[:5])}{' ...' if len(small) > 5 else ''}")
    decoded = sum(3 * h * w for h, w in bank.sizes)  # bytes, as (3, H, W) uint8
    if decoded > bank.cache_bytes:
        note(f"the {len(items)} images take {decoded / 2**20:.0f} MiB decoded, more than --cache-mb "
             f"{cache_mb}: images are decoded again when the cache has dropped them (raise --cache-mb if memory "
             f"allows)")
    request = {"model": model, "model_opts": opts, "seed": seed, "ema": float(ema),
               **{k: v for k, v in rec.values().items() if k not in ("data", "steps")},
               "scales": [scale_text(s) for s in t.scales], "betas": list(rec.betas),
               # only rank 0 compares it and writes it: one read of the data, not one per process
               "data_sha256": files_sha256([it.path for it in items]) if ranks.main else ""}

    params = [p for p in t.module.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=rec.lr, momentum=rec.momentum, weight_decay=rec.weight_decay)
           if rec.optimizer == "sgd" else
           torch.optim.Adam(params, lr=rec.lr, betas=rec.betas, eps=rec.eps, weight_decay=rec.weight_decay))
    average = EMA(t.module, ema) if ema else None  # starts as the initial weights
    kept = average.state if average is not None else t.module  # what PATH and PATH.best hold
    start, losses, window, sessions, created, speed = 0, [], [0.0, 0], [], _now(), []
    curve, baseline, best = [], None, None
    if overwrite and not resume and ranks.main and ckpt.best_path(out).exists():
        ckpt.best_path(out).unlink()  # a replaced run's best weights are not this run's
    if resume:
        def load() -> dict:
            state = ckpt.load_resume(out)
            old = state["request"]
            for key, flag in _SAME_ON_RESUME.items():
                if old.get(key) != request[key]:
                    raise UserError(f"--resume: {flag} is {_short(request[key])} here but {_short(old.get(key))} "
                                    f"in the interrupted run; repeat its options (see "
                                    f"{str(ckpt.sidecar_path(out))!r})")
            return state

        state = _agree(ranks, load)
        t.module.load_state_dict(state["model"], strict=True)
        opt.load_state_dict(state["optimizer"])
        if average is not None:
            average.load(state["ema"])
        start, losses, window = int(state["step"]), list(state["losses"]), list(state["window"])
        sessions, created, speed = list(state["sessions"]), state["created"], list(state.get("throughput", []))
        checks = state.get("validation") or {}
        curve, baseline, best = list(checks.get("curve", [])), checks.get("baseline"), checks.get("best")
        if start >= steps:
            note(f"{out} is already at step {start} >= --steps {steps}; raise --steps to train longer")
            return _result(t, out, start, losses, notes, file_sha256(out) if out.is_file() else "", speed, curve, best)
    validator = None
    if val and ranks.main:
        from sr_bench.train.validation import Validator

        validator = Validator(t, val, val_scales, val_metric, dev, data_root)
        if baseline is None or baseline.get("scales") != [scale_text(s) for s in validator.scales]:
            baseline = {"scales": [scale_text(s) for s in validator.scales], "means": validator.baseline()}
    session = {"from_step": start, "to_step": start, "device": device_name(dev), "started": _now(), "seconds": 0.0,
               "processes": ranks.world, "precision": precision, "channels_last": channels_last, "compile": compile,
               "images_per_second": None}
    sessions.append(session)
    if compile:
        # in place: the state_dict keys stay the network's own (no "_orig_mod." prefix)
        t.module.compile(**({"backend": compile} if isinstance(compile, str) else {}))
    forward = dist.wrap(t.module, t.predict_levels if multilevel(rec.loss) else t.predict, t.scales, ranks, dev)
    clock = time.perf_counter()

    def save(done: int) -> str:
        elapsed = time.perf_counter() - clock
        session.update(to_step=done, seconds=round(elapsed, 3),
                       images_per_second=round((done - start) * batch / elapsed, 3) if elapsed > 0 else None)
        validation = {"curve": curve, "baseline": baseline, "best": best}
        ckpt.save_resume(out, {"request": request, "step": done, "model": ckpt.cpu_state_dict(t.module),
                               "optimizer": opt.state_dict(), "losses": losses, "window": window,
                               "sessions": sessions, "created": created, "throughput": speed,
                               "validation": validation,
                               **({"ema": ckpt.cpu_state_dict(average.state)} if average is not None else {})})
        sha = ckpt.save_checkpoint(out, kept)
        ckpt.write_sidecar(out, _record(t, out, rec, request, datasets, items, pool, done, losses, sessions, created,
                                        sha, speed, session, ranks, validator, validation))
        return sha

    def validate(done: int) -> None:
        nonlocal best
        means = validator.evaluate(average.state if average is not None else None)
        value = validator.score(means)
        curve.append([done, means])
        if best is None or value > best["value"]:
            best = {"step": done, "value": value, "metric": validator.metric, "file": ckpt.best_path(out).name,
                    "sha256": ckpt.save_checkpoint(ckpt.best_path(out), kept)}
        if progress:
            shown = ", ".join(f"x{s} {m[validator.metric]:.4f}" for s, m in means.items())
            floor = ", ".join(f"x{s} {m[validator.metric]:.4f}" for s, m in baseline["means"].items())
            tqdm.write(f"step {done}: {validator.dataset.name} {validator.metric} {shown} (bicubic {floor})",
                       file=sys.stderr)

    count = batch // ranks.world  # rank r makes samples r * count .. (r + 1) * count - 1 of every global batch
    first = ranks.rank * count
    pinned = dev.type == "cuda"

    def make(step: int):
        s, lr_b, hr_b = step_batch(bank, bank.sizes, pool, t.scales, patch, seed, step, first, count)
        return s, lr_b, hr_b, seeded(seed, step, "forward", ranks.rank)

    if ranks.main:
        procs = f", {ranks.world} processes x batch {count}" if ranks.active else ""
        tqdm.write(f"training {model} at x{describe_scales(t.scales)} on {len(pool)} image(s), device "
                   f"{device_name(dev)}{'' if precision == 'fp32' else ' ' + precision}{procs}: {out}",
                   file=sys.stderr)
    bar = tqdm(total=steps, initial=start, disable=not progress, unit="step", file=sys.stderr, dynamic_ncols=True,
               desc=model)
    t.module.train()
    sha = ""
    # the window's loss sum, kept on the device (each rank its own losses; the window's value is their sum over the
    # ranks divided by the number of ranks): read only when logging, saving or validating
    acc = torch.full((), window[0], dtype=torch.float64, device=dev)
    n_window = int(window[1])
    # throughput window: steps since `tick`, less the time spent writing files and validating
    tick, timed, paused = time.perf_counter(), 0, 0.0
    batches = patches.prefetched(make, start, steps, prefetch, pin=pinned)
    try:
        with tf32_switches(precision, dev):
            for step in range(start, steps):
                rate = lr_at(step, rec.lr, rec.lr_decay_every, rec.lr_gamma, rec.lr_min)
                for group in opt.param_groups:
                    group["lr"] = rate
                s, lr_b, hr_b, gen = next(batches)
                with autocast(precision, dev):
                    pred, target = forward(lr_b.to(dev, memory_format=layout, non_blocking=pinned),
                                           hr_b.to(dev, memory_format=layout, non_blocking=pinned), s, gen)
                value = loss_value(rec.loss, pred, target, rec.charbonnier_eps)
                opt.zero_grad(set_to_none=True)
                value.backward()
                if rec.clip_grad:
                    if rec.clip_grad_kind == "adjustable":  # VDSR: each gradient clipped to +-theta / rate
                        torch.nn.utils.clip_grad_value_(params, rec.clip_grad / rate)
                    else:
                        torch.nn.utils.clip_grad_norm_(params, rec.clip_grad)
                opt.step()
                if average is not None:
                    average.update()
                acc += value.detach().to(torch.float64)
                n_window += 1
                done = step + 1
                timed += 1
                log_now = done % log_every == 0 or done == steps
                save_now = bool(save_every) and done % save_every == 0 and done < steps
                val_now = bool(val) and ((val_every and done % val_every == 0) or done == steps)
                if log_now or save_now or val_now:
                    total = acc.clone()
                    if ranks.active:
                        tdist.all_reduce(total)
                    total = total.item() / ranks.world
                    if not math.isfinite(total):
                        raise UserError(f"the loss became {total} at or before step {done} (x{scale_text(s)}); lower "
                                        f"--lr (it was {rate:g}); the last saved checkpoint is kept")
                    window = [total, n_window]
                if log_now:
                    losses.append([done, window[0] / window[1]])
                    now = time.perf_counter()
                    speed.append([done, round(timed * batch / (now - tick - paused), 3)])
                    tick, timed, paused = now, 0, 0.0
                    acc.zero_()
                    n_window, window = 0, [0.0, 0]
                    bar.set_postfix(loss=f"{losses[-1][1]:.4f}", lr=f"{rate:.3g}", img_s=f"{speed[-1][1]:.4g}",
                                    refresh=False)
                bar.update(1)
                began = time.perf_counter()
                if val_now and validator is not None:
                    validate(done)
                if save_now and ranks.main:
                    save(done)
                paused += time.perf_counter() - began  # validating and writing files are not steps
            if ranks.main:
                sha = save(steps)
            if ranks.active:
                tdist.barrier()
    finally:
        batches.close()
        bar.close()
        t.module.eval()
    return _result(t, out, steps, losses, notes, sha, speed, curve, best)


def _result(t: Trainable, out: Path, done: int, losses, notes, sha: str, speed, curve, best) -> TrainResult:
    return TrainResult(checkpoint=out, sidecar=ckpt.sidecar_path(out), resume_file=ckpt.resume_path(out), sha256=sha,
                       steps_done=done, losses=losses, run_command=t.run_command(str(out)), notes=notes,
                       throughput=speed, validation=curve, best=best)


def _record(t: Trainable, out: Path, rec: Recipe, request: dict, datasets, items, pool, done: int, losses, sessions,
            created: str, sha: str, speed, session: dict, ranks: dist.Ranks, validator, validation: dict) -> dict:
    what = "RGB" if t.target == "rgb" else "Y (MATLAB rgb2ycbcr)"
    eps = f" (eps {rec.charbonnier_eps:g})" if "charbonnier" in rec.loss else ""
    optimizer = ({"name": "Adam", "betas": list(rec.betas), "eps": rec.eps, "weight_decay": rec.weight_decay}
                 if rec.optimizer == "adam" else
                 {"name": "SGD", "momentum": rec.momentum, "weight_decay": rec.weight_decay})
    return {
        "format": "sr_bench-train/1",
        "model": t.name,
        "variant": t.variant,
        "model_opts": request["model_opts"],
        "model_config": t.model.config,
        "recipe": rec.record(),
        "scales": request["scales"],
        "scale_sampling": "one scale per batch, uniform over the list" if len(t.scales) > 1 else "fixed",
        "steps_done": done,
        "steps": rec.steps,
        "seed": request["seed"],
        "batch": request["batch"],
        "patch": {"lr": request["patch"], "hr": {scale_text(s): hr_side(request["patch"], s) for s in t.scales[:1]
                                                  + t.scales[-1:]}},
        "loss": f"{DESCRIPTIONS[rec.loss]}{eps} on {what} in [0, 1] units",
        "optimizer": optimizer,
        "lr": {"initial": rec.lr, "decay_every": rec.lr_decay_every, "gamma": rec.lr_gamma, "min": rec.lr_min,
               "schedule": lr_schedule(rec.steps, rec.lr, rec.lr_decay_every, rec.lr_gamma, rec.lr_min)},
        "degradation": "MATLAB imresize(HR, 1/s) bicubic antialiased, rounded to uint8 (the matlab/metasr protocols)",
        "augmentation": "random horizontal/vertical flips and transposition (8 symmetries)",
        "sampling": "step k's scale and sample j of its global batch come from generators seeded with (seed, k) and "
                    "(seed, k, j): a uniform image, a uniform crop, three flip bits",
        "init": "the model's deterministic untrained weights (the ones --allow-untrained runs)",
        "data": {"names": [d.name for d in datasets], "images": len(items), "used": len(pool),
                 "files_sha256": request["data_sha256"]},
        "distributed": {"processes": ranks.world, "batch_per_process": request["batch"] // ranks.world,
                        "backend": ("nccl" if session["device"].startswith("cuda") else "gloo") if ranks.active
                        else None},
        "losses": losses,
        "throughput": {"unit": "images/s (patches of --batch per step, all processes), over each --log-every window; "
                               "the first window holds the warm-up (and --compile's compilation)", "log": speed},
        "precision": describe(session["precision"]),
        "channels_last": session["channels_last"],
        "compile": session["compile"],
        "ema": ({"decay": request["ema"], "init": "the initial weights",
                 "checkpoint": "PATH holds the EMA weights; the optimised weights are in PATH.resume"}
                if request["ema"] else None),
        "clip_grad": ({"max_norm": rec.clip_grad, "norm": "total L2 norm over all parameters"}
                      if rec.clip_grad_kind == "norm" else
                      {"theta": rec.clip_grad, "kind": "adjustable (VDSR): each gradient clipped to +-theta / lr"})
        if rec.clip_grad else None,
        "validation": ({**validator.describe(), "bicubic": validation["baseline"]["means"],
                        "curve": validation["curve"], "best": validation["best"]} if validator is not None else None),
        "sessions": sessions,
        "device": sessions[-1]["device"],
        "package_versions": package_versions(),
        "checkpoint": {"file": out.name, "sha256": sha, "layout": "state_dict"},
        "resume_file": ckpt.resume_path(out).name,
        "run_with": t.run_command(str(out)),
        "created": created,
        "updated": _now(),
    }

