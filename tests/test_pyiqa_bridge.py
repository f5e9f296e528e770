"""pyiqa's metrics through ``--metrics pyiqa:NAME``: names and metadata, a real run on small synthetic images
(values against pyiqa's own API and a float64 numpy Y-PSNR on independently re-created SR), the columns in
``table`` and ``compare``, weights that are not cached, and (calibration) pyiqa's Y-PSNR and SSIM against
sr_bench's own on the bicubic Set5/Set14 rows, the difference taken apart step by step (docs/pyiqa.md)."""

from __future__ import annotations

import io
import json
import math
import re
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize

pyiqa = pytest.importorskip("pyiqa", reason="pyiqa is not installed; pip install -c constraints.txt pyiqa (extra iqa)")

from conftest import need_data  # noqa: E402

WEIGHT_FREE = ("ms_ssim", "gmsd", "fsim", "vif", "psnry")


def _natural(h, w, seed):
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.integers(0, 256, (h // 6 + 2, w // 6 + 2, 3)).astype(np.float64))
    big = imresize(small.permute(2, 0, 1), size=(h, w)).permute(1, 2, 0).numpy()
    return np.clip(np.round(big), 0, 255).astype(np.uint8)


def _bicubic_sr(hr: np.ndarray, s: int) -> np.ndarray:
    """MATLAB bicubic down by s then up by s, each rounded to uint8 values (the matlab protocol and bicubic model)."""
    t = torch.from_numpy(hr.astype(np.float64)).permute(2, 0, 1)
    lr = torch.floor(imresize(t, scale=Fraction(1, s)) + 0.5).clamp(0, 255)
    return torch.floor(imresize(lr, scale=s) + 0.5).clamp(0, 255).permute(1, 2, 0).numpy()


def _t(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float64)).permute(2, 0, 1)[None] / 255.0


def test_columns_are_valid_distinct_and_both_spellings_resolve():
    from sr_bench.metrics import metric_column, metric_info
    from sr_bench.metrics.pyiqa_bridge import column_name, pyiqa_name
    from sr_bench.store.schema import check_metric_name

    names = pyiqa.list_models()
    columns = [column_name(n) for n in names]
    assert len(set(columns)) == len(names)  # no two pyiqa metrics share a column
    assert all(check_metric_name(c) is None for c in columns)
    assert column_name("lpips-vgg+") == "pyiqa_lpips_vgg_plus" and pyiqa_name("pyiqa_lpips_vgg_plus") == "lpips-vgg+"
    assert metric_column("pyiqa:ms_ssim") == metric_column("pyiqa_ms_ssim") == "pyiqa_ms_ssim"
    assert metric_column("psnr") == "psnr"
    assert metric_info("pyiqa:ms_ssim") == metric_info("pyiqa_ms_ssim")
    with pytest.raises(UserError, match=r"unknown pyiqa metric 'msssim'; did you mean 'ms_ssim'"):
        metric_info("pyiqa:msssim")


@pytest.mark.parametrize("name", [*WEIGHT_FREE, "niqe", "dists", "lpips"])
def test_direction_and_range_are_pyiqas(name):
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    from sr_bench.metrics import metric_info

    info = metric_info(f"pyiqa:{name}")
    assert info.higher_is_better is not DEFAULT_CONFIGS[name].get("lower_better", False)
    assert info.view == "rgb" and DEFAULT_CONFIGS[name]["score_range"] in info.description
    if name in WEIGHT_FREE:  # the same direction the built metric states
        assert info.higher_is_better is not pyiqa.create_metric(name, device="cpu").lower_better


def test_score_range_text():
    from sr_bench.metrics.pyiqa_bridge import parse_range

    assert parse_range("0, 1") == (0.0, 1.0)
    assert parse_range("~0, ~40") == (-math.inf, math.inf)  # pyiqa's rough estimate is no bound
    assert parse_range("0, ~") == (0.0, math.inf)
    assert parse_range("-2, 2") == (-2.0, 2.0)
    assert parse_range("quality: 0, 1; rank: 0, 2; rank_prob: 0, 1") == (0.0, 1.0)


@pytest.fixture(scope="module")
def iqa_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("iqa")
    folders = {}
    # pyiqa's MS-SSIM takes five scales of an 11x11 window: images of at least 176 pixels a side
    for k, (name, sizes) in enumerate((("setA", [(180, 184), (187, 178)]), ("setB", [(182, 181)]))):
        d = base / name
        d.mkdir()
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(_natural(h, w, 10 * k + i)).save(d / f"im{i}.png")
        folders[name] = d
    out = base / "run"
    metrics = "psnr,ssim," + ",".join(f"pyiqa:{n}" for n in WEIGHT_FREE)
    r = CliRunner().invoke(cli, ["run", "--models", "bicubic,srcnn", "--allow-untrained", "--datasets",
                                 f"{folders['setA']},{folders['setB']}", "--scales", "2", "--metrics", metrics,
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    return folders, out, r


def test_run_adds_a_column_per_pyiqa_metric_with_pyiqas_values(iqa_run):
    folders, out, r = iqa_run
    assert "PYIQA_MS_SSIM ↑" in r.stdout and "PYIQA_GMSD ↓" in r.stdout
    rows = pd.read_parquet(out / "rows")
    columns = [f"pyiqa_{n}" for n in WEIGHT_FREE]
    assert list(rows.columns[rows.columns.get_loc("lpips") + 1:][:len(columns)]) == columns
    assert all(rows[c].dtype == np.float64 for c in columns) and (rows.error == "").all()
    assert rows[[c for c in columns if c != "pyiqa_vif"]].notna().all().all()
    nets = {n: pyiqa.create_metric(n, device="cpu") for n in WEIGHT_FREE}
    for row in rows[rows.model == "bicubic"].itertuples():
        hr = np.asarray(Image.open(folders[row.dataset] / f"{row.image}.png"))
        hr = hr[: hr.shape[0] - hr.shape[0] % 2, : hr.shape[1] - hr.shape[1] % 2]
        sr = _bicubic_sr(hr, 2)
        for n, net in nets.items():  # pyiqa on the full, unshaved RGB in [0, 1], float32
            want, got = net(_t(sr).float(), _t(hr).float()).item(), getattr(row, f"pyiqa_{n}")
            if math.isnan(want):  # pyiqa's VIF is NaN on some of these smooth images; a row stores no value then
                assert n == "vif" and math.isnan(got), (row.image, n)
            else:
                assert got == pytest.approx(want, abs=1e-6), (row.image, n)
        # pyiqa's psnry by its definition, in float64: YIQ's Y of [0, 1] RGB, peak 1, no shave, no rounding
        y = lambda a: a.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0  # noqa: E731
        ref = 10 * math.log10(1.0 / (np.mean((y(sr) - y(hr)) ** 2) + 1e-8))
        assert row.pyiqa_psnry == pytest.approx(ref, abs=1e-4)
    prov = json.loads(rows.metric_weights.iloc[0])
    version = pyiqa.__version__
    assert prov["pyiqa_ms_ssim_plugin"].startswith(f"pyiqa {version} metric 'ms_ssim' = MS_SSIM(downsample=False, ")
    assert "test_y_channel=True" in prov["pyiqa_gmsd_plugin"]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["request"]["metrics"][2:] == columns  # stored as columns, so --resume resolves them
    assert manifest["metric_info"]["pyiqa_gmsd"]["higher_is_better"] is False


def test_table_and_compare_show_pyiqas_directions(iqa_run):
    _, out, _ = iqa_run
    t = CliRunner().invoke(cli, ["table", str(out)])
    assert t.exit_code == 0, t.output
    head = t.stdout.splitlines()[0]
    assert "| PYIQA_MS_SSIM ↑ | PYIQA_GMSD ↓ | PYIQA_FSIM ↑ | PYIQA_VIF ↑ | PYIQA_PSNRY ↑ |" in head
    assert "metric pyiqa_gmsd: pyiqa " in t.stderr
    cmp = CliRunner().invoke(cli, ["compare", str(out), "--models", "bicubic,srcnn", "--metrics",
                                   "pyiqa_gmsd,pyiqa_ms_ssim", "--format", "csv", "--resamples", "200"])
    assert cmp.exit_code == 0, cmp.output
    table = pd.read_csv(io.StringIO(cmp.stdout), dtype={"scale": str})
    assert dict(zip(table.metric, table.higher_is_better, strict=True)) == {"pyiqa_gmsd": False, "pyiqa_ms_ssim": True}
    rows = pd.read_parquet(out / "rows").set_index(["model", "dataset", "image"])
    for r in table[table.scale != "all"].itertuples():
        a, b = rows.loc["bicubic"][r.metric], rows.loc["srcnn"][r.metric]
        a, b = a[a.index.get_level_values(0) == r.dataset], b[b.index.get_level_values(0) == r.dataset]
        better = (b < a) if r.metric == "pyiqa_gmsd" else (b > a)
        assert r.wins == int(better.sum()), r
    md = CliRunner().invoke(cli, ["compare", str(out), "--models", "bicubic,srcnn", "--resamples", "200"])
    assert md.exit_code == 0, md.output
    assert re.search(r"### PYIQA_GMSD ↓ \(.*lower is better\)", md.stdout)
    assert re.search(r"### PYIQA_PSNRY ↑ \(dB; .*higher is better\)", md.stdout)


def test_weights_not_cached_stop_the_run_with_one_line(tmp_path, monkeypatch):
    from pyiqa.utils import download_util

    cache = tmp_path / "empty-cache"
    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(cache))  # pyiqa's own weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # torchvision's, under torch.hub
    called = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: called.append(a))  # no network, ever
    folder = tmp_path / "set"
    folder.mkdir()
    Image.fromarray(_natural(24, 24, 0)).save(folder / "im.png")
    results = tmp_path / "results"
    for name, file, where in (("niqe", "niqe_modelparameters.mat", cache),
                              ("dists", "vgg16-397923af.pth", tmp_path / "torch" / "hub" / "checkpoints")):
        r = CliRunner().invoke(cli, ["run", "--datasets", str(folder), "--scales", "2", "--metrics",
                                     f"psnr,pyiqa:{name}", "--results-dir", str(results), "--no-progress"])
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.output, r.output
        assert lines[0].startswith(f"error: metric pyiqa:{name} needs the weights file {file}")
        assert f"at {where / file} " in lines[0] and "https://" in lines[0]
    assert not called  # the bridge refused the download before torch.hub was asked
    assert torch.hub.download_url_to_file.__name__ == "<lambda>"  # and put torch.hub's function back
    assert not results.exists() or not any(results.iterdir())  # no run folder: the run never started


def test_an_uninstalled_pyiqa_says_how_to_get_it(monkeypatch):
    import sr_bench.metrics.pyiqa_bridge as bridge

    monkeypatch.setattr(bridge.importlib.util, "find_spec", lambda name: None)
    bridge._configs.cache_clear()
    bridge._by_column.cache_clear()
    try:
        with pytest.raises(UserError, match=r"pyiqa metrics need pyiqa, which is not installed; pip install"):
            bridge.info("pyiqa:ms_ssim")
    finally:
        bridge._configs.cache_clear()
        bridge._by_column.cache_clear()


@pytest.mark.calibration
def test_pyiqa_y_psnr_and_ssim_against_sr_bench_on_bicubic_set5_set14(tmp_path, capsys):
    """The default-vs-default gap, then pyiqa's functions with sr_bench's choices one by one: BT.601 Y instead of
    YIQ's (x 219/255: +1.3219 dB exactly), shave s, Y rounded to integers; what is left is rounding ties
    (torch.round is half-to-even, MATLAB half away from zero) and, for SSIM, pyiqa's relu on the contrast term."""
    from pyiqa.archs.psnr_arch import psnr as pq_psnr
    from pyiqa.archs.ssim_arch import ssim as pq_ssim
    from pyiqa.utils.color_util import to_y_channel

    data = need_data("Set5", "Set14")
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", "set5,set14", "--scales", "2,3,4",
                                 "--metrics", "psnr,ssim,pyiqa:psnry,pyiqa:ssim", "--data-root", str(data),
                                 "--save-images", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = pd.read_parquet(out / "rows").sort_values(["dataset", "image", "scale_text"])
    crop = lambda x, n: x[..., n:-n, n:-n]  # noqa: E731
    report = []
    for row in rows.itertuples():
        s = int(row.scale_text)
        hr = np.asarray(Image.open(next(p for p in (data / row.dataset).rglob(f"{row.image}.*")
                                        if p.suffix.lower() in (".png", ".bmp"))))
        if hr.ndim == 2:
            continue  # a grey image: the protocol measures its grey values, pyiqa replicated RGB
        hr = _t(hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s])
        sr = _t(np.asarray(Image.open(out / "images" / "bicubic" / row.dataset / f"x{s}" / f"{row.image}.png")))
        yiq = pq_psnr(sr, hr, True).item()
        ycbcr = pq_psnr(sr, hr, True, color_space="ycbcr").item()
        shaved = pq_psnr(crop(sr, s), crop(hr, s), True, color_space="ycbcr").item()
        rounded = pq_psnr(crop(sr, s), crop(hr, s), True, color_space="ycbcr", data_range=255.0).item()
        y = lambda x, s=s: crop(to_y_channel(x, 255.0, "ycbcr"), s)  # noqa: E731
        ssim_like = pq_ssim(y(sr), y(hr), data_range=255.0).item()
        assert row.pyiqa_psnry == pytest.approx(yiq, abs=1e-5)  # the stored column is pyiqa's default (float32)
        # the errors scale by 219/255 exactly; pyiqa's eps (1e-8 added to the MSE) moves it by up to ~4e-5 dB
        assert ycbcr - yiq == pytest.approx(20 * math.log10(255 / 219), abs=1e-4)
        assert rounded == pytest.approx(row.psnr, abs=1e-4)  # measured: at most 4e-5 dB
        assert -2e-6 <= ssim_like - row.ssim <= 5e-4  # measured: -1.1e-6 .. 2.8e-4 (relu only raises pyiqa's)
        report.append((row.dataset, row.image, s, row.psnr, row.pyiqa_psnry, ycbcr - yiq, shaved - ycbcr,
                       rounded - shaved, rounded - row.psnr, row.ssim, row.pyiqa_ssim, ssim_like - row.ssim))
    assert len(report) >= 39  # Set5 and the RGB images of Set14, three scales
    frame = pd.DataFrame(report, columns=["dataset", "image", "scale", "psnr", "pyiqa_psnry", "+ycbcr", "+shave",
                                          "+round", "left", "ssim", "pyiqa_ssim", "ssim_left"])
    gap = frame.pyiqa_psnry - frame.psnr
    assert (gap < -1.1).all() and (gap > -3.2).all()
    with capsys.disabled():
        print("\n" + frame.assign(gap=gap).to_string(index=False, float_format=lambda v: f"{v:.6f}"))


