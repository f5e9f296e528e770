"""``srbench run --precision`` and the prefetching loop (``sr_bench.run.evaluation.evaluate_images``) on CPU: fp32
is the plain float32 evaluation, bf16 runs under autocast and its run.json drift is what an independent
recomputation gives, and prefetching changes no number. Real image files, real runs, real Parquet rows."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.data import resolve_dataset
from sr_bench.errors import UserError
from sr_bench.models import create_model
from sr_bench.protocols import HRSource, get_protocol
from sr_bench.run.evaluation import model_input
from sr_bench.run.precision import check_precision, forward_precision
from sr_bench.run.runner import resume_run, run

KEY = ["model", "dataset", "image", "scale_text"]
VOLATILE = ["created", "seconds", "run_id", "peak_memory"]  # measured per run: the only columns allowed to differ
MODELS = ["bicubic", "edsr-baseline", "srcnn"]  # interpolation, an RGB network, a Y-only MATLAB-style network


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs") / "small"
    d.mkdir()
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate(((30, 36), (27, 33), (33, 30))):
        base = np.add.outer(np.arange(h) * (i + 2), np.arange(w) * 3).astype(np.float64)
        img = np.stack([base * (c + 1) % 256 for c in range(3)], -1) + rng.normal(0, 6, (h, w, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(d / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)).save(d / "tiny.png")  # too small: error rows
    (d / "broken.png").write_bytes(b"not a png")
    return d


@pytest.fixture(autouse=True)
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _run(folder, out, **kw):
    args = dict(models=MODELS, datasets=[str(folder)], scales=[Fraction(2), Fraction(5, 2)], metrics=["psnr", "ssim"],
                allow_untrained=True, device="cpu", progress=False)
    return run(out=out, **{**args, **kw})


def _stable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=VOLATILE).sort_values(KEY).reset_index(drop=True)


def _psnr_y(sr: torch.Tensor, hr: torch.Tensor, shave: int) -> float:
    """The metasr protocol's PSNR restated in NumPy float64: Y of the difference (65.738 R + 129.057 G + 25.064 B)
    / 256, shaved by ceil(s), peak 255."""
    d = sr.numpy() - hr.numpy()
    y = (65.738 * d[0] + 129.057 * d[1] + 25.064 * d[2]) / 256
    mse = np.mean(y[shave:-shave, shave:-shave] ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def test_prefetch_rows_equal_the_sequential_rows(folder, tmp_path):
    plain = _run(folder, tmp_path / "plain", prefetch=0)
    ahead = _run(folder, tmp_path / "ahead", prefetch=2)
    assert len(plain.rows) == 5 * 2 * 3
    errors = plain.rows[plain.rows["error"] != ""]
    assert set(errors["image"]) == {"broken", "tiny"}  # the failures travel through the pipeline as rows too
    pd.testing.assert_frame_equal(_stable(plain.rows), _stable(ahead.rows))
    # run.json's timing: the loop's wall time and the rows' forward seconds
    t = json.loads((tmp_path / "ahead" / "run.json").read_text())["timing"]
    assert t["evaluations"] == ahead.rows["seconds"].notna().sum() == 3 * 2 * 3  # 3 images measured
    assert t["forward_seconds"] == pytest.approx(ahead.rows["seconds"].sum(), abs=1e-5)
    assert 0 < t["forward_seconds"] < t["wall_seconds"]


def test_fp32_rows_are_the_plain_float32_evaluation(folder, tmp_path):
    """fp32 is today's evaluation: each row's PSNR is the model's own super_resolve, with no autocast, quantised
    by the protocol, measured by a NumPy PSNR."""
    result = _run(folder, tmp_path / "fp32", scales=[Fraction(5, 2)], prefetch=2, metrics=["psnr"])
    manifest = json.loads((tmp_path / "fp32" / "run.json").read_text())
    assert manifest["precision"] == {"name": "fp32", "autocast": None, "tf32": False, "drift": None}
    assert manifest["request"]["precision"] == "fp32"
    assert set(result.rows["device"]) == {f"cpu:{__import__('platform').machine()}:2threads"}  # no tag for fp32
    protocol = get_protocol("metasr")
    items = {it.name: it for it in resolve_dataset(str(folder)).items}
    for row in result.rows[result.rows["error"] == ""].itertuples():
        model = create_model(row.model, allow_untrained=True) if row.model != "bicubic" else create_model("bicubic")
        arr = items[row.image].load()
        case = protocol.prepare(HRSource(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).double()),
                                Fraction(5, 2))
        with torch.inference_mode():
            sr = protocol.quantize(model.super_resolve(model_input(case), Fraction(5, 2), case.sr_size)[0].double())
        assert abs(row.psnr - _psnr_y(sr, case.hr, case.shave)) < 1e-9  # float64 metric code vs NumPy: rounding only


def test_bf16_runs_on_cpu_and_its_drift_is_recomputed_independently(folder, tmp_path):
    result = _run(folder, tmp_path / "bf16", precision="bf16", drift_images=2, prefetch=2)
    manifest = json.loads((tmp_path / "bf16" / "run.json").read_text())
    prec = manifest["precision"]
    assert prec["name"] == "bf16" and prec["autocast"] == "bfloat16" and manifest["request"]["precision"] == "bf16"
    assert all(d.endswith("[bf16]") for d in result.rows["device"])
    drift = prec["drift"]
    # jobs run in file order: broken (no pixels: no drift), im0, im1 -> the first 2 images are broken and im0
    assert drift["images"] == 1 and drift["images_requested"] == 2
    assert manifest["timing"]["fp32_reference_seconds"] == drift["fp32_seconds"] > 0

    # independent recomputation: the adapters' own super_resolve, under torch.autocast or not, NumPy PSNR
    protocol = get_protocol("metasr")
    item = next(it for it in resolve_dataset(str(folder)).items if it.name == "im0")
    hr = HRSource(torch.from_numpy(np.ascontiguousarray(item.load())).permute(2, 0, 1).double())
    for name in MODELS:
        model = create_model(name, allow_untrained=True) if name != "bicubic" else create_model("bicubic")
        deltas = []
        for s in (Fraction(2), Fraction(5, 2)):
            case = protocol.prepare(hr, s)
            psnr = {}
            for autocast in (True, False):
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    sr01 = model.super_resolve(model_input(case), s, case.sr_size)
                psnr[autocast] = _psnr_y(protocol.quantize(sr01[0].double()), case.hr, case.shave)
            row = result.rows[(result.rows["model"] == name) & (result.rows["image"] == "im0")
                              & (result.rows["scale"] == float(s))].iloc[0]
            assert abs(row.psnr - psnr[True]) < 1e-9  # the stored row is the bf16 result
            deltas.append(psnr[True] - psnr[False])
        got = drift["models"][name]
        assert got["evaluations"] == 2
        assert got["mean_abs_dpsnr"] == pytest.approx(np.mean(np.abs(deltas)), abs=1e-9)
        assert got["max_abs_dpsnr"] == pytest.approx(np.max(np.abs(deltas)), abs=1e-9)
        if name == "bicubic":
            assert got["max_abs_dpsnr"] == 0  # float64 interpolation: autocast must not touch it
        else:
            assert got["max_abs_dpsnr"] > 0  # the networks did run in bfloat16


def test_bf16_prefetch_and_workers_give_the_same_rows_and_drift(folder, tmp_path):
    kw = dict(models=["edsr-baseline"], precision="bf16", drift_images=3, metrics=["psnr"])
    plain = _run(folder, tmp_path / "plain", prefetch=0, **kw)
    ahead = _run(folder, tmp_path / "ahead", prefetch=1, **kw)
    pool = _run(folder, tmp_path / "pool", workers=2, **kw)  # the drift images measured in worker processes
    pd.testing.assert_frame_equal(_stable(plain.rows), _stable(ahead.rows))
    a, b, c = (json.loads((tmp_path / n / "run.json").read_text())["precision"]["drift"]
               for n in ("plain", "ahead", "pool"))
    assert a["models"] == b["models"] and a["images"] == b["images"] == c["images"] == 2
    # workers run one thread each; the same bf16 kernels, so at most rounding-level differences
    p, q = _stable(plain.rows), _stable(pool.rows)
    assert p[KEY].equals(q[KEY]) and (p["error"] == q["error"]).all()
    np.testing.assert_allclose(q["psnr"].astype(float), p["psnr"].astype(float), rtol=0, atol=1e-6)
    m, n = a["models"]["edsr-baseline"], c["models"]["edsr-baseline"]
    assert n["evaluations"] == m["evaluations"] == 4
    assert n["mean_abs_dpsnr"] == pytest.approx(m["mean_abs_dpsnr"], abs=1e-6)


def test_precision_errors_are_one_line(folder, tmp_path):
    for precision, needle in (("tf32", "TF32 is a CUDA tensor-core mode"), ("fp16", "float16 autocast needs a CUDA")):
        r = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", str(folder), "--scales", "2",
                                     "--device", "cpu", "--precision", precision, "--out", str(tmp_path / "x")])
        assert (r.exit_code == 2 and r.output.startswith(f"error: --precision {precision} on cpu: ")
                and needle in r.output)
        assert len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", str(folder), "--gpus-per-worker", "1",
                                 "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "--gpus-per-worker needs --executor ray" in r.output
    with pytest.raises(UserError, match="unknown precision 'bf61'; did you mean 'bf16'"):
        check_precision("bf61", "cuda")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_resume_keeps_the_precision_and_refuses_another(folder, tmp_path):
    out = tmp_path / "r"
    first = _run(folder, out, models=["edsr-baseline"], precision="bf16", drift_images=1, metrics=["psnr"])
    shards = sorted((out / "rows").glob("*.parquet"))
    shards[0].unlink()  # as if interrupted before anything was written
    again = resume_run(out, progress=False)
    pd.testing.assert_frame_equal(_stable(first.rows), _stable(again.rows))  # resumed in bf16, from the request
    with pytest.raises(UserError, match="it was run with --precision bf16, this request is --precision fp32"):
        _run(folder, out, models=["edsr-baseline"], metrics=["psnr"], resume=True)


def test_forward_precision_scope_restores_and_casts():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with forward_precision("bf16", torch.device("cpu")):
        assert conv(x).dtype == torch.bfloat16
    assert conv(x).dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
    with forward_precision("fp32", torch.device("cpu")):
        assert conv(x).dtype == torch.float32
