"""Peak FLOP/s and MFU (``sr_bench.run.peaks``): the table against the vendors' published figures, MFU against
hand computations, and the FLOP/s that ``srbench profile`` and ``srbench run --profile`` print on a CPU."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import srcnn_flops
from sr_bench.cli import cli
from sr_bench.run.peaks import flops_per_second, mfu, peak_flops, rows_utilisation, split_device_label
from sr_bench.store.schema import metric_columns

T = 1e12


# (driver's device name, precision, the datasheet's figure in TFLOP/s, whether that figure is "with sparsity")
@pytest.mark.parametrize("name,precision,tflops,sparse", [
    ("NVIDIA H100 80GB HBM3", "bf16", 1979, True),    # H100 SXM datasheet: BF16 1,979 TFLOPS*
    ("NVIDIA H100 80GB HBM3", "fp32", 67, False),
    ("NVIDIA H100 PCIe", "bf16", 1513, True),         # H100 PCIe: 1,513 TFLOPS*
    ("NVIDIA H100 PCIe", "tf32", 756, True),
    ("NVIDIA H100 PCIe", "fp32", 51, False),
    ("NVIDIA H200", "bf16", 1979, True),              # H200 SXM: same compute as H100 SXM
    ("NVIDIA GH200 480GB", "fp16", 1979, True),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312, False),     # A100 datasheet: 312 dense, 624 with sparsity
    ("NVIDIA A100 80GB PCIe", "tf32", 156, False),
    ("NVIDIA L4", "bf16", 242, True),                  # L4: 242 TFLOPS*
    ("NVIDIA L40S", "bf16", 362.05, False),            # L40S: "362.05 | 733*" (the datasheet prints both)
    ("NVIDIA L40", "bf16", 362.1, True),
    ("NVIDIA GeForce RTX 4090", "fp16", 330.4, True),  # Ada whitepaper, FP32 accumulate: 165.2 / 330.4*
])
def test_peaks_are_the_datasheets_dense_figures(name, precision, tflops, sparse):
    peak = peak_flops(f"cuda:{name}", precision)
    dense = tflops / 2 if sparse else tflops
    assert peak is not None and peak.precision == precision
    assert math.isclose(peak.flops_per_second, dense * T, rel_tol=2e-3), (peak, dense)


def test_variants_are_told_apart():
    chips = {n: peak_flops(n, "bf16").chip for n in ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL",
                                                      "NVIDIA H200", "NVIDIA H200 NVL", "NVIDIA GH200 480GB",
                                                      "NVIDIA L4", "NVIDIA L40", "NVIDIA L40S", "NVIDIA A10",
                                                      "NVIDIA A100-PCIE-40GB")}
    assert len(set(chips.values())) == len(chips), chips


@pytest.mark.parametrize("device,precision", [
    ("cpu:x86_64:2threads", "fp32"), ("cpu:x86_64:2threads", "bf16"),
    ("cuda:NVIDIA H100 80GB HBM3 MIG 1g.10gb", "bf16"),  # a seventh of the chip: the full peak would mislead
    ("cuda:NVIDIA A10G", "bf16"), ("cuda:Some Future GPU", "fp32"),
    ("cuda:Tesla V100-SXM2-32GB", "bf16"),               # no bf16 tensor cores
])
def test_no_peak_where_none_is_known(device, precision):
    assert peak_flops(device, precision) is None
    assert mfu(1e12, 1.0, device, precision) is None
    assert flops_per_second(1e12, 0.5) == 2e12


def test_mfu_by_hand():
    # a quarter of the H100 SXM's 989.5 TFLOP/s for 2 s: 494.75 TFLOPs
    assert math.isclose(mfu(494.75e12, 2.0, "cuda:NVIDIA H100 80GB HBM3", "bf16"), 0.25, rel_tol=1e-12)
    # A100 fp32 (19.5 TFLOP/s on the CUDA cores): 3.9 TFLOPs in 0.5 s is 7.8 TFLOP/s, 40%
    assert math.isclose(mfu(3.9e12, 0.5, "cuda:NVIDIA A100-SXM4-40GB", "fp32"), 0.4, rel_tol=1e-12)
    # the RCAN figure: ~6 TFLOPs in 71 ms in bf16 on an H200 is about 8.5% of 989.5 TFLOP/s
    assert math.isclose(mfu(6e12, 0.071, "cuda:NVIDIA H200", "bf16"), 6e12 / 0.071 / 989.5e12, rel_tol=1e-12)
    assert flops_per_second(0, 1.0) is None and flops_per_second(1e9, 0.0) is None


def test_device_labels_of_rows():
    assert split_device_label("cuda:NVIDIA H200 [bf16]") == ("cuda:NVIDIA H200", "bf16")
    assert split_device_label("cuda:NVIDIA H200") == ("cuda:NVIDIA H200", "fp32")
    assert split_device_label("cpu:x86_64:8threads [bf16]") == ("cpu:x86_64:8threads", "bf16")


def test_rows_utilisation_sums_flops_over_seconds():
    rows = pd.DataFrame({
        "model": ["a", "a", "a", "b"],
        "device": ["cuda:NVIDIA L4 [bf16]"] * 3 + ["cpu:x86_64:2threads"],
        "flops": [12.1e12, 36.3e12, 5e12, 4e9], "seconds": [1.0, 2.0, 9.0, 0.5], "error": ["", "", "boom", ""]})
    a, b = rows_utilisation(rows)
    # model a: (12.1 + 36.3) TFLOPs in 3 s (the failed row left out) = 16.133 TFLOP/s of the L4's 121: 13.3%
    assert a["evaluations"] == 2 and math.isclose(a["flops_per_second"], 48.4e12 / 3)
    assert math.isclose(a["mfu"], 48.4 / 3 / 121, rel_tol=1e-12)
    assert b["mfu"] is None and b["flops_per_second"] == 8e9


def test_cli_profile_reports_flops_per_second_on_cpu(tmp_path):
    out = tmp_path / "p.csv"
    r = CliRunner().invoke(cli, ["profile", "--models", "srcnn", "--scales", "2", "--size", "32x40",
                                 "--allow-untrained", "--device", "cpu", "--repeat", "1", "--format", "csv",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    row = pd.read_csv(out).iloc[0]
    assert row["flops"] == srcnn_flops(64, 80)
    assert math.isclose(row["flops_per_second"], srcnn_flops(64, 80) / row["seconds"], rel_tol=1e-4)
    assert pd.isna(row["mfu"])  # a CPU has no listed peak
    md = CliRunner().invoke(cli, ["profile", "--models", "srcnn", "--scales", "2", "--size", "32x40",
                                  "--allow-untrained", "--device", "cpu", "--repeat", "1"])
    assert md.exit_code == 0, md.output
    head, _, line = md.stdout.splitlines()[:3]
    cells = dict(zip([c.strip() for c in head.split("|")], [c.strip() for c in line.split("|")], strict=True))
    assert cells["FLOP/s"].endswith("FLOP/s") and cells["MFU"] == "–"
    assert "no fp32 peak FLOP/s listed for cpu:" in md.stderr


def test_run_profile_prints_achieved_flops_per_second(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / "a.png")
    r = CliRunner().invoke(cli, ["run", "--models", "srcnn", "--allow-untrained", "--datasets", str(folder),
                                 "--scales", "2", "--metrics", "psnr", "--device", "cpu", "--profile", "--out",
                                 str(tmp_path / "r"), "--no-progress"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stderr.splitlines() if x.startswith("profile: srcnn"))
    assert "GFLOPs per evaluation" in line and "FLOP/s over 1 forward(s)" in line and "no fp32 peak listed" in line


def test_table_cost_shows_flops_per_second_and_mfu(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sr_bench.store import load_rows

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    run_dir = tmp_path / "r"
    r = CliRunner().invoke(cli, ["run", "--models", "srcnn", "--allow-untrained", "--datasets", str(folder),
                                 "--scales", "2", "--metrics", "psnr", "--device", "cpu", "--profile", "--out",
                                 str(run_dir), "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = load_rows(run_dir)
    rate = rows["flops"].sum() / rows["seconds"].sum()
    md = CliRunner().invoke(cli, ["table", str(run_dir), "--cost"])
    assert md.exit_code == 0, md.output
    head, _, line = md.stdout.splitlines()[:3]
    cells = dict(zip([c.strip() for c in head.split("|")], [c.strip() for c in line.split("|")], strict=True))
    assert cells["FLOP/s"].endswith("FLOP/s") and cells["MFU"] == "–"  # CPU: no peak
    assert math.isclose(float(cells["FLOP/s"].split()[0]), rate / 1e9, abs_tol=0.05)  # GFLOP/s on this CPU
    # the same rows as if measured in bf16 on an H100 SXM at a quarter of its 989.5 TFLOP/s
    for shard in (run_dir / "rows").glob("*.parquet"):
        t = pq.read_table(shard)
        t = t.set_column(t.schema.get_field_index("device"), "device",
                         pa.array(["cuda:NVIDIA H100 80GB HBM3 [bf16]"] * len(t)))
        seconds = pa.array([f / 247.375e12 for f in t.column("flops").to_pylist()])
        pq.write_table(t.set_column(t.schema.get_field_index("seconds"), "seconds", seconds), shard)
    csv = CliRunner().invoke(cli, ["table", str(run_dir), "--cost", "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    table = pd.read_csv(io.StringIO(csv.stdout))
    assert "psnr" in table and "mfu" not in metric_columns(table.drop(columns=["scale"]))
    assert math.isclose(table.loc[0, "flops_per_second"], 247.375e12, rel_tol=1e-9)
    assert table.loc[0, "mfu"] == 0.25
