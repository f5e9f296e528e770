"""`srbench table --paper`: published values from the model cards next to measured means, matched by protocol,
variant and self-ensemble; measured values still come from the per-image rows only."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sr_bench.cli import cli
from sr_bench.models.cards import card_for
from sr_bench.report.paper import published_for
from sr_bench.run.runner import run
from sr_bench.store import read_manifest

SHARED = Path(os.environ.get("SRBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = Path(os.environ.get("SRBENCH_DATA", SHARED / "datasets"))


def test_matching_by_variant_protocol_and_ensemble():
    d5r8 = published_for("mslapsrn", {"variant": "D5R8"}, "lapsrn-matlab")
    assert "D5R8" in d5r8.source and d5r8.values[("set5", "2")] == {"psnr": 37.78}  # SSIM dropped: compare = psnr
    assert "D5R2" in published_for("mslapsrn", {"variant": "D5R2"}, "lapsrn-matlab").source
    assert published_for("mslapsrn", {"variant": "D5R8"}, "matlab") is None  # another protocol: no comparison
    assert "TPAMI" in published_for("lapsrn", {}, "lapsrn-matlab").source  # the paper's table before re-evaluations
    plus = published_for("dbdn+", {"variant": "dbdn-espcnn"}, "matlab")
    assert "DBDN+ column" in plus.source
    assert "DBDN column" in published_for("dbdn", {"variant": "dbdn"}, "matlab").source
    assert published_for("dbdn+", {"variant": "dbdn"}, "matlab") is None  # DBDN+ was the espcnn network
    assert published_for("my-plugin-net", {}, "matlab") is None
    decimal = published_for("bicubic", {}, "metasr")
    assert decimal.values[("b100", "1.5")]["psnr"] == pytest.approx(
        next(r[2] for b in card_for("bicubic")["published"] if b["protocol"] == "metasr" for r in b["rows"] if r[1] == "1.5"))


@pytest.mark.calibration
def test_table_paper_columns_on_a_real_run(tmp_path):
    if not (DATA / "Set5").is_dir():
        pytest.skip(f"needs {DATA / 'Set5'}; CI has ../shared beside the repo")
    result = run(models=["bicubic"], datasets=["set5"], scales=[Fraction(2), Fraction(4)], protocol="matlab",
                 metrics=["psnr", "ssim"], out=tmp_path / "r", data_root=str(DATA), progress=False)
    assert read_manifest(result.run_dir)["models"][0]["config"] == {}
    runner = CliRunner()
    md = runner.invoke(cli, ["table", str(result.run_dir), "--paper"])
    assert md.exit_code == 0, md.output
    csv = runner.invoke(cli, ["table", str(result.run_dir), "--paper", "--format", "csv"])
    table = pd.read_csv(io.StringIO(csv.stdout))
    card = {(r[0], r[1]): r for b in card_for("bicubic")["published"] if b["protocol"] == "matlab" for r in b["rows"]}
    means = result.rows.groupby("scale_text")[["psnr", "ssim"]].mean()
    for _, r in table.iterrows():
        published = card[("Set5", str(r["scale"]))]
        assert r["paper_psnr"] == published[2] and r["paper_ssim"] == published[3]
        assert r["psnr"] == pytest.approx(means.loc[str(r["scale"]), "psnr"], abs=1e-6)
        delta = f"{r['psnr'] - r['paper_psnr']:+.3f}"
        assert f"| {published[2]:g} | {delta} |" in md.stdout
    assert "standard row" in table["paper_source"].iloc[0] and "[1] standard row" in md.stdout
