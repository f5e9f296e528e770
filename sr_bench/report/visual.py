"""Where two models differ visually (``srbench compare --visual``, README): one image re-run under the run's protocol
as ``srbench run`` does, a paper-style crop figure. Each model's PSNR/SSIM must equal the run's stored row within
``TOLERANCE``: the figure shows the images that produced the table's numbers, or nothing."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from sr_bench.errors import UserError
from sr_bench.metrics import metric_info
from sr_bench.report.plot import pyplot

TOLERANCE = 1e-9
MIN_BOX = 8
CAPTION_METRICS = ("psnr", "ssim")


class ReproductionMismatch(Exception):
    """A re-created model does not reproduce the run's stored numbers (the CLI exits 1: ran, found a problem)."""


@dataclass(frozen=True)
class Source:
    """A model to draw: which run it comes from, and its stored rows."""

    run_dir: Path
    model: str
    label: str
    rows: pd.DataFrame  # the run's rows (any model)


@dataclass
class Rendered:
    label: str
    sr: np.ndarray  # (H, W, 3) uint8: the model output quantised as the protocol does
    values: dict[str, float]  # metrics computed now, from the protocol's views
    stored: dict[str, float]  # the run's row


@dataclass
class VisualResult:
    hr: np.ndarray  # (H, W, C) uint8: the HR the SR images are compared with (after the protocol's crop)
    renders: list[Rendered]
    box: tuple[int, int, int, int]  # x, y, w, h
    auto_box: bool
    shave: int
    dataset: str
    image: str
    scale_text: str
    protocol: str
    out: Path | None = None
    saved: list[Path] | None = None


