"""The headline command, ``srbench run --models asdn,metasr --scales 1.5:4:0.1`` over Set5, Set14, B100 and Urban100
(219 images x 26 scales x 2 models = 11,388 evaluations), measured on a deterministic sample and extrapolated to the
full grid.

The sample is every --every-th image of each set (the card's order, starting with the first), at most --max-images
per set, optionally centre-cropped to --size x --size HR pixels (so that it runs on a CPU), at --scales (default the
grid's). Each set's sample is one real ``srbench run --profile`` of all --models with random weights, in a
subprocess, as the headline command runs them. From its rows (Parquet) and run.json ``timing``, per (model, set):

- forward s/eval: the rows' summed forward seconds / their evaluations, the model's first forward of the run (one-off
  costs: lazy kernel loading, first-touch memory) counted as the mean of its other forwards at the same scale, when
  there are any;
- outside s/eval: the run's wall time minus all its forward seconds (and the fp32 drift forwards), i.e. decoding,
  LR making, metrics and writing, per evaluation of the run (shared evenly by the models, which see the same images);
- FLOP/s: the rows' summed FLOPs / summed forward seconds; MFU: that over the device's dense peak in --precision
  (``sr_bench.run.peaks``; "–" where none is listed, CPUs included);
- extrapolated: (forward + outside s/eval) x pixel ratio x full evaluations, where the pixel ratio is the set's mean
  HR pixels per image over the sample's (cropped) mean, and the full evaluations are the set's images x the grid's
  scales. The full grid is the sum over (model, set). Forward time grows with output pixels, so the ratio carries the
  sample's seconds to full-size images; a sample of scales stands for the grid's mean over its scales.

Speed levers (``sr_bench.run.levers``) pass through to ``srbench run``: --compile [BACKEND], --channels-last,
--cudnn-benchmark, --workers N, --gpus-per-worker G (Ray). --compile's warm-up (run.json's execution entry) is left
out of each set's outside time and counted once in the total: the full grid is one process, which compiles once.

Seconds under ``--profile`` include torch's FLOP counter's dispatch overhead of every op of the forward (small next to
a convolution on a large image, not on a tiny one).

    python benchmarks/headline_grid.py --device cuda --precision bf16               # GPU: every 10th image, 26 scales
    python benchmarks/headline_grid.py --device cpu --every 50 --max-images 1 --scales 2 --size 48 --metrics psnr,ssim

Data: SRBENCH_DATA or --data-root (the folder holding Set5/ Set14/ B100/ Urban100/); with none, one line says so
and the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID_SCALES = "1.5:4:0.1"
GRID_DATASETS = "set5,set14,b100,urban100"


def hr_pixels(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as im:  # the header only
        return im.size[0] * im.size[1]


def sample_set(dataset, every: int, max_images: int | None, size: int | None, dest: Path) -> dict:
    """Every ``every``-th image of ``dataset`` into ``dest`` (centre-cropped to ``size`` when given); the set's and
    the sample's image counts and HR pixels."""
    from PIL import Image

    items = list(dataset.items)
    chosen = items[::every][:max_images] if max_images else items[::every]
    dest.mkdir(parents=True)
    pixels = 0
    for item in chosen:
        if size is None:
            shutil.copyfile(item.path, dest / Path(item.path).name)
            pixels += hr_pixels(item.path)
            continue
        with Image.open(item.path) as im:
            w, h = im.size
            cw, ch = min(w, size), min(h, size)
            left, top = (w - cw) // 2, (h - ch) // 2
            im.crop((left, top, left + cw, top + ch)).save(dest / f"{item.name}.png")  # lossless
        pixels += cw * ch
    return {"images": len(items), "pixels": sum(hr_pixels(i.path) for i in items),
            "sample_images": len(chosen), "sample_pixels": pixels, "sample_names": [i.name for i in chosen]}