def _folder(path, sizes, seed=0):
    path.mkdir()
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(_natural(h, w, seed + i)).save(path / f"im{i}.png")
    return path


def test_metric_options_change_the_numbers_and_are_recorded(tmp_path):
    """pyiqa's PSNR with BT.601 Y, the shave and Y rounded (docs/pyiqa.md's causes 1-3 undone through --metric-opt)
    is sr_bench's MATLAB-exact PSNR to 1e-4 dB; its defaults are not. The options reach the request, run.json and
    every row, and a folder refuses the same run with other options."""
    folder = _folder(tmp_path / "set", [(64, 72), (70, 66)])
    out = tmp_path / "run"
    opts = ["--metric-opt", "pyiqa:psnr.test_y_channel=true", "--metric-opt", "pyiqa_psnr.color_space=ycbcr",
            "--metric-opt", "pyiqa:psnr.crop_border=2", "--metric-opt", "pyiqa:psnr.data_range=255"]
    args = ["run", "--models", "bicubic", "--datasets", str(folder), "--scales", "2", "--no-progress", "--out"]
    r = CliRunner().invoke(cli, [*args, str(out), "--metrics", "psnr,pyiqa:psnr,pyiqa:psnry", *opts])
    assert r.exit_code == 0, r.output
    rows = pd.read_parquet(out / "rows")
    assert (rows.pyiqa_psnr - rows.psnr).abs().max() < 1e-4  # measured: at most 4e-5 dB (rounding ties)
    assert ((rows.psnr - rows.pyiqa_psnry) > 0.5).all()  # pyiqa's defaults (YIQ, no shave): measured 0.74, 0.80
    given = {"pyiqa_psnr.color_space": "ycbcr", "pyiqa_psnr.crop_border": 2, "pyiqa_psnr.data_range": 255,
             "pyiqa_psnr.test_y_channel": True}
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["request"]["metric_opts"] == given
    want = (f"pyiqa {pyiqa.__version__} metric 'psnr' = PSNR(color_space='ycbcr', crop_border=2, data_range=255, "
            "test_y_channel=True), --metric-opt color_space='ycbcr', crop_border=2, data_range=255, "
            "test_y_channel=True, else pyiqa's defaults")
    assert manifest["metric_info"]["pyiqa_psnr"]["source"].startswith(want)
    assert all(json.loads(w)["pyiqa_psnr_plugin"].startswith(want) for w in rows.metric_weights)
    assert json.loads(rows.metric_weights.iloc[0])["pyiqa_psnry_plugin"].endswith("default options, on RGB in "
                                                                                  "[0, 1] float32, not shaved")
    again = CliRunner().invoke(cli, [*args, str(out), "--metrics", "psnr,pyiqa:psnr,pyiqa:psnry", *opts[:-2]])
    assert again.exit_code == 2 and "--metric-opt" in again.output and "holds another request" in again.output


