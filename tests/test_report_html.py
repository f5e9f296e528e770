"""`srbench report --format html` (one self-contained page, checked in headless Chromium) and `srbench run
--save-images` (the quantised SR PNGs that `compare --visual` reads instead of re-running the models)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.models import create_model
from sr_bench.report.tables import summarize
from sr_bench.run.runner import run

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("html")
    folder = base / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (36 + 2 * i, 40, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(folder / "tiny.png")  # an error row
    torch.manual_seed(0)
    ckpt = base / "srcnn.pt"
    torch.save(create_model("srcnn", allow_untrained=True).net.state_dict(), ckpt)
    result = run(models=["bicubic", f"srcnn={ckpt}", "edsr-baseline"], datasets=[str(folder)],
                 scales=[Fraction(2), Fraction(3), Fraction(4)], protocol="matlab", metrics=["psnr", "ssim"],
                 out=base / "run", allow_untrained=True, progress=False, save_images=True)
    return result, ckpt


def test_html_report_is_one_self_contained_file(finished, tmp_path):
    result, _ = finished
    res = CliRunner().invoke(cli, ["report", str(result.run_dir), "--format", "html", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "report.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    # nothing loaded from elsewhere: no external src/href, no script, no stylesheet link
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") == 2  # PSNR and SSIM scale curves, inline
    assert 'class="srbench-table"' in page and "SRCNN (9-5-5)" in page  # the card's name and variant
    for r in summarize(result.rows).itertuples():  # every mean of the rows is on the page
        assert f"{r.psnr:.2f}" in page and f"{r.ssim:.4f}" in page
    assert "srcnn − bicubic" in page and "tiny" in page and result.protocol.fingerprint in page


def test_html_report_out_names_the_file_or_the_folder(finished, tmp_path):
    """--out X.html writes X.html (the page, nothing else); --out FOLDER writes FOLDER/report.html. The captions say
    "open markers" only where published values are drawn (none here: no card has this folder's images), and every
    mean here covers 3 of the 4 images (tiny.png fails): the table marks them * and ranks none of them."""
    result, _ = finished
    res = CliRunner().invoke(cli, ["report", str(result.run_dir), "--format", "html",
                                   "--out", str(tmp_path / "rep.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep.html").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["rep.html"]
    page = (tmp_path / "rep.html").read_text()
    assert "open markers" not in page and "PSNR against scale" in page and "SSIM against scale" in page
    assert "3 of 4 images; 3 failed" not in page and "3 of 4 images; 1 failed (e.g. tiny" in page
    table = page.split('class="srbench-table"')[1].split("</table>")[0]
    assert "*" in table and 'class="best"' not in table and 'class="second"' not in table
    assert "Bicubic" in page.split("<svg")[1]  # the plots name models as the tables do
    folder = tmp_path / "in"
    folder.mkdir()
    CliRunner().invoke(cli, ["report", str(result.run_dir), "--format", "html", "--out", str(folder)])
    assert (folder / "report.html").is_file()


def test_html_report_renders_in_headless_chromium(finished, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not found; install Debian's chromium (CI does)")
    result, _ = finished
    CliRunner().invoke(cli, ["report", str(result.run_dir), "--format", "html", "--out", str(tmp_path)])
    shot = tmp_path / "shot.png"
    res = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--window-size=1280,1600", f"--screenshot={shot}", (tmp_path / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.is_file(), res.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    ink = (pixels.min(axis=2) < 128).mean()  # dark text and lines
    assert ink > 0.005, f"screenshot looks blank ({ink:.4%} dark pixels)"
    # the marks are LaTeX's (bold, underline): no cell is painted in a colour that says more than they do
    page = (tmp_path / "report.html").read_text()
    style = page.split("<style>")[1].split("</style>")[0]
    assert not [line for line in style.splitlines() if "srbench-table" in line and "background" in line]


def test_save_images_are_the_measured_images(finished, tmp_path):
    """Every measured row has its PNG; compare --visual reads them (no model, the checkpoint may be gone) and
    re-measures each within 1e-9 of the stored row, which holds only if the PNG is the image the metrics saw."""
    result, ckpt = finished
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert manifest["images"]["exact"] is True and manifest["request"]["save_images"] is True
    ok = result.rows[result.rows["error"] == ""]
    for r in ok.itertuples():
        png = result.run_dir / "images" / r.model / r.dataset / f"x{r.scale_text}" / f"{r.image}.png"
        assert Image.open(png).size == (r.hr_width, r.hr_height)
    assert not list((result.run_dir / "images").rglob("tiny.png"))  # error rows have no image
    hidden = ckpt.with_suffix(".gone")
    ckpt.rename(hidden)
    try:
        res = CliRunner().invoke(cli, ["compare", str(result.run_dir), "--models", "bicubic,srcnn", "--visual",
                                       f"{ok.dataset.iloc[0]}/im1", "--scale", "3", "--out", str(tmp_path / "v.png"),
                                       "--no-progress"])
    finally:
        hidden.rename(ckpt)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_unquantised_protocol_images_are_not_used_for_visual(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "a.png")
    result = run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(5, 2)], protocol="liif",
                 metrics=["psnr"], out=tmp_path / "run", progress=False, save_images=True)
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert manifest["images"]["exact"] is False  # LIIF measures the float SR: an 8-bit PNG is not it
    from sr_bench.run.replay import saved_images

    assert saved_images(result.run_dir, manifest, ["bicubic"], folder.name, "2.5", "a") is None
    assert Path(result.run_dir / "images" / "bicubic" / folder.name / "x2.5" / "a.png").is_file()