def run_set(folder: Path, out: Path, args) -> tuple[object, dict, float]:
    """One ``srbench run --profile`` of the sample folder: (rows, run.json timing, seconds of the subprocess)."""
    from sr_bench.store import load_rows

    cmd = [sys.executable, "-c", "from sr_bench.cli import main; main()", "run", "--models", args.models,
           "--datasets", str(folder), "--scales", args.scales, "--protocol", args.protocol, "--allow-untrained",
           "--out", str(out), "--no-progress", "--device", args.device, "--precision", args.precision,
           "--drift-images", str(args.drift_images)]
    cmd += [] if args.no_profile else ["--profile"]
    cmd += [] if args.compile is None else ["--compile", args.compile]
    cmd += ["--channels-last"] * args.channels_last + ["--cudnn-benchmark"] * args.cudnn_benchmark
    cmd += ["--workers", str(args.workers)] if args.workers != 1 else []
    cmd += ["--executor", "ray", "--gpus-per-worker", f"{args.gpus_per_worker:g}"] if args.gpus_per_worker else []
    cmd += ["--metrics", args.metrics] if args.metrics else []
    cmd += ["--prefetch", str(args.prefetch)] if args.prefetch is not None else []
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"headline_grid: `srbench run` on {folder.name} failed (exit {done.returncode}):\n"
                 + "\n".join(done.stderr.strip().splitlines()[-15:]))
    manifest = json.loads((out / "run.json").read_text())
    # --compile's warm-up (run.json's execution entry): a one-off of the process, not a cost per evaluation
    warmup = (manifest.get("execution") or [{}])[-1].get("warmup_seconds") or 0.0
    return load_rows(out), {**manifest["timing"], "warmup_seconds": warmup}, seconds


def measure(rows, timing: dict, stats: dict, grid_scales: int, flops_per_eval: dict | None = None) -> list[dict]:
    """Per model of one set's run: the sample's costs and the full set's extrapolated seconds; ``flops_per_eval``
    (model -> FLOPs) stands in for rows measured without ``--profile``."""
    from sr_bench.run.peaks import flops_per_second, mfu, split_device_label

    ok = rows[(rows["error"].fillna("") == "") & rows["seconds"].notna()]
    outside = (timing["wall_seconds"] - timing["forward_seconds"] - timing.get("fp32_reference_seconds", 0.0)
               - timing.get("warmup_seconds", 0.0))
    outside_eval = outside / len(ok) if len(ok) else float("nan")
    ratio = (stats["pixels"] / stats["images"]) / (stats["sample_pixels"] / stats["sample_images"])
    full = stats["images"] * grid_scales
    out = []
    for model, g in ok.sort_values("created", kind="stable").groupby("model", sort=False):
        device, precision = split_device_label(g["device"].iloc[0])
        # the run's first forward of a model also pays one-off costs (lazy kernels, first-touch memory) that the
        # full grid pays once in 11,388 evaluations: it counts as the mean of the other forwards at its scale, so
        # that no scale is left out of the mean; kept as measured when it is the only one at its scale
        seconds = g["seconds"].astype(float).to_numpy().copy()
        same = g["scale_text"].to_numpy()[1:] == g["scale_text"].iloc[0]
        if same.any():
            seconds[0] = seconds[1:][same].mean()
        forward, flops = float(seconds.sum()), float(g["flops"].fillna(0).sum())
        if not flops and (flops_per_eval or {}).get(model):
            flops = flops_per_eval[model] * len(g)
        per_eval = forward / len(g) + outside_eval
        out.append({"model": model, "evaluations": len(g), "first_forward_s": float(g["seconds"].iloc[0]),
                    "first_forward_replaced": bool(same.any()), "forward_s_per_eval": forward / len(g),
                    "outside_s_per_eval": outside_eval, "flops_per_eval": flops / len(g),
                    "flops_per_second": flops_per_second(flops, forward), "mfu": mfu(flops, forward, device, precision),
                    "device": device, "precision": precision, "pixel_ratio": ratio, "full_evaluations": full,
                    "full_s_per_eval": per_eval * ratio, "extrapolated_seconds": per_eval * ratio * full})
    return out


