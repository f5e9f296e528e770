"""`srbench report`: one Markdown page per run, every number traceable to the rows and run.json."""

from __future__ import annotations

import hashlib
import io
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.models import create_model
from sr_bench.report.tables import summarize
from sr_bench.run.runner import run


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    folder = base / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (30 + i, 34, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(folder / "tiny.png")  # too small to measure
    torch.manual_seed(0)
    ckpt = base / "srcnn.pt"
    torch.save(create_model("srcnn", allow_untrained=True).net.state_dict(), ckpt)
    result = run(models=["bicubic", f"srcnn={ckpt}", "edsr-baseline"], datasets=[str(folder)],
                 scales=[Fraction(2), Fraction(4)], protocol="matlab", metrics=["psnr", "ssim"], out=base / "run",
                 allow_untrained=True, progress=False)
    return result, hashlib.sha256(ckpt.read_bytes()).hexdigest()


def test_report_holds_the_table_errors_and_provenance(finished, tmp_path):
    result, sha = finished
    out = tmp_path / "rep"
    res = CliRunner().invoke(cli, ["report", str(result.run_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = (out / "report.md").read_text()
    rows = result.rows
    # every mean in the page is the mean of the rows, as summary.csv says
    csv = pd.read_csv(out / "summary.csv")
    means = summarize(rows)
    assert np.allclose(csv["psnr"].to_numpy(), means["psnr"].to_numpy(), equal_nan=True)
    for r in means.itertuples():
        # the tiny image fails everywhere: every mean covers 3 of the 4 images, marked *, the failure counted
        assert f"| {r.dataset} | x{r.scale_text} | {r.n_images} of 4 | 1 | {r.psnr:.2f}* |" in text
    errors = rows[rows["error"] != ""]
    # a 5x5 image is too small at both scales (modcrop, then the shave must leave a pixel), for each model
    assert len(errors) == 6 and set(errors["image"]) == {"tiny"}
    assert text.count("| tiny | x4 |") == 3 and text.count("| tiny | x2 |") == 3
    assert result.protocol.fingerprint in text and sha in text
    assert "Untrained rows present" in text and "**untrained (random weights)**" in text
    for metric in ("psnr", "ssim"):
        assert (out / f"{metric}_vs_scale.png").read_bytes()[:4] == b"\x89PNG" and f"({metric}_vs_scale.png)" in text


def test_report_without_plots_and_default_folder(finished):
    result, _ = finished
    res = CliRunner().invoke(cli, ["report", str(result.run_dir), "--no-plots"])
    assert res.exit_code == 0
    folder = result.run_dir / "report"
    assert (folder / "report.md").is_file() and not list(folder.glob("*.png"))
    assert pd.read_csv(io.StringIO((folder / "summary.csv").read_text()))["n_images"].max() == 3
