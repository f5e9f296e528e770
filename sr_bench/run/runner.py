"""``srbench run``: models x datasets x scales under one protocol, one Parquet shard per (model, dataset, scale)."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from sr_bench.data import resolve_dataset
from sr_bench.errors import UserError
from sr_bench.imaging.color import gray2rgb
from sr_bench.metrics import DEFAULT_METRICS, MetricUnavailable, create_metric, list_metrics
from sr_bench.models import create_model, load_plugin
from sr_bench.models.interface import Upscaler
from sr_bench.protocols import ImageTooSmall, Protocol, choose_protocol
from sr_bench.provenance import device_name, package_versions, package_versions_json, resolve_device
from sr_bench.run.grid import ModelSpec, new_run_id
from sr_bench.scales import scale_text
from sr_bench.store import load_rows, write_manifest, write_shard
from sr_bench.store.parquet import done_shards, shard_name


@dataclass
class RunResult:
    run_dir: Path
    rows: pd.DataFrame
    protocol: Protocol
    metrics: tuple[str, ...]
    notes: list[str]


def _say(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def _load_metrics(names: list[str] | None, device: torch.device, lpips_weights: str | None, notes: list[str]):
    explicit = names is not None
    names = list(names) if explicit else list(DEFAULT_METRICS)
    known = list_metrics()
    for n in names:
        if n not in known:
            from sr_bench.errors import unknown

            raise unknown("metric", n, known)
    loaded = {}
    provenance = {}
    for n in names:
        m = create_metric(n) if n != "lpips" else create_metric_lpips(lpips_weights)
        try:
            m.load(device)
        except MetricUnavailable as e:
            if explicit:
                raise UserError(str(e)) from None
            notes.append(f"{e} (continuing without {n}; its column stays empty)")
            continue
        loaded[n] = m
        for attr in ("weights_sha256", "weights_source"):
            if getattr(m, attr, None):
                provenance[f"{n}_{attr}"] = getattr(m, attr)
    return loaded, provenance


def create_metric_lpips(weights: str | None):
    from sr_bench.metrics.lpips import LPIPS

    return LPIPS(weights=weights)


def _create_models(specs: list[ModelSpec], allow_untrained: bool) -> list[tuple[ModelSpec, Upscaler]]:
    out = []
    for spec in specs:
        kwargs = {}
        if spec.checkpoint is not None:
            kwargs["checkpoint"] = spec.checkpoint
        if allow_untrained:
            kwargs["allow_untrained"] = True
        try:
            model = create_model(spec.name, **kwargs)
        except TypeError as e:
            if spec.checkpoint is not None and "checkpoint" in str(e):
                raise UserError(f"model {spec.name!r} has no weights to load; drop '={spec.checkpoint}'") from None
            if allow_untrained and "allow_untrained" in str(e):
                model = create_model(spec.name, **{k: v for k, v in kwargs.items() if k != "allow_untrained"})
            else:
                raise
        out.append((spec, model))
    return out


def _hr_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(torch.float64)


def _base_row(run_id, spec, model, dataset, image, s, protocol, device_label, versions, metric_prov):
    return {
        "run_id": run_id,
        "model": spec.name,
        "dataset": dataset,
        "image": image,
        "scale": float(s),
        "scale_text": scale_text(s),
        "protocol": protocol.name,
        "protocol_fingerprint": protocol.fingerprint,
        "strategy": model.strategy_for(s),
        "untrained": bool(model.untrained),
        "checkpoint_sha256": model.checkpoint_sha256 or "",
        "psnr": None,
        "ssim": None,
        "lpips": None,
        "seconds": None,
        "hr_height": None,
        "hr_width": None,
        "lr_height": None,
        "lr_width": None,
        "error": "",
        "device": device_label,
        "metric_weights": metric_prov,
        "package_versions": versions,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
    }


def run(
    models: list[str],
    datasets: list[str],
    scales: list[Fraction],
    protocol: str = "auto",
    metrics: list[str] | None = None,
    results_dir: Path = Path("results"),
    out: Path | None = None,
    data_root: str | None = None,
    device: str = "auto",
    lpips_weights: str | None = None,
    plugins: tuple[str, ...] = (),
    allow_untrained: bool = False,
    progress: bool = True,
    resume: Path | None = None,
) -> RunResult:
    # Everything that can be wrong with the request fails here, before any image is touched.
    for p in plugins:
        load_plugin(p)
    if not models:
        raise UserError("no models given; use --models bicubic (see `srbench models`)")
    if not datasets:
        raise UserError("no datasets given; use --datasets set5 (see `srbench datasets list`)")
    if not scales:
        raise UserError("no scales given; use --scales 2,3,4")
    chosen = choose_protocol(protocol, scales)
    dev = resolve_device(device)
    specs = [ModelSpec.parse(m) for m in models]
    if len({s.name for s in specs}) != len(specs):
        raise UserError("a model name appears twice in --models; give each model once")
    created = _create_models(specs, allow_untrained)
    for _, m in created:
        m.to(dev)
    resolved = [resolve_dataset(d, data_root=data_root) for d in datasets]
    notes: list[str] = []
    loaded, metric_prov = _load_metrics(metrics, dev, lpips_weights, notes)
    for n in notes:
        _say(f"note: {n}")

    run_dir = Path(resume) if resume else Path(out) if out else Path(results_dir) / new_run_id(models, datasets, scales)
    run_id = run_dir.name
    already = done_shards(run_dir) if resume else set()
    versions = package_versions_json()
    device_label = device_name(dev)
    prov_json = json.dumps(metric_prov, sort_keys=True)
    write_manifest(
        run_dir,
        {
            "run_id": run_id,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": sys.argv,
            "models": [{"name": s.name, "checkpoint": s.checkpoint, "checkpoint_sha256": m.checkpoint_sha256,
                        "untrained": m.untrained} for s, m in created],
            "datasets": [{"name": d.name, "kind": d.kind, "images": len(d.items)} for d in resolved],
            "scales": [scale_text(s) for s in scales],
            "protocol": {"name": chosen.name, "fingerprint": chosen.fingerprint, "rules": chosen.rules()},
            "metrics": list(loaded),
            "metric_weights": metric_prov,
            "device": device_label,
            "package_versions": package_versions(),
            "notes": notes,
        },
    )
    _say(f"protocol: {chosen.name} ({chosen.fingerprint})  device: {device_label}  results: {run_dir}")

    total = sum(len(d.items) for d in resolved) * len(scales) * len(created)
    bar = tqdm(total=total, disable=not progress, unit="img", file=sys.stderr, dynamic_ncols=True)
    for ds in resolved:
        hrs: dict[str, torch.Tensor | str] = {}
        for item in ds.items:
            try:
                hrs[item.name] = _hr_tensor(item.load())
            except UserError as e:
                hrs[item.name] = str(e)
                _say(f"warning: {ds.name}/{item.name}: {e}")
        for s in scales:
            todo = [(spec, m) for spec, m in created if shard_name(spec.name, ds.name, scale_text(s)) not in already]
            bar.set_description(f"{ds.name} x{scale_text(s)}")
            if not todo:
                bar.update(len(ds.items) * len(created))
                continue
            rows = {spec.name: [] for spec, _ in todo}
            for name, hr in hrs.items():
                case = None
                error = hr if isinstance(hr, str) else ""
                if not error:
                    try:
                        case = chosen.prepare(hr.to(dev), s)
                    except ImageTooSmall as e:
                        error = str(e)
                for spec, model in todo:
                    row = _base_row(run_id, spec, model, ds.name, name, s, chosen, device_label, versions, prov_json)
                    if case is None:
                        row["error"] = error
                    else:
                        _measure(row, model, case, s, chosen, loaded)
                    rows[spec.name].append(row)
                    bar.update(1)
            for spec, _ in todo:
                write_shard(run_dir, rows[spec.name], spec.name, ds.name, scale_text(s))
    bar.close()
    return RunResult(run_dir=run_dir, rows=load_rows(run_dir), protocol=chosen, metrics=tuple(loaded), notes=notes)


def _measure(row: dict, model: Upscaler, case, s: Fraction, protocol: Protocol, metrics: dict) -> None:
    lr = case.lr if case.lr.shape[0] == 3 else gray2rgb(case.lr)
    row.update(hr_height=case.sr_size[0], hr_width=case.sr_size[1], lr_height=lr.shape[1], lr_width=lr.shape[2])
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            sr01 = model.super_resolve((lr / 255.0)[None], s, case.sr_size)
        if sr01.device.type == "cuda":
            torch.cuda.synchronize(sr01.device)
        row["seconds"] = time.perf_counter() - start
        if tuple(sr01.shape[-2:]) != tuple(case.sr_size):
            raise RuntimeError(f"model returned {tuple(sr01.shape[-2:])}, expected {case.sr_size}")
        sr = protocol.quantize(sr01[0].to(torch.float64))
        views = protocol.views(sr, case)
        with torch.inference_mode():
            for name, metric in metrics.items():
                a, b = views.pair(metric.info.view)
                value = metric.compute(a, b)
                row[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    except Exception as e:  # one image's failure must not lose the run; the row says what happened
        row["error"] = f"{type(e).__name__}: {e}"
        warnings.warn(f"{row['dataset']}/{row['image']} x{row['scale_text']} {row['model']}: {row['error']}", stacklevel=1)