@pytest.mark.parametrize("opt,metrics,message", [
    ("pyiqa:psnr.crop_boder=2", "psnr,pyiqa:psnr",
     "pyiqa metric 'psnr' has no option 'crop_boder' (--metric-opt pyiqa:psnr.crop_boder=...); did you mean "
     "'crop_border'?"),
    ("pyiqa:ms_ssim.data_range=1", "pyiqa:ms_ssim",
     "pyiqa metric 'ms_ssim' has no option 'data_range' (--metric-opt pyiqa:ms_ssim.data_range=...); its options: "
     "channels, color_space, downsample, is_prod, test_y_channel"),
    ("pyiqa:gmsd.test_y_channel=false", "psnr,pyiqa:psnr",
     "--metric-opt pyiqa_gmsd.test_y_channel=... is addressed to 'pyiqa_gmsd', which is not in --metrics"),
    ("psnr.crop_border=2", "psnr", "metric 'psnr' takes no options (--metric-opt psnr.crop_border=...)"),
    ("crop_border=2", "pyiqa:psnr", "bad --metric-opt 'crop_border=2': write METRIC.KEY=VALUE"),
    ("pyiqa:psnr.crop_border=[2", "pyiqa:psnr", "bad --metric-opt value '[2'"),
])
def test_a_bad_metric_option_is_one_line_before_any_image(tmp_path, opt, metrics, message):
    results = tmp_path / "results"
    folder = _folder(tmp_path / "set", [(24, 24)])
    r = CliRunner().invoke(cli, ["run", "--datasets", str(folder), "--scales", "2", "--metrics", metrics,
                                 "--metric-opt", opt, "--results-dir", str(results)])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [r.output.strip()] and "Traceback" not in r.output
    assert r.output.startswith(f"error: {message}")
    assert not results.exists() or not any(results.iterdir())  # no run folder: the run never started


