"""A finished run's models and protocol re-created by ``srbench run``'s machinery from the request in its run.json,
for anything that must reproduce a run's numbers (``srbench compare --visual``)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch

from sr_bench.errors import UserError, unknown
from sr_bench.models import load_plugin
from sr_bench.models.building import split_key, takes_option
from sr_bench.models.registry import resolve as resolve_model
from sr_bench.protocols import get_protocol
from sr_bench.run.context import Context, Setup, build_context
from sr_bench.run.request import RunRequest, stored_request
from sr_bench.run.sink import image_path
from sr_bench.store import read_manifest


def rebuild_context(run_dir: Path, models: list[str], metrics: tuple[str, ...] = ("psnr", "ssim"),
                    device: str = "auto") -> Context:
    """``models`` of the run in ``run_dir`` re-created with the run's specs (checkpoints), ``--model-opt``
    options, plugins and ``--allow-untrained``, the run's protocol (its fingerprint checked against this
    sr_bench's), and ``metrics`` loaded (explicitly: one that cannot load is an error)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    stored = stored_request(run_dir)
    for plugin in stored.get("plugins") or []:
        _load_plugin_once(plugin, run_dir)
    request = RunRequest.from_json(stored)
    specs = {s.name: (s, text) for s, text in zip(request.specs, request.models, strict=True)}
    for name in models:
        if name not in specs:
            raise UserError(f"{unknown('model', name, specs)} (models of run {run_dir.name})")
    # options the run gave for its other models only would make build_context refuse; keep the ones these take
    opts = {k: v for k, v in request.model_opts if split_key(k)[0] in models or split_key(k)[0] is None
            and any(takes_option(resolve_model(n), split_key(k)[1]) for n in models)}
    protocol = run_protocol(run_dir, manifest)
    kept = tuple((k, v) for k, v in request.metric_opts if k.rpartition(".")[0] in metrics)  # the run's, of these
    request = replace(request, models=[specs[n][1] for n in models], model_opts=opts, plugins=(),
                      protocol=protocol.name, metrics=tuple(metrics), metric_opts=kept)
    return build_context(Setup(request, run_id=run_dir.name, device=device, threads=torch.get_num_threads()))


def run_protocol(run_dir: Path, manifest: dict):
    """The run's protocol, refused when this sr_bench's rules (fingerprint) differ from the run's."""
    stored = manifest.get("protocol", {})
    protocol = get_protocol(stored.get("name") or (manifest.get("request") or {})["protocol"])
    if stored.get("fingerprint") and stored["fingerprint"] != protocol.fingerprint:
        raise UserError(f"run {run_dir.name} was measured under protocol {protocol.name} ({stored['fingerprint']}); "
                        f"this sr_bench's {protocol.name} is {protocol.fingerprint}, so its numbers cannot be "
                        "re-created under the same rules; use the sr_bench version that made the run")
    return protocol


def saved_images(run_dir: Path, manifest: dict, models: list[str], dataset: str, scale_text: str,
                 image: str) -> list[Path] | None:
    """The SR PNGs ``srbench run --save-images`` kept for ``models`` on one image, or None unless every one is
    there and exact (the protocol quantises to integers, so the PNG is the image the metrics saw)."""
    if not (manifest.get("images") or {}).get("exact"):
        return None
    paths = [Path(run_dir) / image_path(m, dataset, scale_text, image) for m in models]
    return paths if all(p.is_file() for p in paths) else None


def _load_plugin_once(path: str, run_dir: Path) -> None:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"run {run_dir.name} used the plugin {path!r}, which is not found from "
                        f"{Path.cwd()}; run this from the folder the run was started in")
    loaded = sys.modules.get(f"sr_bench_plugin_{p.stem}")  # the module name load_plugin gives it
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == p.resolve():
        return  # already imported in this process (load_plugin refuses a file whose models are registered)
    load_plugin(p)
