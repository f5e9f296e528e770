"""benchmarks/headline_grid.py on a CPU: a tiny sample of four sets laid out as the cards name them (small synthetic
images, so that CI needs no data), both headline models with random weights, and the extrapolation to the full grid
checked against image counts, pixel ratios and per-evaluation seconds computed here from the runs' own rows and
run.json."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sr_bench.data.cards import find_card
from sr_bench.store import load_rows

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "headline_grid.py"
SETS = ("set5", "set14", "b100", "urban100")
GRID_SCALES = 26  # 1.5:4:0.1
CROP = 16


def _size(i: int) -> tuple[int, int]:
    """(height, width) of a set's i-th synthetic image: a few sizes, so that the mean is no single image's."""
    return 20 + 4 * (i % 3), 24 + 8 * (i % 2)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name in SETS:
        card = find_card(name)
        (root / card.folder).mkdir()
        for i, f in enumerate(card.files):
            h, w = _size(i)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / card.folder / f.name)
    return root


def _load_script():
    spec = importlib.util.spec_from_file_location("headline_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seconds(text: str) -> float:
    value, unit = text.replace(",", "").split()
    return float(value) * {"s": 1, "min": 60, "h": 3600}[unit]


def test_cpu_sample_prints_the_table_and_the_extrapolation(data_root, tmp_path):
    work, sample = tmp_path / "work", tmp_path / "sample"
    # the sample is written where the data is (--prepare) and measured from that folder alone (--sample), as on a
    # GPU machine without the sets
    prep = subprocess.run([sys.executable, str(SCRIPT), "--data-root", str(data_root), "--every", "50",
                           "--max-images", "1", "--size", str(CROP), "--prepare", str(sample)],
                          capture_output=True, text=True, timeout=120)
    assert prep.returncode == 0, prep.stderr[-3000:]
    assert sorted(p.name for p in sample.iterdir()) == sorted(["B100", "Set14", "Set5", "Urban100", "sample.json"])
    assert all(len(list((sample / d).iterdir())) == 1 for d in ("B100", "Set14", "Set5", "Urban100"))
    done = subprocess.run([sys.executable, str(SCRIPT), "--sample", str(sample), "--device", "cpu", "--scales", "2",
                           "--metrics", "psnr", "--work", str(work), "--json", str(tmp_path / "h.json")],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "h.json").read_text())
    by = {(r["model"], r["set"]): r for r in out["results"]}
    assert sorted(by) == sorted((m, s) for m in ("asdn", "metasr") for s in ("Set5", "Set14", "B100", "Urban100"))

    for name in SETS:
        card = find_card(name)
        n = len(card.files)
        full_mean = sum(h * w for h, w in map(_size, range(n))) / n
        ratio = full_mean / (CROP * CROP)  # the sample: the set's first image, centre-cropped to 16 x 16
        run_dir = work / "runs" / card.name
        rows = load_rows(run_dir)
        timing = json.loads((run_dir / "run.json").read_text())["timing"]
        outside = (timing["wall_seconds"] - rows["seconds"].sum()) / len(rows)
        for model in ("asdn", "metasr"):
            r = by[(model, card.name)]
            forward = rows.loc[rows["model"] == model, "seconds"]
            assert len(forward) == 1 and r["evaluations"] == 1
            assert r["images"] == n and r["sample_images"] == 1 and r["full_evaluations"] == n * GRID_SCALES
            assert math.isclose(r["pixel_ratio"], ratio, rel_tol=1e-12)
            assert math.isclose(r["forward_s_per_eval"], forward.iloc[0], rel_tol=1e-9)
            assert math.isclose(r["outside_s_per_eval"], outside, rel_tol=1e-6, abs_tol=1e-6)
            # the per-evaluation seconds are checked against the rows above; the extrapolation multiplies those
            # (run.json's wall time is rounded, and x ratio x 26 x n would magnify that rounding past rel 1e-6)
            expected = (r["forward_s_per_eval"] + r["outside_s_per_eval"]) * ratio * n * GRID_SCALES
            assert math.isclose(r["extrapolated_seconds"], expected, rel_tol=1e-6)
            assert r["flops_per_second"] > 0 and r["mfu"] is None  # a CPU: FLOP/s only
    assert out["evaluations"] == 219 * GRID_SCALES * 2 == 11_388 and out["images"] == 219
    assert math.isclose(out["total_seconds"], sum(r["extrapolated_seconds"] for r in out["results"]), rel_tol=1e-12)

    # the printed table: one row per (model, set); its extrapolation is its full-size s/eval x full evaluations
    lines = [x for x in done.stdout.splitlines() if x.startswith("| asdn |") or x.startswith("| metasr |")]
    assert len(lines) == 8
    head = [c.strip() for c in done.stdout.splitlines()[0].split("|")]
    for line in lines:
        cells = dict(zip(head, [c.strip() for c in line.split("|")], strict=True))
        per_eval, evals = float(cells["s/eval full-size"]), int(cells["full evals"].replace(",", ""))
        shown, unit = _seconds(cells["extrapolated"]), _seconds("1 " + cells["extrapolated"].split()[1])
        # within the rounding of both printed numbers: 4 decimals of s/eval, 1 decimal of the duration's unit
        assert abs(shown - per_eval * evals) <= 5e-5 * evals + 0.05 * unit
        assert cells["MFU"] == "–" and cells["FLOP/s"].endswith("FLOP/s")
    summary = re.search(r"full grid: 219 images x 26 scales x 2 models = 11,388 evaluations, extrapolated (.+?) \(",
                        done.stdout)
    assert summary and math.isclose(_seconds(summary.group(1)), out["total_seconds"], rel_tol=0.01)


def test_measure_replaces_the_first_forward_and_shares_the_outside_time():
    grid = _load_script()
    rows = pd.DataFrame({
        "model": ["a", "b", "a", "b", "a"], "error": [""] * 5, "scale_text": ["2", "2", "3", "3", "2"],
        "seconds": [5.0, 1.0, 3.0, 1.5, 2.0], "flops": [1e9, 2e9, 1e9, 2e9, 1e9],
        "device": ["cpu:x86_64:2threads"] * 5, "created": ["t0", "t1", "t2", "t3", "t4"]})
    timing = {"wall_seconds": 15.0, "forward_seconds": 12.5, "fp32_reference_seconds": 0.5}
    stats = {"images": 10, "pixels": 10 * 400, "sample_images": 2, "sample_pixels": 2 * 100}
    a, b = grid.measure(rows, timing, stats, grid_scales=3)
    # outside: 15 - 12.5 - 0.5 = 2 s over 5 evaluations. a's first forward (5 s at x2) counts as its other x2
    # forward (2 s): (2 + 3 + 2) / 3. b's first is its only x2 forward: kept, (1 + 1.5) / 2
    assert a["outside_s_per_eval"] == 0.4 and a["forward_s_per_eval"] == pytest.approx(7 / 3)
    assert a["first_forward_s"] == 5.0 and a["first_forward_replaced"] and not b["first_forward_replaced"]
    assert a["flops_per_second"] == pytest.approx(3e9 / 7) and b["forward_s_per_eval"] == 1.25
    assert a["pixel_ratio"] == 4 and a["full_evaluations"] == 30
    assert a["extrapolated_seconds"] == pytest.approx((7 / 3 + 0.4) * 4 * 30)


def test_no_data_says_so_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--data-root", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.count("\n") == 1, done.stdout + done.stderr
    assert done.stdout.startswith("headline_grid: no data")


def test_measure_takes_flops_from_an_earlier_run_when_timed_without_the_counter():
    grid = _load_script()
    rows = pd.DataFrame({"model": ["a", "a"], "error": ["", ""], "scale_text": ["2", "3"], "seconds": [2.0, 3.0],
                         "flops": [None, None], "device": ["cuda:NVIDIA H100 80GB HBM3 [bf16]"] * 2,
                         "created": ["t0", "t1"]})
    timing = {"wall_seconds": 5.0, "forward_seconds": 5.0}
    stats = {"images": 1, "pixels": 100, "sample_images": 1, "sample_pixels": 100}
    (a,) = grid.measure(rows, timing, stats, grid_scales=2, flops_per_eval={"a": 989.5e12})
    # 2 x 989.5 TFLOPs in 5 s: 40% of the H100 SXM's bf16 peak
    assert a["flops_per_second"] == pytest.approx(2 * 989.5e12 / 5) and a["mfu"] == pytest.approx(0.4)
    (none,) = grid.measure(rows, timing, stats, grid_scales=2)
    assert none["flops_per_second"] is None and none["mfu"] is None


def test_speed_levers_pass_through_and_the_compile_warm_up_counts_once(data_root, tmp_path):
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(SCRIPT), "--data-root", str(data_root), "--datasets", "set5",
                           "--every", "50", "--max-images", "1", "--size", str(CROP), "--models", "srcnn",
                           "--scales", "2", "--metrics", "psnr", "--device", "cpu", "--compile", "aot_eager",
                           "--channels-last", "--cudnn-benchmark", "--work", str(work), "--json",
                           str(tmp_path / "h.json")], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((work / "runs" / "Set5" / "run.json").read_text())
    (entry,) = manifest["execution"]
    assert (entry["compile"], entry["channels_last"], entry["cudnn_benchmark"]) == ("aot_eager", True, True)
    out = json.loads((tmp_path / "h.json").read_text())
    (r,) = out["results"]
    warm = entry["warmup_seconds"]
    assert warm > 0 and out["warmup_seconds"] == r["warmup_seconds"] == warm
    timing = manifest["timing"]
    assert math.isclose(r["outside_s_per_eval"], timing["wall_seconds"] - timing["forward_seconds"] - warm,
                        rel_tol=1e-9, abs_tol=1e-9)  # one evaluation
    assert math.isclose(out["total_seconds"], r["extrapolated_seconds"] + warm, rel_tol=1e-12)
    assert "levers --compile aot_eager --channels-last --cudnn-benchmark;" in done.stdout