def test_a_metric_failing_on_an_image_keeps_the_others(tmp_path):
    """pyiqa's MS-SSIM raises on an image under 176 px a side: that row keeps PSNR and SSIM (bit-identical to a run
    without MS-SSIM), MS-SSIM's column stays empty, ``metric_errors`` names it, the run says so and exits 1."""
    folder = _folder(tmp_path / "set", [(96, 100), (180, 184)])
    base = ["run", "--models", "bicubic", "--datasets", str(folder), "--scales", "2", "--no-progress", "--out"]
    r = CliRunner().invoke(cli, [*base, str(tmp_path / "with"), "--metrics", "psnr,ssim,pyiqa:ms_ssim"])
    plain = CliRunner().invoke(cli, [*base, str(tmp_path / "without"), "--metrics", "psnr,ssim"])
    alone = CliRunner().invoke(cli, [*base, str(tmp_path / "alone"), "--metrics", "pyiqa:ms_ssim"])
    assert r.exit_code == 1 and plain.exit_code == 0, r.output + plain.output
    assert re.search(r"metric pyiqa_ms_ssim failed on 1 of 2 evaluations, whose other metrics were kept \(e\.g\. "
                     r"set/im0 x2 bicubic: RuntimeError: .*Kernel size", r.stderr)
    rows = pd.read_parquet(tmp_path / "with" / "rows").set_index("image").sort_index()
    ref = pd.read_parquet(tmp_path / "without" / "rows").set_index("image").sort_index()
    assert rows.psnr.tolist() == ref.psnr.tolist() and rows.ssim.tolist() == ref.ssim.tolist()
    assert rows.psnr.notna().all() and (rows.error == "").all() and (rows.error_kind == "").all()
    assert math.isnan(rows.pyiqa_ms_ssim["im0"]) and 0 < rows.pyiqa_ms_ssim["im1"] <= 1
    assert list(json.loads(rows.metric_errors["im0"])) == ["pyiqa_ms_ssim"] and rows.metric_errors["im1"] == ""
    table = CliRunner().invoke(cli, ["table", str(tmp_path / "with")])
    assert "| bicubic | set | x2 | 2 | 0 |" in table.stdout  # both images' PSNR and SSIM are in the means
    # PSNR and SSIM cover both images; MS-SSIM's mean covers one of them: only its cell is marked incomplete
    [line] = [ln for ln in table.stdout.splitlines() if ln.startswith("| bicubic |")]
    psnr_cell, ssim_cell, ms_ssim_cell = [c.strip() for c in line.strip("|").split("|")[5:8]]
    assert f"{ref.psnr.mean():.2f}" == psnr_cell and "*" not in ssim_cell
    assert ms_ssim_cell == f"{rows.pyiqa_ms_ssim['im1']:.4f}*" and "'metric_errors' column" in table.stdout
    # the only metric failing: the row has no numbers, and says why in `error`
    assert alone.exit_code == 1
    lone = pd.read_parquet(tmp_path / "alone" / "rows").set_index("image")
    assert lone.error_kind["im0"] == "metric" and lone.error["im0"].startswith("pyiqa_ms_ssim: RuntimeError")
    assert lone.error["im1"] == ""


