"""What ASDN's zero-weight level skip saves on the headline grid (``srbench run --models asdn,metasr --scales
1.5:4:0.1`` over Set5, Set14, B100, Urban100; decimal scales, so the metasr protocol).

An LFR pass at r in (1, 2] blends two levels, O_r = O_i + w_r (O_{i-1} - O_i); when r is on a level, w_r = 0 and the
adapter runs level i alone (``ASDNUpscaler.lfr_pass``), which is the same output bit for bit: 0 * x adds +-0 to
O_i for any finite x (``tests/test_speed_levers.py`` compares it with a reference that runs both levels). On this
grid every scale in 1.5..2.0 is on a level (the levels are 1.0, 1.1, ..., 2.0), every recursive x2 pass is level 10
alone, and the last pass of 2.2, 2.4, ..., 4.0 (r = s/2) is on a level too.

FLOPs: torch's FLOP counter over the full-size network (16 DABs) at a level input of H x W is exactly a H W + b
(stride-1 padded convolutions grow with the pixels, channel attention's 1x1 convolutions on pooled features do
not); a and b come from two sizes on the meta device (no arithmetic), checked on a third. Meta-RDN, for the grid's
total, is fitted the same way from its LR pixels (RDN body) and SR pixels (meta-upscale). The LR size of each
(image, scale) follows the metasr protocol (``sr_bench.protocols.metasr``); the image sizes are read from the file
headers under SRBENCH_DATA (or --data-root).

    python benchmarks/asdn_level_skip.py [--data-root DIR] [--scales 1.5:4:0.1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from sr_bench.imaging.resize import output_size
from sr_bench.models.archs.asdn import LFR_LEVELS, lfr_level, lfr_scales
from sr_bench.models.strategies import recursive_plan
from sr_bench.scales import ceil_div, divisible, floor_mul, scale_text

GRID_SCALES = "1.5:4:0.1"
GRID_DATASETS = ("set5", "set14", "b100", "urban100")


def level_runs(lr_size: tuple[int, int], scale: Fraction, skip: bool = True,
               levels: int = LFR_LEVELS) -> list[tuple[int, tuple[int, int]]]:
    """(level, level input size) of every network forward of ASDN at ``scale`` from an LR of ``lr_size``: as the
    adapter runs them (``skip``: w_r = 0 runs level i alone), or with level i - 1 run for every pass."""
    h, w = lr_size
    runs = []
    for r in recursive_plan(Fraction(scale)):
        i, weight = lfr_level(r, levels)
        for level in ([i] if skip and weight == 0 else [i, i - 1]):
            runs.append((level, (h, w) if level == 0 else output_size((h, w), lfr_scales(levels)[level])))
        h, w = 2 * h, 2 * w  # an intermediate x2 pass makes exactly twice its input; the last one's size is unused
    return runs


def metasr_sizes(hr_size: tuple[int, int], s: Fraction) -> tuple[tuple[int, int], tuple[int, int]]:
    """(LR size, SR size) of the metasr protocol for an HR of ``hr_size`` (its ``prepare``, sizes only)."""
    h, w = hr_size
    hc = h if divisible(h, s) else h - 4
    wc = w if divisible(w, s) else w - 4
    lr = (ceil_div(hc, s), ceil_div(wc, s))
    return lr, (floor_mul(lr[0], s), floor_mul(lr[1], s))


def _count(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        fn()
    return int(counter.get_total_flops())


def _meta(factory):
    from sr_bench.models.archs.blocks import build_module

    return build_module(factory, meta=True).eval()


def asdn_cost(levels: int = LFR_LEVELS, n_dab: int = 16) -> tuple[int, int]:
    """(a, b): FLOPs of one level forward of ASDN at H x W = a H W + b, exact (checked on a third size)."""
    from sr_bench.models.archs.asdn import ASDN

    net = _meta(lambda: ASDN(levels=levels, n_dab=n_dab))
    flops = lambda h, w: _count(lambda: net(torch.empty(1, 3, h, w, device="meta"), levels - 1))  # noqa: E731
    f1, f2 = flops(8, 8), flops(16, 8)
    a = (f2 - f1) // 64
    b = f1 - 64 * a
    if flops(13, 21) != a * 13 * 21 + b:
        raise AssertionError("ASDN's FLOPs are not affine in the input pixels")
    return a, b


def metasr_cost() -> tuple[int, int, int]:
    """(a, b, c): FLOPs of Meta-RDN from an LR of n pixels to an SR of m pixels = a n + b m + c, exact."""
    from sr_bench.models.archs.metasr import MetaRDN

    net = _meta(lambda: MetaRDN(rgb_range=255))

    def flops(lr, sr):
        x = torch.empty(1, 3, *lr, device="meta")
        return _count(lambda: net.add_mean(net.meta_upscale(net.features(net.sub_mean(x)), float(sr[0] / lr[0]),
                                                            sr)))

    f0, f1, f2 = flops((8, 8), (16, 16)), flops((16, 8), (32, 16)), flops((8, 8), (20, 20))
    a_plus = (f1 - f0) // 64  # a + 4 b (LR +64 px, SR +256 px)
    b = (f2 - f0) // (400 - 256)
    a = a_plus - 4 * b
    c = f0 - 64 * a - 256 * b
    if flops((10, 12), (25, 30)) != a * 120 + b * 750 + c:
        raise AssertionError("Meta-RDN's FLOPs are not affine in the LR and SR pixels")
    return a, b, c


def grid(sizes: dict[str, list[tuple[int, int]]], scales: list[Fraction]) -> dict:
    """Per scale: ASDN FLOPs as run and with both levels of every pass, Meta-RDN FLOPs; over all images."""
    a, b = asdn_cost()
    ma, mb, mc = metasr_cost()
    per_scale = []
    for s in scales:
        run = every = meta = evals = 0
        for hw_list in sizes.values():
            for hr in hw_list:
                lr, sr = metasr_sizes(hr, s)
                run += sum(a * h * w + b for _, (h, w) in level_runs(lr, s, skip=True))
                every += sum(a * h * w + b for _, (h, w) in level_runs(lr, s, skip=False))
                meta += ma * lr[0] * lr[1] + mb * sr[0] * sr[1] + mc
                evals += 1
        per_scale.append({"scale": scale_text(s),
                          "evaluations": evals, "asdn_flops": run, "asdn_flops_every_level": every,
                          "metasr_flops": meta, "saved": every - run})
    return {"asdn_affine": [a, b], "metasr_affine": [ma, mb, mc], "per_scale": per_scale,
            "asdn_flops": sum(p["asdn_flops"] for p in per_scale),
            "asdn_flops_every_level": sum(p["asdn_flops_every_level"] for p in per_scale),
            "metasr_flops": sum(p["metasr_flops"] for p in per_scale)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="folder holding the sets (default: SRBENCH_DATA)")
    p.add_argument("--scales", default=GRID_SCALES)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from PIL import Image

    from sr_bench.data.resolve import resolve_dataset
    from sr_bench.errors import UserError
    from sr_bench.scales import parse_scales

    sizes = {}
    for name in GRID_DATASETS:
        try:
            ds = resolve_dataset(name, args.data_root)
        except UserError as e:
            print(f"asdn_level_skip: no data, nothing counted (set SRBENCH_DATA or --data-root): {e}")
            return 0
        hw = []
        for item in ds.items:
            with Image.open(item.path) as im:  # the header only
                hw.append((im.size[1], im.size[0]))
        sizes[ds.name] = hw
    out = grid(sizes, parse_scales(args.scales))
    print("| scale | ASDN as run (PFLOPs) | every level (PFLOPs) | saved | Meta-RDN (PFLOPs) |")
    print("|---|---:|---:|---:|---:|")
    for r in out["per_scale"]:
        print(f"| x{r['scale']} | {r['asdn_flops'] / 1e15:.3f} | {r['asdn_flops_every_level'] / 1e15:.3f} | "
              f"{r['saved'] / r['asdn_flops_every_level']:.1%} | {r['metasr_flops'] / 1e15:.3f} |")
    run, every, meta = out["asdn_flops"], out["asdn_flops_every_level"], out["metasr_flops"]
    print(f"\n{sum(len(v) for v in sizes.values())} images x {len(out['per_scale'])} scales: ASDN {run / 1e15:.1f} "
          f"PFLOPs as run, {every / 1e15:.1f} PFLOPs with every level: the skip saves {(every - run) / 1e15:.1f} "
          f"PFLOPs, {(every - run) / every:.1%} of ASDN's FLOPs and {(every - run) / (every + meta):.1%} of the "
          f"grid's (ASDN + Meta-RDN {meta / 1e15:.1f} PFLOPs); the grid as run: {(run + meta) / 1e15:.1f} PFLOPs")
    print(f"FLOPs per level forward: {out['asdn_affine'][0]:,} x H x W + {out['asdn_affine'][1]:,}; Meta-RDN: "
          f"{out['metasr_affine'][0]:,} x LR px + {out['metasr_affine'][1]:,} x SR px + {out['metasr_affine'][2]:,}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
