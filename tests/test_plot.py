"""`srbench plot`: scale curves drawn from per-image rows (checked against an independent groupby of the rows),
published markers from the cards, and one-line errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.models.cards import card_for
from sr_bench.report.plot import plot_scale_curves
from sr_bench.run.runner import run

SCALES = [Fraction(3, 2), Fraction(2), Fraction(3), Fraction(4)]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    base = tmp_path_factory.mktemp("plot")
    folder = base / "Set5"  # a folder named like a standard set, so the card's published Set5 row matches
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = (np.add.outer(np.arange(64), np.arange(72)) * (i + 1) % 256).astype(np.uint8)
        img = np.stack([img, np.roll(img, 5, 0), rng.integers(0, 256, img.shape, dtype=np.uint8)], -1)
        Image.fromarray(img).save(folder / f"im{i}.png")
    return run(models=["bicubic"], datasets=[str(folder)], scales=SCALES, protocol="metasr", metrics=["psnr", "ssim"],
               out=base / "run", progress=False)


def test_curves_are_the_means_of_the_rows(result, tmp_path):
    fig = plot_scale_curves(result.rows, "ssim", tmp_path / "f.svg")
    (line,) = [ln for ln in fig.axes[0].get_lines()]
    expected = result.rows.groupby("scale")["ssim"].mean()
    assert np.allclose(line.get_xdata(), [float(s) for s in SCALES])
    assert np.allclose(line.get_ydata(), expected.to_numpy(), rtol=0, atol=1e-12)
    assert "higher is better" in fig.axes[0].get_ylabel()
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")


def test_cli_plot_with_paper_markers(result, tmp_path):
    out = tmp_path / "p.png"
    res = CliRunner().invoke(cli, ["plot", str(result.run_dir), "--paper", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.stdout.strip() == str(out) and "protocol metasr" in res.stderr


def test_paper_markers_are_the_card_values(tmp_path):
    folder = tmp_path / "Set5"
    folder.mkdir()
    Image.fromarray((np.arange(60 * 60 * 3) % 251).astype(np.uint8).reshape(60, 60, 3)).save(folder / "a.png")
    r = run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(2), Fraction(4)], protocol="matlab",
            metrics=["psnr"], out=tmp_path / "run", progress=False)
    from sr_bench.report.paper import with_paper
    from sr_bench.report.plot import paper_points
    from sr_bench.report.tables import summarize

    summary, _ = with_paper(summarize(r.rows), {}, "matlab", ("psnr",))
    fig = plot_scale_curves(r.rows, "psnr", tmp_path / "p.pdf", paper=paper_points(summary, "psnr"))
    measured, published = fig.axes[0].get_lines()
    card = {r_[1]: r_[2] for b in card_for("bicubic")["published"] if b["protocol"] == "matlab" for r_ in b["rows"]
            if r_[0] == "Set5"}
    assert list(published.get_ydata()) == [card["2"], card["4"]]
    assert published.get_label() == "Bicubic (paper)" and measured.get_label() == "Bicubic"  # the tables' name


def test_errors_are_one_line(result, tmp_path):
    with pytest.raises(UserError, match="metric 'lpips' was not measured.*psnr, ssim"):
        plot_scale_curves(result.rows, "lpips", tmp_path / "x.png")
    with pytest.raises(UserError, match=r"must end in \.png, \.pdf, \.svg"):
        plot_scale_curves(result.rows, "psnr", tmp_path / "x.jpg")
    res = CliRunner().invoke(cli, ["plot", str(result.run_dir), "--metric", "lpips"])
    assert res.exit_code == 2 and res.output.count("\n") == 1