def test_a_run_reads_without_pyiqa_from_what_run_json_recorded(iqa_run, monkeypatch):
    """Where pyiqa is not installed, ``table`` and ``compare`` take a pyiqa column's direction and range from the
    run.json ``metric_info`` of the run they read; a column no read run recorded still says how to get pyiqa."""
    import sr_bench.metrics as metrics
    import sr_bench.metrics.pyiqa_bridge as bridge

    _, out, _ = iqa_run
    monkeypatch.setattr(bridge.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(metrics, "_RECORDED", {})
    bridge._configs.cache_clear()
    bridge._by_column.cache_clear()
    try:
        with pytest.raises(UserError, match=r"pyiqa metrics need pyiqa, which is not installed"):
            metrics.metric_info("pyiqa_gmsd")
        t = CliRunner().invoke(cli, ["table", str(out)])
        assert t.exit_code == 0, t.output
        assert "| PYIQA_MS_SSIM ↑ | PYIQA_GMSD ↓ | PYIQA_FSIM ↑ | PYIQA_VIF ↑ | PYIQA_PSNRY ↑ |" in t.stdout
        recorded = json.loads((out / "run.json").read_text())["metric_info"]["pyiqa_psnry"]
        assert metrics.metric_info("pyiqa:psnry").description == recorded["description"]
        cmp = CliRunner().invoke(cli, ["compare", str(out), "--models", "bicubic,srcnn", "--metrics",
                                       "pyiqa_gmsd,pyiqa_ms_ssim", "--format", "csv", "--resamples", "100"])
        assert cmp.exit_code == 0, cmp.output
        table = pd.read_csv(io.StringIO(cmp.stdout), dtype={"scale": str})
        assert dict(zip(table.metric, table.higher_is_better, strict=True)) == {"pyiqa_gmsd": False,
                                                                               "pyiqa_ms_ssim": True}
        with pytest.raises(UserError, match=r"pyiqa metrics need pyiqa"):
            metrics.metric_info("pyiqa_niqe")  # no run read here measured it
    finally:
        bridge._configs.cache_clear()
        bridge._by_column.cache_clear()
