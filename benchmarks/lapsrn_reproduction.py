"""Reproduce the published LapSRN / MS-LapSRN numbers with the official MatConvNet weights, through `srbench run`.

On demand (CPU, slow on the big sets): prints measured vs published mean PSNR and the deviation per cell.

    python benchmarks/lapsrn_reproduction.py [--datasets b100,urban100] [--scales 2,3,4] \
        [--models mslapsrn-d5r8,lapsrn] [--protocols lapsrn-matlab,matlab] \
        [--weights ../shared/weights/lapsrn-official] [--data-root ../shared/datasets] [--every 1]

Two protocols:

- ``lapsrn-matlab``: the authors' own evaluation (``evaluate_LapSRN_dataset.m`` / ``evaluate_MSLapSRN_dataset.m`` +
  ``utils/evaluate_SR.m`` in phoenix104104/LapSRN), which produced the TPAMI table (``sr_bench/protocols/lapsrn.py``).
  It differs from ``matlab``
  (RCAN/DBDN ``Evaluate_PSNR_SSIM.m``) in two places: the LR is ``imresize`` of the *double* HR and is never rounded to
  uint8, and the Y channel of ``im2double(im2uint8(SR))`` is ``rgb2ycbcr`` in double, not rounded. Both cost PSNR under
  ``matlab``: 0.03-0.13 dB (about 0.1 dB at x2, where the errors are smallest).
- ``matlab``: the suite's standard protocol, for comparison.

Grey images (Set14 ``bridge``): the authors' code feeds the grey plane itself to the network; the runner hands every
model RGB (grey replicated), so here the network sees Y = 16/255 + 219/255 * grey. On ``bridge`` that is 0.03-0.06 dB
higher; on the Set14 mean 0.002-0.004 dB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.models.cards import card_for
from sr_bench.protocols.lapsrn import LapSRNMatlabProtocol

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRBENCH_SHARED", REPO.parent / "shared"))


def ensure_protocol() -> str:
    return LapSRNMatlabProtocol.name


# ---------------------------------------------------------------------------------------------- published values


MODELS = {  # name -> (card, variant, weight files)
    "mslapsrn-d5r8": ("mslapsrn", "D5R8", ["MSLapSRN_D5R8.mat"]),
    "mslapsrn-d5r5": ("mslapsrn", "D5R5", ["MSLapSRN_D5R5.mat"]),
    "mslapsrn-d5r2": ("mslapsrn", "D5R2", ["MSLapSRN_D5R2.mat"]),
    "lapsrn": ("lapsrn", None, ["LapSRN_x2.mat", "LapSRN_x4.mat", "LapSRN_x8.mat"]),
}


def published(card: str, variant: str | None, source_contains: str = "TPAMI") -> dict[tuple[str, int], float]:
    """(dataset, scale) -> published PSNR from the card's [[published]] block for ``variant``."""
    out = {}
    for block in card_for(card)["published"]:
        if block.get("variant") == variant and source_contains in block["source"]:
            for row in block["rows"]:
                out[(row[0], int(Fraction(row[1])))] = float(row[2])
    return out


def spec(name: str, weights: Path) -> str:
    card, _, files = MODELS[name]
    return f"{card}=" + os.pathsep.join(str(weights / f) for f in files)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="b100,urban100")
    ap.add_argument("--scales", default="2,3,4")
    ap.add_argument("--models", default="mslapsrn-d5r8,lapsrn")
    ap.add_argument("--protocols", default="lapsrn-matlab")
    ap.add_argument("--weights", default=str(SHARED / "weights" / "lapsrn-official"))
    ap.add_argument("--data-root", default=str(SHARED / "datasets"))
    ap.add_argument("--every", type=int, default=1, help="use every k-th image (quick look; not comparable)")
    args = ap.parse_args(argv)

    from sr_bench.data import resolve_dataset
    from sr_bench.report.tables import summarize
    from sr_bench.run.runner import run

    ensure_protocol()
    weights = Path(args.weights)
    if not weights.is_dir():
        sys.exit(f"weights folder {weights} not found (--weights)")
    scales = [Fraction(int(s)) for s in args.scales.split(",")]
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if args.every > 1:  # a folder of every k-th image, as symlinks
        tmp = Path(tempfile.mkdtemp(prefix="lapsrn-subset-"))
        subset = []
        for d in datasets:
            ds = resolve_dataset(d, data_root=args.data_root)
            folder = tmp / ds.name
            folder.mkdir()
            for item in ds.items[:: args.every]:
                (folder / Path(item.path).name).symlink_to(Path(item.path).resolve())
            subset.append(str(folder))
        datasets = subset
    print(f"torch threads: {torch.get_num_threads()}"
          + (f"; every {args.every}th image only" if args.every > 1 else ""))
    lines = ["| protocol | model | dataset | scale | images | measured | TPAMI | deviation | CSFM re-eval. "
             "| deviation | run seconds |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for protocol in [p.strip() for p in args.protocols.split(",") if p.strip()]:
        for name in names:
            card, variant, _ = MODELS[name]
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                result = run(models=[spec(name, weights)], datasets=datasets, scales=scales, protocol=protocol,
                             metrics=["psnr"], out=Path(out) / "run", data_root=args.data_root, progress=True)
            seconds = time.perf_counter() - start
            for _, row in result.rows[result.rows["error"] != ""].iterrows():
                print(f"error: {row['dataset']}/{row['image']} x{row['scale_text']}: {row['error']}")
            refs = [published(card, variant, "TPAMI"), published(card, variant, "CSFM") if card == "lapsrn" else {}]
            new = []
            for r in summarize(result.rows).itertuples():
                k = int(Fraction(r.scale_text))
                cells = []
                for ref in refs:
                    pub = ref.get((r.dataset, k))
                    cells += [f"{pub:.2f}", f"{r.psnr - pub:+.3f}"] if pub is not None else ["-", "-"]
                new.append(f"| {protocol} | {name} | {r.dataset} | x{k} | {r.n_images} | {r.psnr:.3f} | "
                           + " | ".join(cells) + f" | {seconds:.0f} |")
            print("\n".join(new), flush=True)
            lines += new
    print("\n" + "\n".join(lines))

if __name__ == "__main__":
    main()
