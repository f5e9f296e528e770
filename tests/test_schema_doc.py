"""docs/results.md tells readers what a row file holds. Checked against what a real run writes, not against the code
that renders the table: every column of a run's Parquet shard is documented with its Arrow type, in file order, and
the doc names no column a run does not write."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([a-z0-9]+) \| (.+) \|$")


def _documented() -> list[tuple[str, str, str]]:
    text = DOC.read_text()
    section = text.split("## Columns", 1)[1]
    rows = [m.groups() for line in section.splitlines() if (m := ROW.match(line.strip()))]
    assert rows, "docs/results.md has no column table under '## Columns'"
    return rows


def _run_rows(tmp_path: Path) -> pq.ParquetFile:
    images = tmp_path / "tiny"
    images.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(images / f"{name}.png")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "sr_bench.cli", "run", "--models", "bicubic", "--datasets",
                           str(images), "--scales", "2", "--metrics", "psnr,ssim", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    shards = sorted((out / "rows").glob("*.parquet"))
    assert shards, f"no row shard in {out}"
    return pq.ParquetFile(shards[0])


def test_every_column_a_run_writes_is_documented_with_its_type(tmp_path):
    written = _run_rows(tmp_path).schema_arrow
    documented = _documented()
    assert [n for n, _, _ in documented] == written.names, "docs/results.md's columns differ from a run's Parquet file"
    for (name, doc_type, meaning), field in zip(documented, written, strict=True):
        assert doc_type == str(field.type), f"{name}: documented as {doc_type}, written as {field.type}"
        assert len(meaning.split()) >= 3, f"{name}: the doc gives no meaning"


def test_readme_points_to_the_results_doc():
    readme = (REPO / "README.md").read_text()
    assert "(docs/results.md)" in readme and DOC.is_file()
