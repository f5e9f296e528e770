"""Run folders across versions and metric sets: real Parquet shards written here, read back by ``load_rows``."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sr_bench.report.tables import present_metrics, summarize, to_csv
from sr_bench.store import SCHEMA, load_rows, metric_columns, write_shard

# The columns every shard had before plugin metrics got columns of their own (sr_bench 0.1.0 run folders).
V0_COLUMNS = ["run_id", "model", "dataset", "image", "scale", "scale_text", "protocol", "protocol_fingerprint",
              "strategy", "untrained", "checkpoint_sha256", "psnr", "ssim", "lpips", "seconds", "hr_height",
              "hr_width", "lr_height", "lr_width", "error", "device", "metric_weights", "package_versions", "created"]


def _row(image: str, scale: str, psnr: float, minute: int, **extra) -> dict:
    row = {"run_id": "r", "model": "m", "dataset": "d", "image": image, "scale": float(scale), "scale_text": scale,
           "protocol": "matlab", "protocol_fingerprint": "f" * 16, "strategy": "native", "untrained": False,
           "checkpoint_sha256": "", "psnr": psnr, "ssim": 0.9, "lpips": None, "seconds": 0.1, "hr_height": 8,
           "hr_width": 8, "lr_height": 4, "lr_width": 4, "error": "", "device": "cpu", "metric_weights": "{}",
           "package_versions": "{}", "created": dt.datetime(2024, 1, 1, 0, minute).isoformat()}
    return {**row, **extra}


def _write_v0(run_dir, rows):
    """A shard exactly as the earlier sr_bench wrote it: the 24 fixed columns, nothing else."""
    schema = pa.schema([SCHEMA.field(n) for n in V0_COLUMNS])
    (run_dir / "rows").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), run_dir / "rows" / "d__old__00000000.parquet")


def test_old_shards_load_and_mix_with_plugin_metric_shards(tmp_path):
    _write_v0(tmp_path, [_row("a", "2", 30.0, 0), _row("b", "2", 32.0, 1)])
    old = load_rows(tmp_path)
    assert list(old.columns) == SCHEMA.names and metric_columns(old) == ("psnr", "ssim", "lpips")
    assert present_metrics(old) == ("psnr", "ssim")
    # the same run measured further with a plugin metric (a later shard); image b re-measured: newest row wins
    path = write_shard(tmp_path, [_row("b", "2", 33.0, 2, mae=1.5), _row("c", "2", 34.0, 3, mae=2.5)], "d")
    fields = pq.read_schema(path)
    assert fields.field("mae").type == pa.float64()
    assert fields.names.index("mae") == fields.names.index("lpips") + 1  # metric columns stay together
    rows = load_rows(tmp_path).set_index("image")
    assert metric_columns(rows) == ("psnr", "ssim", "lpips", "mae")
    assert math.isnan(rows.loc["a", "mae"]) and rows.loc["b", "mae"] == 1.5 and rows.loc["b", "psnr"] == 33.0
    summary = summarize(rows.reset_index())
    assert metric_columns(summary) == ("psnr", "ssim", "lpips", "mae")  # the same function finds them in summaries
    assert summary.loc[0, "psnr"] == pytest.approx((30 + 33 + 34) / 3)
    assert to_csv(summary).splitlines()[0] == "model,dataset,scale,n_images,psnr,ssim,lpips,mae"


def test_a_shard_without_a_later_fixed_column_reads_it_empty(tmp_path):
    schema = pa.schema([SCHEMA.field(n) for n in V0_COLUMNS if n != "strategy"])
    (tmp_path / "rows").mkdir()
    row = {k: v for k, v in _row("a", "3", 28.0, 0).items() if k != "strategy"}
    pq.write_table(pa.Table.from_pylist([row], schema=schema), tmp_path / "rows" / "x.parquet")
    rows = load_rows(tmp_path)
    assert list(rows.columns) == SCHEMA.names and pd.isna(rows.loc[0, "strategy"]) and rows.loc[0, "psnr"] == 28.0


def test_metric_columns_are_float_columns_sr_bench_does_not_own():
    rows = pd.DataFrame([_row("a", "2", 30.0, 0, mae=1.0)])
    rows["note"] = "x"  # a string column someone added is not a metric
    rows["paper_mae"] = 1.0  # derived columns are not metrics either
    assert metric_columns(rows) == ("psnr", "ssim", "lpips", "mae")


@pytest.mark.parametrize("name", ["n_images", "source", "paper_x", "Bad-Name", "2x"])
def test_a_metric_column_cannot_take_a_name_sr_bench_uses(tmp_path, name):
    with pytest.raises(ValueError, match=f"metric column '{name}'"):
        write_shard(tmp_path, [_row("a", "2", 30.0, 0, **{name: 1.0})], "d")
    assert not (tmp_path / "rows").exists() or not any((tmp_path / "rows").iterdir())
