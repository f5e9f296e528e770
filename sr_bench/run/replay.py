"""Re-creating a finished run's models and protocol from the request stored in its run.json.

The same machinery as ``srbench run`` (``Setup`` -> ``build_context``), fed from run.json instead of the command
line, for anything that must reproduce a run's numbers (``srbench compare --visual``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sr_bench.errors import UserError, unknown
from sr_bench.models import load_plugin
from sr_bench.models.registry import resolve as resolve_model
from sr_bench.protocols import get_protocol
from sr_bench.run.grid import ModelSpec
from sr_bench.run.runner import Context, Setup, takes_option, build_context
from sr_bench.store import read_manifest


def rebuild_context(run_dir: Path, models: list[str], metrics: tuple[str, ...] = ("psnr", "ssim"),
                    device: str = "auto") -> Context:
    """``models`` of the run in ``run_dir`` re-created with the run's specs (checkpoints), ``--model-opt``
    options, plugins and ``--allow-untrained``, the run's protocol (its fingerprint checked against this
    sr_bench's), and ``metrics`` loaded (explicitly: one that cannot load is an error)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    req = manifest.get("request")
    if req is None:
        raise UserError(f"{run_dir}/run.json has no stored request (made by an older sr_bench); rerun it instead")
    for plugin in req.get("plugins") or []:
        _load_plugin_once(plugin, run_dir)
    specs = {s.name: s for s in (ModelSpec.parse(m) for m in req["models"])}
    for name in models:
        if name not in specs:
            raise UserError(f"{unknown('model', name, specs)} (models of run {run_dir.name})")
    chosen = tuple(specs[n] for n in models)
    # options the run gave for its other models only would make build_context refuse; keep the ones these take
    opts = {k: v for k, v in (req.get("model_opts") or {}).items()
            if any(takes_option(resolve_model(s.name), k) for s in chosen)}
    protocol = run_protocol(run_dir, manifest)
    setup = Setup(run_id=run_dir.name, specs=chosen, model_opts=tuple(sorted(opts.items())),
                  allow_untrained=bool(req.get("allow_untrained")), plugins=(), protocol=protocol.name,
                  metrics=tuple(metrics), metrics_explicit=True, lpips_weights=req.get("lpips_weights"),
                  device=device, threads=torch.get_num_threads(), precision=req.get("precision", "fp32"))
    return build_context(setup)


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
    from sr_bench.run.runner import image_path

    info = manifest.get("images") or {}
    if not info.get("exact"):
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