def table(results: list[dict]) -> str:
    from sr_bench.run.peaks import mfu_text, rate_text

    lines = ["| model | set | images (sample/full) | evals | forward s/eval | outside s/eval | GFLOPs/eval | FLOP/s | "
             "MFU | pixel ratio | full evals | s/eval full-size | extrapolated |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['set']} | {r['sample_images']}/{r['images']} | {r['evaluations']} | "
                     f"{r['forward_s_per_eval']:.4f} | {r['outside_s_per_eval']:.4f} | "
                     f"{r['flops_per_eval'] / 1e9:,.1f} | {rate_text(r['flops_per_second'])} | {mfu_text(r['mfu'])} | "
                     f"{r['pixel_ratio']:,.2f} | {r['full_evaluations']:,} | {r['full_s_per_eval']:.4f} | "
                     f"{duration(r['extrapolated_seconds'])} |")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min" if seconds < 7200 \
        else f"{seconds / 3600:,.1f} h"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="asdn,metasr")
    p.add_argument("--datasets", default=GRID_DATASETS)
    p.add_argument("--grid-scales", default=GRID_SCALES, help="the full grid's scales (what is extrapolated to)")
    p.add_argument("--scales", default=None, help="the sample's scales (default: --grid-scales)")
    p.add_argument("--protocol", default="metasr", help="what auto picks for the headline's decimal scales")
    p.add_argument("--every", type=int, default=10, help="every K-th image of each set (from the first)")
    p.add_argument("--max-images", type=int, default=None, help="at most N sampled images per set")
    p.add_argument("--size", type=int, default=None, help="centre-crop sampled HR images to at most N x N pixels")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16", "fp16"])
    p.add_argument("--prefetch", type=int, default=None, help="as for srbench run (default: 2 on CUDA, 0 on CPU)")
    p.add_argument("--metrics", default=None, help="as for srbench run (default: its psnr,ssim,lpips)")
    p.add_argument("--drift-images", type=int, default=0,
                   help="fp32 drift forwards per run (default 0: a fixed cost, not part of the grid's evaluations)")
    p.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                   help="srbench run --compile (speed lever; its warm-up counts once in the total, not per evaluation)")
    p.add_argument("--channels-last", action="store_true", help="srbench run --channels-last (speed lever)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="srbench run --cudnn-benchmark (speed lever)")
    p.add_argument("--workers", type=int, default=1,
                   help="srbench run --workers (speed lever: 2 processes share one GPU with --device cuda); a "
                        "worker's --compile warm-up is then part of the outside time")
    p.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="srbench run --executor ray --gpus-per-worker G (0.5: two Ray actors per GPU; needs Ray)")
    p.add_argument("--data-root", default=None, help="folder holding the sets (default: SRBENCH_DATA)")
    p.add_argument("--prepare", default=None, metavar="DIR",
                   help="only write the sample (and the full sets' counts, sample.json) to DIR, e.g. to carry it to a "
                        "GPU machine that has no copy of the sets")
    p.add_argument("--sample", default=None, metavar="DIR", help="measure a sample --prepare wrote (no data needed)")
    p.add_argument("--no-profile", action="store_true",
                   help="time forwards without torch's FLOP counter (its per-op overhead is then out of the seconds); "
                        "FLOPs from --flops-from, else FLOP/s and MFU are not shown")
    p.add_argument("--flops-from", default=None, metavar="JSON",
                   help="FLOPs per evaluation from an earlier --json of the same sample and scales")
    p.add_argument("--work", default=None, help="keep the sample and the runs here (default: a temporary folder)")
    p.add_argument("--json", default=None, help="write the per (model, set) figures and the total here")
    args = p.parse_args(argv)
    args.scales = args.scales or args.grid_scales
    if args.every < 1 or (args.max_images is not None and args.max_images < 1) or (args.size is not None
                                                                                   and args.size < 1):
        p.error("--every, --max-images and --size must be >= 1")

    from sr_bench.errors import UserError
    from sr_bench.run.grid import split_list
    from sr_bench.scales import parse_scales

    try:
        grid_scales, models = len(parse_scales(args.grid_scales)), split_list(args.models)
        parse_scales(args.scales)
    except UserError as e:
        p.error(str(e))
    if args.sample:
        sample_dir = Path(args.sample)
        if not (sample_dir / "sample.json").is_file():
            p.error(f"--sample {sample_dir}: no sample.json there; write one with --prepare {sample_dir}")
        kept = json.loads((sample_dir / "sample.json").read_text())
        sets, missing = kept["sets"], kept["missing"]
        args.every, args.max_images, args.size = kept["every"], kept["max_images"], kept["size"]
    else:
        found, missing = find_sets(split_list(args.datasets), args.data_root)
        if not found:
            print(f"headline_grid: no data, nothing measured (set SRBENCH_DATA or --data-root): {'; '.join(missing)}")
            return 0
        sample_dir = None
    for m in missing:
        print(f"headline_grid: skipping {m}", file=sys.stderr)
    flops_from = load_flops(args.flops_from) if args.flops_from else {}

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="headline_grid_"))
    results, started = [], time.perf_counter()
    try:
        if sample_dir is None:
            sample_dir = Path(args.prepare) if args.prepare else work / "sample"
            sets = {ds.name: sample_set(ds, args.every, args.max_images, args.size, sample_dir / ds.name)
                    for ds in found}
            if args.prepare:
                (sample_dir / "sample.json").write_text(json.dumps(
                    {"sets": sets, "missing": missing, "every": args.every, "max_images": args.max_images,
                     "size": args.size}, indent=1) + "\n")
                print(f"headline_grid: sample of {sum(v['sample_images'] for v in sets.values())} images written to "
                      f"{sample_dir}; measure it with --sample {sample_dir}")
                return 0
        for name, stats in sets.items():
            rows, timing, seconds = run_set(sample_dir / name, work / "runs" / name, args)
            for r in measure(rows, timing, stats, grid_scales, {m: f for (m, d), f in flops_from.items() if d == name}):
                results.append({"set": name, **{k: v for k, v in stats.items() if k != "sample_names"},
                                **r, "wall_seconds": timing["wall_seconds"], "process_seconds": seconds,
                                "warmup_seconds": timing["warmup_seconds"]})
            print(f"{name}: {stats['sample_images']} of {stats['images']} images, run "
                  f"{timing['wall_seconds']:.1f} s (process {seconds:.1f} s)", file=sys.stderr, flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    # the full grid is one process: it warms up (compiles) once, as each set's run here did
    warmups = list({r["set"]: r["warmup_seconds"] for r in results}.values())
    warmup = sum(warmups) / len(warmups) if warmups else 0.0
    total = sum(r["extrapolated_seconds"] for r in results) + warmup
    forward = sum(r["forward_s_per_eval"] * r["pixel_ratio"] * r["full_evaluations"] for r in results)
    evaluations = sum(r["full_evaluations"] for r in results)
    images = sum({r["set"]: r["images"] for r in results}.values())
    print(table(results))
    print(f"\nfull grid: {images} images x {grid_scales} scales x {len(models)} models = {evaluations:,} evaluations, "
          f"extrapolated {duration(total)} ({total:,.1f} s: forwards {forward:,.1f} s, outside "
          f"{total - forward - warmup:,.1f} s" + (f", --compile warm-up once {warmup:,.1f} s" if warmup else "") + ")")
    device = results[0]["device"] if results else ""
    levers = " ".join(["--compile " + args.compile if args.compile else "", "--channels-last" * args.channels_last,
                       "--cudnn-benchmark" * args.cudnn_benchmark,
                       f"--workers {args.workers}" if args.workers != 1 else "",
                       f"--gpus-per-worker {args.gpus_per_worker:g}" if args.gpus_per_worker else ""]).split()
    print(f"device {device}, precision {args.precision}, levers {' '.join(levers) or 'none'}; sample: "
          + ("every image" if args.every == 1 else f"every {args.every}th image")
          + (f", at most {args.max_images} per set" if args.max_images else "")
          + (f", HR centre-cropped to {args.size}x{args.size}" if args.size else "")
          + f", scales {args.scales}" + ("; forwards timed without the FLOP counter" if args.no_profile else "")
          + f"; measured in {time.perf_counter() - started:.1f} s"
          + (f"; missing: {', '.join(m.split(' (')[0] for m in missing)}" if missing else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "total_seconds": total, "forward_seconds": forward,
                                               "warmup_seconds": warmup, "levers": levers,
                                               "precision": args.precision,
                                               "evaluations": evaluations, "images": images,
                                               "grid_scales": grid_scales, "models": models}, indent=1) + "\n")
    return 0


def find_sets(names: list[str], data_root: str | None) -> tuple[list, list[str]]:
    """The datasets found (all of their files present) and a 'name (why not)' for each one that is not."""
    from sr_bench.data.resolve import resolve_dataset
    from sr_bench.errors import UserError

    found, missing = [], []
    for name in names:
        try:
            found.append(resolve_dataset(name, data_root))
        except UserError as e:
            missing.append(f"{name} ({e})")
    return found, missing


def load_flops(path: str) -> dict[tuple[str, str], float]:
    """(model, set) -> FLOPs per evaluation, from an earlier --json."""
    return {(r["model"], r["set"]): r["flops_per_eval"] for r in json.loads(Path(path).read_text())["results"]}


if __name__ == "__main__":
    sys.exit(main())
