"""`srbench doctor` tells a bug report what this installation runs with; each line is checked against the thing it
describes, read independently here."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

import torch
from click.testing import CliRunner

from sr_bench.cli import cli


def _lines(output: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\S.*?)\s{2,}(.*)$", output, re.M)}


def test_doctor_reports_versions_data_and_bridges(tmp_path, monkeypatch):
    (tmp_path / "Set5").mkdir()
    (tmp_path / "MyImages").mkdir()
    monkeypatch.setenv("SRBENCH_DATA", str(tmp_path))
    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path.parent / f"{tmp_path.name}-cache"))
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    got = _lines(result.output)
    assert got["torch"] == torch.__version__
    assert got["data root"] == f"{tmp_path} (from SRBENCH_DATA)"
    assert got["dataset folders"] == "MyImages, Set5"
    assert got["cache root"].startswith(str(tmp_path.parent / f"{tmp_path.name}-cache"))
    assert got["devices"].startswith("cpu (")
    for package, extra in (("spandrel", "spandrel"), ("pyiqa", "iqa")):
        try:
            assert got[package] == version(package)
        except PackageNotFoundError:
            assert got[package] == f"not installed (pip install 'sr_bench[{extra}]')"
    assert got["native ssim_map"] == "active" or got["native ssim_map"].startswith("off: ")
    assert "lpips weights" in got