def parse_box(text: str, width: int, height: int) -> tuple[int, int, int, int]:
    """``x,y,w,h`` in pixels of the compared HR (``width`` x ``height``), inside it, w and h >= 1."""
    parts = [p.strip() for p in text.split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
        if len(parts) != 4:
            raise ValueError
    except ValueError:
        raise UserError(f"bad --box {text!r}: write x,y,w,h in pixels, e.g. 10,20,64,64") from None
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise UserError(f"bad --box {text!r}: it must lie inside the {width}x{height} (width x height) HR as compared, "
                        f"with w, h >= 1 (x + w <= {width}, y + h <= {height})")
    return x, y, w, h


def default_box(sr_a: np.ndarray, sr_b: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """The ``max(MIN_BOX, side // 4)`` window (capped at the image) with the largest sum of |A - B| over the colour
    channels, searched inside ``margin`` pixels from every edge when it fits there; ties go to the top-most, then
    left-most window."""
    height, width = sr_a.shape[:2]
    h, w = min(height, max(MIN_BOX, height // 4)), min(width, max(MIN_BOX, width // 4))
    diff = np.abs(sr_a.astype(np.int64) - sr_b.astype(np.int64)).reshape(height, width, -1).sum(axis=2)
    y0 = x0 = 0
    if height - 2 * margin >= h and width - 2 * margin >= w:
        diff = diff[margin:height - margin, margin:width - margin]
        y0 = x0 = margin
    integral = np.zeros((diff.shape[0] + 1, diff.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = diff.cumsum(0).cumsum(1)
    sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    iy, ix = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x0 + ix), int(y0 + iy), int(w), int(h)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def default_out(run_dir: Path, labels: list[str], dataset: str, image: str, scale_text: str) -> Path:
    """``<run folder>/compare_<A>_vs_<B>_<dataset>_<image>_x<scale>.png``."""
    return Path(run_dir) / (_safe(f"compare_{'_vs_'.join(labels)}_{dataset}_{image}_x{scale_text}") + ".png")


def _find_item(run_dir: Path, dataset: str, image: str):
    """The run's ImageItem for ``dataset``/``image``, resolved from its stored request (names, paths, data root)."""
    from sr_bench.data import resolve_dataset
    from sr_bench.store import read_manifest

    req = read_manifest(run_dir).get("request") or {}
    problems = []
    for name in req.get("datasets") or []:
        try:
            ds = resolve_dataset(name, data_root=req.get("data_root"))
        except UserError as e:
            problems.append(str(e))
            continue
        if ds.name == dataset:
            for item in ds.items:
                if item.name == image:
                    return item
            raise UserError(f"image {image!r} of {dataset} is no longer in {ds.folder}; it was there when run "
                            f"{run_dir.name} measured it")
    why = f": {problems[0]}" if problems else ""
    raise UserError(f"cannot find dataset {dataset} of run {run_dir.name} from here{why}")


def _tensor(arr: np.ndarray, device):
    """(H, W, C) pixels as the (C, H, W) float64 0..255 tensor the protocols take."""
    import torch

    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(device, torch.float64)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0.0, abs_tol=TOLERANCE)  # infinities equal only themselves


def _stored_row(src: Source, dataset: str, image: str, scale_text: str) -> pd.Series:
    r = src.rows
    hit = r[(r["model"] == src.model) & (r["dataset"] == dataset) & (r["image"] == image)
            & (r["scale_text"] == scale_text)]
    if hit.empty:
        raise UserError(f"run {src.run_dir.name} has no row for {src.model} on {dataset}/{image} x{scale_text}")
    row = hit.iloc[0]
    if row["error"] not in (None, ""):
        raise UserError(f"{src.model} has no numbers for {dataset}/{image} x{scale_text} in run {src.run_dir.name}: "
                        f"{row['error']}")
    return row


def render_models(sources: list[Source], dataset: str, image: str, scale: Fraction, device: str = "auto",
                  progress: bool = True) -> tuple[np.ndarray, list[Rendered], int, str]:
    """Re-create each source's model, run it on ``dataset``/``image`` at ``scale`` under the run's protocol and
    check its PSNR/SSIM against the stored row. Returns the compared HR, the renders, the shave and the protocol."""
    import torch
    from PIL import Image
    from tqdm import tqdm

    from sr_bench.metrics import create_metric
    from sr_bench.protocols import HRSource
    from sr_bench.provenance import resolve_device
    from sr_bench.run.evaluation import metric_value
    from sr_bench.run.replay import rebuild_context, run_protocol, saved_images
    from sr_bench.scales import scale_text as to_text
    from sr_bench.store import read_manifest

    st = to_text(scale)
    stored = [_stored_row(src, dataset, image, st) for src in sources]
    by_run: dict[Path, list[int]] = {}
    for i, src in enumerate(sources):
        by_run.setdefault(Path(src.run_dir), []).append(i)
    renders: list[Rendered | None] = [None] * len(sources)
    hr = shave = protocol_name = None
    bar = tqdm(total=2 * len(sources), desc="re-creating models", unit="step", disable=not progress, delay=2,
               leave=False, file=sys.stderr, dynamic_ncols=True)
    try:
        for run_dir, idxs in by_run.items():
            metrics = tuple(m for m in CAPTION_METRICS
                            if any(pd.notna(stored[i][m]) for i in idxs))
            manifest = read_manifest(run_dir)
            pngs = saved_images(run_dir, manifest, [sources[i].model for i in idxs], dataset, st, image)
            if pngs is not None:  # --save-images kept them: no model is re-created
                protocol, loaded, dev = run_protocol(run_dir, manifest), {}, resolve_device(device)
                for name in metrics:
                    loaded[name] = create_metric(name)
                    loaded[name].load(dev)
                models = [None] * len(idxs)
            else:
                ctx = rebuild_context(run_dir, [sources[i].model for i in idxs], metrics, device)
                protocol, loaded, dev, models = ctx.protocol, ctx.metrics, ctx.device, ctx.models
                precision = ctx.request.precision
            bar.update(len(idxs))
            item = _find_item(run_dir, dataset, image)
            case = protocol.prepare(HRSource(_tensor(item.load(), dev)), scale)
            case_hr = case.hr.round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            if hr is not None and not np.array_equal(hr, case_hr):
                raise UserError(f"the runs read different pixels for {dataset}/{image}; their data folders differ")
            hr, shave, protocol_name = case_hr, case.shave, protocol.name
            bar.set_description(f"{'reading' if pngs else 'running on'} {dataset}/{image} x{st}")
            for k, (i, pair) in enumerate(zip(idxs, models, strict=True)):
                row = stored[i]
                if pngs is not None:
                    sr = _tensor(np.array(Image.open(pngs[k])), dev)  # a saved SR PNG; np.array: a writable copy
                else:
                    sr = _rerun(pair, row, run_dir, case, scale, protocol, precision)
                views = protocol.views(sr, case)
                values = {}
                with torch.inference_mode():
                    for name, metric in loaded.items():
                        values[name] = metric_value(name, metric.compute(*views.pair(metric.info.view)))
                stored_vals = {m: (None if pd.isna(row[m]) else float(row[m])) for m in values}
                renders[i] = Rendered(label=sources[i].label,
                                      sr=sr.round().to(torch.uint8).permute(1, 2, 0).cpu().numpy(),
                                      values=values, stored=stored_vals)
                bar.update(1)
    finally:
        bar.close()
    for r, src, row in zip(renders, sources, stored, strict=True):
        m = next((m for m in r.values if not _same(r.values[m], r.stored[m])), None)
        if m is not None:
            raise ReproductionMismatch(
                f"re-created {src.model} gives {m.upper()} {r.values[m]!r} on {dataset}/{image} x{st}, but run "
                f"{src.run_dir.name} stored {r.stored[m]!r} (tolerance {TOLERANCE:g}); the model, its options or "
                f"the image changed since the run, or the device differs (rows say {row['device']}; try --device)")
    return hr, renders, int(shave), protocol_name


def _rerun(pair, row, run_dir: Path, case, scale: Fraction, protocol, precision: str):
    """The model of ``pair`` (spec, model) re-run on ``case``, as the runner did (its checkpoint must be the run's)."""
    from sr_bench.models.tiling import Tiling
    from sr_bench.run.evaluation import super_resolve_case

    spec, model = pair
    sha_now, sha_then = model.checkpoint_sha256_for(scale), row["checkpoint_sha256"] or ""
    if sha_now != sha_then:
        raise UserError(f"{spec.name}'s checkpoint {spec.checkpoint!r} is not the file run {run_dir.name} loaded "
                        f"(sha256 {sha_then[:12] or 'none'} then, {sha_now[:12] or 'none'} now)")
    tile = row.get("tile")
    tiling = None if tile is None or pd.isna(tile) else Tiling(int(tile), int(row["tile_overlap"]))  # as the row ran
    try:
        sr, _ = super_resolve_case(model, case, scale, protocol, precision, tiling)
    except RuntimeError as e:
        raise UserError(f"{spec.name}: {e}") from None
    return sr


def caption(r: Rendered) -> str:
    infos = {m: metric_info(m) for m in CAPTION_METRICS if r.values.get(m) is not None}
    parts = [f"{m.upper()} {r.values[m]:.{i.decimals}f}" + (f" {i.unit}" if i.unit else "") for m, i in infos.items()]
    return r.label + ("\n" + ", ".join(parts) if parts else "")


def draw_figure(result: VisualResult, out: Path):
    """HR with the box drawn, then the box crop of HR and of each model's SR, captioned. Returns the Figure."""
    out = Path(out)
    plt = pyplot(out, "figure file", "the figure needs")
    from matplotlib.patches import Rectangle

    x, y, w, h = result.box
    hr = result.hr
    height, width = hr.shape[:2]
    panels = 2 + len(result.renders)
    ratios = [width / height] + [w / h] * (panels - 1)
    fig, axes = plt.subplots(1, panels, figsize=(2.4 * sum(ratios) + 0.4, 3.0),
                             gridspec_kw={"width_ratios": ratios})

    def show(ax, img):  # pixels as pixels: no smoothing of the crops
        one = img.shape[2] == 1
        ax.imshow(img[..., 0] if one else img, cmap="gray" if one else None, vmin=0, vmax=255, interpolation="nearest")

    show(axes[0], hr)
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=1.5))
    axes[0].set_xlabel(f"HR {result.dataset}/{result.image}\nx{result.scale_text}, protocol {result.protocol}",
                       fontsize=8)
    crop = lambda img: img[y:y + h, x:x + w]  # noqa: E731
    show(axes[1], crop(hr))
    axes[1].set_xlabel("HR", fontsize=8)
    for ax, r in zip(axes[2:], result.renders, strict=True):
        show(ax, crop(r.sr))
        ax.set_xlabel(caption(r), fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=200)
    plt.close(fig)
    return fig


def save_sr(result: VisualResult, folder: Path) -> list[Path]:
    """Each model's quantised SR as an 8-bit RGB PNG: ``<label>_<dataset>_<image>_x<scale>.png``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in result.renders:
        p = folder / f"{_safe(f'{r.label}_{result.dataset}_{result.image}_x{result.scale_text}')}.png"
        Image.fromarray(r.sr).save(p)
        paths.append(p)
    return paths


def visual_compare(sources: list[Source], dataset: str, image: str, scale: Fraction, out: Path | None,
                   box: str | None = None, save_sr_dir: Path | None = None, device: str = "auto",
                   progress: bool = True) -> VisualResult:
    """The whole ``srbench compare --visual``: re-run, check, pick the box, draw (``out``) and save the SR PNGs."""
    from sr_bench.scales import scale_text as to_text

    if out is not None:
        pyplot(out, "figure file", "the figure needs")  # fail before the re-run, not after
    if box:  # checked against the stored row's compared size before anything runs
        first = _stored_row(sources[0], dataset, image, to_text(scale))
        parse_box(box, int(first["hr_width"]), int(first["hr_height"]))
    hr, renders, shave, protocol = render_models(sources, dataset, image, scale, device, progress)
    height, width = hr.shape[:2]
    chosen = parse_box(box, width, height) if box else default_box(renders[0].sr, renders[1].sr, margin=shave)
    result = VisualResult(hr=hr, renders=renders, box=chosen, auto_box=not box, shave=shave, dataset=dataset,
                          image=image, scale_text=to_text(scale), protocol=protocol)
    if out is not None:
        draw_figure(result, out)
        result.out = Path(out)
    if save_sr_dir is not None:
        result.saved = save_sr(result, save_sr_dir)
    return result
