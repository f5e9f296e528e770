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

from conftest import need_shared
from sr_bench.cli import cli
from sr_bench.models.cards import card_for
from sr_bench.report.paper import published_for
from sr_bench.run.runner import run
from sr_bench.store import read_manifest

SHARED = Path(os.environ.get("SRBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = Path(os.environ.get("SRBENCH_DATA", SHARED / "datasets"))


def _psnr(table, key):
    return {m: v.value for m, v in table.get(key).items()}


def test_matching_by_variant_protocol_and_ensemble():
    d5r8 = published_for("mslapsrn", {"variant": "D5R8"}, "lapsrn-matlab")
    assert "D5R8" in d5r8.get(("set5", "2"))["psnr"].source and _psnr(d5r8, ("set5", "2")) == {"psnr": 37.78}
    assert "D5R2" in published_for("mslapsrn", {"variant": "D5R2"}, "lapsrn-matlab").get(("set5", "2"))["psnr"].source
    assert published_for("mslapsrn", {"variant": "D5R8"}, "matlab") is None  # another protocol: no comparison
    assert "TPAMI" in published_for("lapsrn", {}, "lapsrn-matlab").get(("set5", "2"))["psnr"].source  # card order
    plus = published_for("dbdn+", {"variant": "dbdn-espcnn"}, "matlab")
    assert "DBDN+ column" in plus.get(("set5", "2"))["psnr"].source
    assert "DBDN column" in published_for("dbdn", {"variant": "dbdn"}, "matlab").get(("set5", "2"))["psnr"].source
    assert published_for("dbdn+", {"variant": "dbdn"}, "matlab") is None  # DBDN+ was the espcnn network
    assert published_for("my-plugin-net", {}, "matlab") is None
    decimal = published_for("bicubic", {}, "metasr")
    assert decimal.get(("b100", "1.5"))["psnr"].value == pytest.approx(
        next(r[2] for b in card_for("bicubic")["published"] if b["protocol"] == "metasr"
             for r in b["rows"] if r[1] == "1.5"))


@pytest.mark.calibration
def test_table_paper_columns_on_a_real_run(tmp_path):
    if not (DATA / "Set5").is_dir():
        need_shared(DATA / "Set5")
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
        assert f"| {published[2]:.2f} | {delta} |" in md.stdout  # as the card prints it (2 decimals)
    source = next(b["source"] for b in card_for("bicubic")["published"] if b["protocol"] == "matlab")
    assert table["paper_source"].iloc[0] == source and "table" in source.lower() and "[1] " in md.stdout


def test_every_published_source_cites_a_paper_table():
    """What a footnote tells a reader: the paper (or README) table the values are copied from, never a file of this
    repository's notes."""
    import tomllib

    for path in sorted((Path(__file__).resolve().parents[1] / "registry").glob("*.toml")):
        for block in tomllib.loads(path.read_text()).get("published", []):
            assert ("papers.md" not in block["source"]
                    and "table" in block["source"].lower()), (path.name, block["source"])
