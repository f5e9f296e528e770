"""The tables docs/gpu-check.md wants from one ``benchmarks/headline_gpu_check.sh`` call: its folder of
``headline_*.json`` (``benchmarks/headline_grid.py --json``) and ``parity.txt``.

- Headline (``headline_bf16``, ``headline_fp32``): the full grid extrapolated, against the 15-minute goal, and each
  model's MFU over the whole grid: its FLOPs per evaluation x pixel ratio x full evaluations over its forward seconds
  scaled the same way, summed over the sets (so the large sets weigh as in the full grid).
- Levers (``headline_lever_*``): each lever's extrapolated seconds for the sets of its sample against the lever-free
  run of the same precision (bf16: the mean of ``lever_none`` and ``lever_none_again``, the first and the last run of
  the call; fp32: ``lever_fp32``); below 1 is faster. Every lever run is one process per set, as the baseline, and
  its --compile warm-up counts once, not per evaluation.

    python benchmarks/headline_summary.py OUT_FOLDER
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GOAL_SECONDS = 15 * 60
# the lever runs in the order headline_gpu_check.sh makes them (any other lever_* after them)
LEVER_ORDER = ("none", "channels_last", "cudnn_benchmark", "workers2", "ray_half_gpu", "compile_channels_last", "fp32",
               "fp32_channels_last", "none_again")


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def model_mfu(results: list[dict]) -> dict[str, tuple[float | None, float]]:
    """model -> (MFU over the extrapolated grid, FLOP/s), FLOPs and seconds weighted as the full grid weighs them."""
    from sr_bench.run.peaks import flops_per_second, mfu

    out = {}
    for model in sorted({r["model"] for r in results}):
        rs = [r for r in results if r["model"] == model]
        flops = sum(r["flops_per_eval"] * r["pixel_ratio"] * r["full_evaluations"] for r in rs)
        seconds = sum(r["forward_s_per_eval"] * r["pixel_ratio"] * r["full_evaluations"] for r in rs)
        out[model] = (mfu(flops, seconds, rs[0]["device"], rs[0]["precision"]), flops_per_second(flops, seconds))
    return out


def headline_section(name: str, data: dict) -> list[str]:
    from sr_bench.run.peaks import mfu_text, rate_text

    res = data["results"]
    lines = [f"### {name}: {data.get('precision', '?')}, levers {' '.join(data.get('levers') or []) or 'none'}", "",
             "| model | set | sample evals | forward s/eval | outside s/eval | GFLOPs/eval | MFU | extrapolated |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in res:
        lines.append(f"| {r['model']} | {r['set']} | {r['evaluations']} | {r['forward_s_per_eval']:.4f} | "
                     f"{r['outside_s_per_eval']:.4f} | {r['flops_per_eval'] / 1e9:,.1f} | {mfu_text(r['mfu'])} | "
                     f"{minutes(r['extrapolated_seconds'])} |")
    total = data["total_seconds"]
    lines += ["", f"- full grid ({data['evaluations']:,} evaluations) extrapolated: **{minutes(total)}** "
                  f"(forwards {minutes(data['forward_seconds'])}); goal <= 15 min "
                  f"{'met' if total <= GOAL_SECONDS else 'not met'} ({res[0]['device'] if res else '?'})"]
    for model, (share, rate) in model_mfu(res).items():
        lines.append(f"- {model}: {rate_text(rate)} over the grid, MFU {mfu_text(share)}")
    return lines


def lever_section(found: dict[str, dict]) -> list[str]:
    lines = ["### Levers (same sample, no FLOP counter)", "",
             "| run | precision | levers | extrapolated (sample's sets) | vs no lever | ASDN fwd s/eval | "
             "Meta-RDN fwd s/eval | outside s/eval | warm-up |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    # bf16's baseline ran first and last: their mean, so that a drift over the call (a cold first process) is shared
    nones = [found[n]["total_seconds"] for n in ("lever_none", "lever_none_again") if n in found]
    base = {"bf16": sum(nones) / len(nones) if nones else None,
            "fp32": found["lever_fp32"]["total_seconds"] if "lever_fp32" in found else None}
    levers = sorted((n for n in found if n.startswith("lever_")),
                    key=lambda n: (LEVER_ORDER.index(n[6:]) if n[6:] in LEVER_ORDER else len(LEVER_ORDER), n))
    for name in levers:
        data = found[name]
        ref = base.get(data.get("precision"))
        ratio = f"{data['total_seconds'] / ref:.3f}" if ref else "–"
        fwd = {}
        for r in data["results"]:
            fwd.setdefault(r["model"], []).append(r["forward_s_per_eval"])
        outside = [r["outside_s_per_eval"] for r in data["results"]]
        each = {m: f"{sum(v) / len(v):.4f}" for m, v in fwd.items()}
        lines.append(f"| {name[6:]} | {data.get('precision', '?')} | {' '.join(data.get('levers') or []) or 'none'} "
                     f"| {minutes(data['total_seconds'])} | {ratio} | {each.get('asdn', '–')} | "
                     f"{each.get('metasr', '–')} | "
                     f"{sum(outside) / max(len(outside), 1):.4f} | {data.get('warmup_seconds', 0.0):.1f} s |")
    lines += ["", "With --workers 2 the per-process forward seconds overlap; compare the extrapolated column."]
    return lines


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:])[0])
    found = {p.stem.removeprefix("headline_"): json.loads(p.read_text())
             for p in sorted(folder.glob("headline_*.json"))}
    lines = ["## Headline grid on the GPU (benchmarks/headline_gpu_check.sh)", ""]
    for name in ("bf16", "fp32"):
        if name in found:
            lines += headline_section(name, found[name]) + [""]
        else:
            lines += [f"### {name}: no result (see gpu.txt)", ""]
    if any(n.startswith("lever_") for n in found):
        lines += lever_section(found) + [""]
    parity = folder / "parity.txt"
    checks = [x for x in parity.read_text().splitlines() if x.startswith(("PASS", "FAIL"))] if parity.is_file() else []
    lines += ["### CUDA = CPU, ASDN and Meta-RDN, Set5 butterfly x2.5, fp32", ""]
    lines += [f"- {x}" for x in checks] or ["- no result (see gpu.txt)"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
