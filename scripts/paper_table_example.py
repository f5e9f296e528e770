"""Make docs/examples/asdn_table.{tex,md,png}: the layout of ASDN's main table (Set5/Set14/B100/Urban100, x2/x4) from
a real run of bicubic, LapSRN and MS-LapSRN-D5R8 (the authors' official weights, protocol lapsrn-matlab), with RCAN,
DBDN, CSFM, Meta-SR and ASDN as rows reported by their papers (model cards), and the papers' own LapSRN/MS-LapSRN
rows beside the measured ones.

    python scripts/paper_table_example.py [--run results/asdn-example] [--data-root ../shared/datasets] \
        [--weights ../shared/weights/lapsrn-official]

Without an existing --run folder it runs `srbench run` first (about an hour on 2 CPU cores: MS-LapSRN on Urban100 is
most of it); with one it only renders. The PNG needs pdflatex (texlive-latex-recommended) and pdftoppm
(poppler-utils).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRBENCH_SHARED", REPO.parent / "shared"))
OUT = REPO / "docs" / "examples"
DATASETS = ["set5", "set14", "b100", "urban100"]
REPORTED = "lapsrn,mslapsrn,rcan,dbdn,csfm,metasr,asdn"
DOCUMENT = r"""\documentclass{article}
\usepackage[paperwidth=21cm,paperheight=20cm,margin=0.5cm]{geometry}
\usepackage{booktabs}
\pagestyle{empty}
\begin{document}
%s
\end{document}
"""


def run_command(run_dir: Path, weights: Path, data_root: Path) -> list[str]:
    lapsrn = os.pathsep.join(str(weights / f) for f in ("LapSRN_x2.mat", "LapSRN_x4.mat"))
    return ["run", "--models", f"bicubic,lapsrn={lapsrn},mslapsrn={weights / 'MSLapSRN_D5R8.mat'}",
            "--datasets", ",".join(DATASETS), "--scales", "2,4", "--protocol", "lapsrn-matlab",
            "--metrics", "psnr,ssim", "--data-root", str(data_root), "--out", str(run_dir)]


def table_command(run_dir: Path, fmt: str, out: Path) -> list[str]:
    return ["table", str(run_dir), "--layout", "paper", "--reported", REPORTED, "--order", "year",
            "--format", fmt, "--out", str(out)]


def srbench(args: list[str]) -> None:
    print("$ srbench " + " ".join(args), file=sys.stderr)
    subprocess.run([sys.executable, "-m", "sr_bench.cli", *args], check=True)


def render_png(tex: Path, png: Path) -> None:
    """Compile the table with pdflatex and rasterise it (pdftoppm), cropped to the ink, as a small PNG."""
    from PIL import Image, ImageOps

    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "table.tex"
        doc.write_text(DOCUMENT % tex.read_text())
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["pdftoppm", "-r", "110", "-png", "-singlefile", "table.pdf", "table"], cwd=tmp, check=True)
        img = Image.open(Path(tmp) / "table.png").convert("L")
        box = ImageOps.invert(img).getbbox()
        img = img.crop((max(box[0] - 12, 0), max(box[1] - 12, 0), box[2] + 12, box[3] + 12))
        img.save(png, optimize=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=REPO / "results" / "asdn-example")
    p.add_argument("--data-root", type=Path, default=SHARED / "datasets")
    p.add_argument("--weights", type=Path, default=SHARED / "weights" / "lapsrn-official")
    args = p.parse_args()
    if not (args.run / "run.json").is_file():
        srbench(run_command(args.run, args.weights, args.data_root))
    OUT.mkdir(parents=True, exist_ok=True)
    srbench(table_command(args.run, "latex", OUT / "asdn_table.tex"))
    srbench(table_command(args.run, "markdown", OUT / "asdn_table.md"))
    if shutil.which("pdflatex") and shutil.which("pdftoppm"):
        render_png(OUT / "asdn_table.tex", OUT / "asdn_table.png")
        print(OUT / "asdn_table.png")
    else:
        print("pdflatex/pdftoppm not found: asdn_table.png not made", file=sys.stderr)


if __name__ == "__main__":
    main()
