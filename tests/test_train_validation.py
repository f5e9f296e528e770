"""``srbench train --val``: the validation curve is what ``srbench run`` measures for the same weights (PATH.best
and PATH re-scored through the runner from the files), bicubic is scored beside it, the best checkpoint is the
curve's maximum, and ``srbench plot PATH.json`` draws the curves. Small real runs on image files."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.report.train_plot import plot_training
from sr_bench.run.runner import run
from sr_bench.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: training steps on one thread


def _folder(base: Path, name: str, crops) -> Path:
    d = base / name
    d.mkdir()
    for img, y, x, side in crops:
        arr = getattr(skimage.data, img)()[y:y + side, x:x + side]
        Image.fromarray(np.ascontiguousarray(arr)).save(d / f"{img}.png")
    return d


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("val")
    return (_folder(base, "hr", [("astronaut", 40, 180, 48), ("coffee", 150, 250, 48)]),
            _folder(base, "valset", [("chelsea", 100, 150, 42), ("rocket", 200, 200, 36)]))


def _means(rows, scales) -> dict:
    assert (rows["error"] == "").all()
    return {(s, m): float(rows[rows["scale_text"] == s][m].mean()) for m in ("psnr", "ssim") for s in scales}


def _flat(means: dict) -> dict:
    """{scale: {metric: value}} (PATH.json) as {(scale, metric): value}."""
    return {(s, m): v for s, d in means.items() for m, v in d.items()}


def test_validation_is_the_runner_on_the_saved_weights(folders, tmp_path):
    hr, valset = folders
    out = tmp_path / "w.pt"
    result = train("edsr-baseline", [str(hr)], out, scales="2", steps=6, batch=2, patch=12, lr=5e-4, log_every=1,
                   save_every=0, device="cpu", progress=False, val=str(valset), val_every=2)
    record = json.loads(result.sidecar.read_text())
    val = record["validation"]
    assert val["dataset"] == "valset" and val["scales"] == ["2"] and val["protocol"] == "matlab"
    assert [step for step, _ in val["curve"]] == [2, 4, 6]
    # PATH (step 6) and PATH.best, scored by `srbench run` from the files: the same numbers as the curve
    last = _means(run(models=[f"edsr-baseline={out}"], datasets=[str(valset)], scales=[Fraction(2)],
                      metrics=["psnr", "ssim"], out=tmp_path / "r1", device="cpu", progress=False).rows, ["2"])
    assert last == pytest.approx(_flat(val["curve"][-1][1]), rel=1e-12)
    best = val["best"]
    values = [means["2"]["psnr"] for _, means in val["curve"]]
    assert best["value"] == max(values) and best["step"] == val["curve"][int(np.argmax(values))][0]
    assert best["file"] == "w.pt.best" and best == result.best
    rows = run(models=[f"edsr-baseline={out.with_name('w.pt.best')}"], datasets=[str(valset)], scales=[Fraction(2)],
               metrics=["psnr", "ssim"], out=tmp_path / "r2", device="cpu", progress=False).rows
    assert (rows["checkpoint_sha256"] == best["sha256"]).all()
    assert _means(rows, ["2"])["2", "psnr"] == pytest.approx(best["value"], rel=1e-12)
    floor = _means(run(models=["bicubic"], datasets=[str(valset)], scales=[Fraction(2)], metrics=["psnr", "ssim"],
                       out=tmp_path / "r3", device="cpu", progress=False).rows, ["2"])
    assert _flat(val["bicubic"]) == pytest.approx(floor, rel=1e-12)

    fig = plot_training(result.sidecar, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    loss_line = fig.axes[0].get_lines()[0]
    assert list(loss_line.get_xdata()) == [s for s, _ in result.losses]
    curve, floor_line = fig.axes[1].get_lines()[:2]
    assert list(curve.get_ydata()) == values and floor_line.get_ydata()[0] == val["bicubic"]["2"]["psnr"]


def test_decimal_validation_scales_use_the_metasr_protocol_and_the_cli(folders, tmp_path):
    hr, valset = folders
    out = tmp_path / "s.pt"
    r = CliRunner().invoke(cli, ["train", "srcnn", "--scales", "1.5:3", "--data", str(hr), "--out", str(out),
                                 "--steps", "2", "--batch", "2", "--patch", "10", "--device", "cpu", "--no-progress",
                                 "--val", str(valset), "--val-scales", "2,3.5", "--val-metric", "ssim"])
    assert r.exit_code == 0, r.output
    assert "best: s.pt.best (step 2, ssim " in r.output
    val = json.loads((tmp_path / "s.pt.json").read_text())["validation"]
    assert val["protocol"] == "metasr" and val["scales"] == ["2", "3.5"] and val["metric"] == "ssim"
    rows = run(models=[f"srcnn={out}"], datasets=[str(valset)], scales=[Fraction(2), Fraction(7, 2)],
               metrics=["psnr", "ssim"], protocol="metasr", out=tmp_path / "r", device="cpu", progress=False).rows
    assert _means(rows, ["2", "3.5"]) == pytest.approx(_flat(val["curve"][-1][1]), rel=1e-12)
    p = CliRunner().invoke(cli, ["plot", str(tmp_path / "s.pt.json")])
    assert p.exit_code == 0 and (tmp_path / "s.pt.png").is_file(), p.output


@pytest.mark.parametrize("args,needle", [
    (["--val-every", "2"], "--val-every needs --val DATASET"),
    (["--val", "{valset}", "--val-scales", "3"], "cannot run x3"),
    (["--val", "no-such-set"], "unknown dataset 'no-such-set'"),
])
def test_validation_errors_are_one_line(args, needle, folders, tmp_path):
    hr, valset = folders
    args = [a.replace("{valset}", str(valset)) for a in args]
    r = CliRunner().invoke(cli, ["train", "edsr-baseline", "--scale", "2", "--data", str(hr), "--steps", "1",
                                 "--batch", "1", "--patch", "8", "--device", "cpu", "--no-progress", "--out",
                                 str(tmp_path / "w.pt"), *args])
    assert r.exit_code == 2 and r.output.startswith("error: ") and needle in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
