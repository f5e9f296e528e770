"""Third-party metrics: the README's metric plugin, pip-installed into a temporary location and found through the
``sr_bench.metrics`` entry-point group, end to end (rows, table, compare, resume, plot, --visual); and the checks a
registered metric goes through.

The plugin's values are checked against numpy references computed here from the pixels: the mean absolute
difference of MATLAB-rounded luma after the protocol's crop and shave, from the SR re-created independently (MATLAB
bicubic down and up, for every bicubic row) and from the SR images ``compare --visual --save-sr`` writes (both
models). The same references give the stored PSNR to 1e-9, which shows they see the pixels the protocol compares.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-9  # float64 means of at most a few thousand values in 0..255


def _readme_metric_files() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"<!-- metric-plugin-file: (\S+) -->\s*```\w*\n(.*?)```", text, flags=re.S)
    assert blocks, "README lost its metric plugin example"
    return dict(blocks)


def _natural(h, w, seed):
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.integers(0, 256, (h // 6 + 2, w // 6 + 2, 3)).astype(np.float64))
    big = imresize(small.permute(2, 0, 1), size=(h, w)).permute(1, 2, 0).numpy()
    return np.clip(np.round(big), 0, 255).astype(np.uint8)


def _folders(base: Path) -> dict[str, Path]:
    out = {}
    for k, (name, sizes) in enumerate((("setA", [(40, 36), (33, 45)]), ("setB", [(37, 38), (42, 31)]))):
        d = base / name
        d.mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(_natural(h, w, 10 * k + i)).save(d / f"im{i}.png")
        out[name] = d
    return out


def _y(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr on a uint8 image, Y only: imlincomb's order, then rounded half away from zero."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return np.floor(r * (65.481 / 255) + g * (128.553 / 255) + b * (24.966 / 255) + 16.0 + 0.5)


def _modcrop(hr: np.ndarray, s: int) -> np.ndarray:
    return hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]


def _bicubic_sr(hr: np.ndarray, s: int) -> np.ndarray:
    """MATLAB bicubic down by s then up by s, each rounded to uint8 values (the matlab protocol and bicubic model)."""
    t = torch.from_numpy(hr.astype(np.float64)).permute(2, 0, 1)
    lr = torch.floor(imresize(t, scale=Fraction(1, s)) + 0.5).clamp(0, 255)
    return torch.floor(imresize(lr, scale=s) + 0.5).clamp(0, 255).permute(1, 2, 0).numpy()


def _mae_psnr(sr: np.ndarray, hr: np.ndarray, s: int) -> tuple[float, float]:
    d = (_y(sr) - _y(_modcrop(hr, s)))[s:-s, s:-s]
    return float(np.mean(np.abs(d))), 10 * math.log10(255.0 ** 2 / float(np.mean(d ** 2)))


def _srbench(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "sr_bench.cli", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("metric_plugin")
    pkg = base / "my-metrics"
    for name, body in _readme_metric_files().items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    target = base / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target",
                          str(target), str(pkg)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert list(target.glob("my_metrics-0.1*.dist-info/entry_points.txt"))
    return base, target


def _means(rows: pd.DataFrame, metric: str) -> dict[tuple[str, str, str], float]:
    """Per (model, dataset, scale) mean of the error-free rows, summed by hand."""
    acc: dict = {}
    for r in rows.itertuples():
        if r.error == "":
            acc.setdefault((r.model, r.dataset, r.scale_text), []).append(getattr(r, metric))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def test_metric_plugin_end_to_end(installed, tmp_path, monkeypatch):
    base, target = installed
    folders = _folders(tmp_path)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(target)}
    # a fresh process finds the metric through its entry point only
    ran = _srbench(["run", "--models", "bicubic,srcnn", "--allow-untrained", "--datasets",
                    f"{folders['setA']},{folders['setB']}", "--scales", "2,3", "--metrics", "psnr,mae", "--out",
                    str(out), "--no-progress"], env, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "MAE ↓" in ran.stdout  # the summary the run prints

    # rows: a float64 `mae` column, a value on every row, equal to the numpy reference on every bicubic row
    rows = pd.read_parquet(out / "rows")  # the files themselves, not through sr_bench.store
    assert rows["mae"].dtype == np.float64 and len(rows) == 16 and (rows.error == "").all()
    assert rows["mae"].notna().all() and rows["lpips"].isna().all()

    def check_bicubic(frame):
        for r in frame[frame.model == "bicubic"].itertuples():
            hr = np.asarray(Image.open(folders[r.dataset] / f"{r.image}.png"))
            s = int(r.scale_text)
            mae, psnr = _mae_psnr(_bicubic_sr(_modcrop(hr, s), s), hr, s)
            assert abs(psnr - r.psnr) < TOL, (r.dataset, r.image, s)  # the reference sees the protocol's pixels
            assert abs(mae - r.mae) < TOL, (r.dataset, r.image, s)

    check_bicubic(rows)
    # the two models differ, so the comparison below compares something
    assert (rows[rows.model == "srcnn"].mae.to_numpy() != rows[rows.model == "bicubic"].mae.to_numpy()).any()
    prov = json.loads(rows.metric_weights.iloc[0])
    assert prov["mae_plugin"] == "entry point mae = my_metrics:MAE of my-metrics 0.1"
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["metrics"] == ["psnr", "mae"] and manifest["request"]["metrics"] == ["psnr", "mae"]
    assert manifest["metric_info"]["mae"]["higher_is_better"] is False
    assert manifest["metric_info"]["psnr"]["upper"] == "inf"

    # from here on in this process, with the package importable as an installed one
    monkeypatch.syspath_prepend(str(target))
    means = _means(rows, "mae")
    t = CliRunner().invoke(cli, ["table", str(out)])
    assert t.exit_code == 0, t.output
    lines = t.stdout.splitlines()
    assert lines[0] == "| model | dataset | scale | n | failed | PSNR ↑ | MAE ↓ |"
    assert "; metric mae: entry point mae = my_metrics:MAE of my-metrics 0.1" in t.stderr  # the table's provenance
    for (model, dataset, scale), mean in means.items():
        row = [ln for ln in lines if re.match(rf"\| {model}( \(untrained\))? \| {dataset} \| x{scale} \|", ln)]
        assert len(row) == 1 and row[0].endswith(f"| {mean:.3f} |"), row
    c = CliRunner().invoke(cli, ["table", str(out), "--format", "csv"])
    assert c.exit_code == 0, c.output
    csv = pd.read_csv(io.StringIO(c.stdout), dtype={"scale": str})
    assert list(csv.columns) == ["model", "dataset", "scale", "n_images", "psnr", "ssim", "lpips", "mae"]
    for r in csv.itertuples():
        assert abs(r.mae - means[(r.model, r.dataset, r.scale)]) < 1e-6  # printed with 6 decimals

    # compare: paired on (dataset, image, scale), lower is better read from the plugin's MetricInfo
    cmp = CliRunner().invoke(cli, ["compare", str(out), "--models", "bicubic,srcnn", "--metrics", "mae",
                                   "--format", "csv", "--resamples", "200"])
    assert cmp.exit_code == 0, cmp.output
    table = pd.read_csv(io.StringIO(cmp.stdout), dtype={"scale": str})
    cells = table[table.scale != "all"]
    assert set(table.metric) == {"mae"} and not table.higher_is_better.any() and len(cells) == 4
    ok = rows.set_index(["model", "dataset", "image", "scale_text"]).mae
    for r in cells.itertuples():
        keys = [(d, i, sc) for (m, d, i, sc) in ok.index if m == "bicubic" and d == r.dataset and sc == r.scale]
        a = np.array([ok[("bicubic", *k)] for k in keys])
        b = np.array([ok[("srcnn", *k)] for k in keys])
        assert r.n == len(keys) == 2
        # the CSV prints 10 significant digits
        assert r.mean_a == pytest.approx(a.mean(), rel=1e-9) and r.diff == pytest.approx((b - a).mean(), rel=1e-9)
        assert (r.wins, r.losses) == (int((b < a).sum()), int((b > a).sum()))  # B wins with a lower MAE
    assert set(table[table.scale == "all"].dataset) == {"setA", "setB"}
    md = CliRunner().invoke(cli, ["compare", str(out), "--models", "bicubic,srcnn", "--resamples", "200"])
    assert md.exit_code == 0, md.output
    assert "### PSNR ↑ (dB; higher is better)" in md.stdout and "### MAE ↓ (0..255; lower is better)" in md.stdout

    # resume: lose setB's shard (as an interruption would); only setB is measured again, with the plugin metric
    shards = sorted((out / "rows").glob("setB__*.parquet"))
    assert shards
    for p in shards:
        p.unlink()
    kept = rows[rows.dataset == "setA"]
    res = CliRunner().invoke(cli, ["run", "--resume", str(out), "--workers", "2", "--no-progress"])  # spawned workers
    assert res.exit_code == 0, res.output
    from sr_bench.store import load_rows, metric_columns

    again = load_rows(out)
    assert metric_columns(again) == ("psnr", "ssim", "lpips", "mae") and len(again) == 16
    assert set(again[again.dataset == "setA"].created) == set(kept.created)  # not measured again
    redone = again[again.dataset == "setB"]
    assert len(redone) == 8 and (redone.created > rows.created.max()).all() and redone.mae.notna().all()
    before = rows[rows.dataset == "setB"].set_index(["model", "image", "scale_text"]).mae
    assert (redone.set_index(["model", "image", "scale_text"]).mae.sort_index() == before.sort_index()).all()
    check_bicubic(redone)
    assert len(json.loads((out / "run.json").read_text())["resumed"]) == 1

    rep = CliRunner().invoke(cli, ["report", str(out), "--no-plots", "--out", str(tmp_path / "report")])
    assert rep.exit_code == 0, rep.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| PSNR ↑ | MAE ↓ |" in text and ("- metric `mae`: lower is better, range [0.0, 255.0], unit 0..255, view "
                                            "`y`; entry point mae = my_metrics:MAE of my-metrics 0.1") in text
    assert "mae,paper_psnr" in (tmp_path / "report" / "summary.csv").read_text().splitlines()[0]

    # plot and the visual comparison need the plot extra
    pytest.importorskip("matplotlib")
    from sr_bench.report.plot import plot_scale_curves

    p = CliRunner().invoke(cli, ["plot", str(out), "--metric", "mae", "--out", str(tmp_path / "mae.svg")])
    assert p.exit_code == 0, p.output
    assert (tmp_path / "mae.svg").read_text().startswith("<?xml")
    fig = plot_scale_curves(again, "mae", tmp_path / "mae.png")
    axes = {ax.get_title().split(" (")[0]: ax for ax in fig.axes}
    assert axes["setA"].get_ylabel() == "MAE (0..255), lower is better"
    from sr_bench.report.paper_table import method_label

    # curves are labelled as the tables label rows (the card's display name)
    by_label = {method_label(m, {}).split(" ")[0]: m for m, _, _ in means}
    for dataset, ax in axes.items():
        for line in ax.get_lines():
            model = by_label[line.get_label().split(" ")[0]]
            expected = [means[(model, dataset, s)] for s in ("2", "3")]
            assert np.allclose(line.get_ydata(), expected, rtol=0, atol=1e-12)
    import matplotlib.pyplot as plt

    plt.close(fig)

    # the SR images `compare --visual` re-creates (and checks against the stored PSNR) give the stored MAE
    srdir = tmp_path / "sr"
    v = CliRunner().invoke(cli, ["compare", str(out), "--models", "bicubic,srcnn", "--visual", "setB/im1", "--scale",
                                 "3", "--out", str(tmp_path / "fig.png"), "--save-sr", str(srdir), "--no-progress"])
    assert v.exit_code == 0, v.output
    hr = np.asarray(Image.open(folders["setB"] / "im1.png"))
    for model in ("bicubic", "srcnn"):
        stored = again[(again.model == model) & (again.dataset == "setB") & (again.image == "im1")
                       & (again.scale_text == "3")].iloc[0]
        mae, psnr = _mae_psnr(np.asarray(Image.open(srdir / f"{model}_setB_im1_x3.png")), hr, 3)
        assert abs(psnr - stored.psnr) < TOL and abs(mae - stored.mae) < TOL


# ------------------------------------------------------------------------------- what a metric plugin must be ----
PLUGINS = '''
import torch

from sr_bench import Metric, MetricInfo


def _info(name, **kw):
    return MetricInfo(name=name, higher_is_better=False, lower=0.0, upper=255.0, view="y", **kw)


class MaxErr(Metric):
    info = _info("maxerr", decimals=1)

    def compute(self, sr, hr):
        return (sr - hr).abs().max()  # a 0-d tensor: stored as a float


class Fails(Metric):
    info = _info("fails")

    def compute(self, sr, hr):
        raise ValueError("cannot measure this")


class WrongName(Metric):
    info = _info("Wrong")


class NotAMetric:
    info = _info("notametric")


class BadLoad(Metric):
    info = _info("badload")

    def load(self, device):
        raise RuntimeError("weights server down")
'''


def _dist(site: Path, name: str, entries: dict[str, str]) -> None:
    """An installed distribution as importlib.metadata reads one: METADATA and entry_points.txt in a dist-info."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[sr_bench.metrics]\n{lines}")


@pytest.fixture()
def plugins(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "srb_test_metrics.py").write_text(PLUGINS)
    _dist(site, "srb_test_metrics", {n: c if ":" in c else f"srb_test_metrics:{c}" for n, c in (
        ("maxerr", "MaxErr"), ("fails", "Fails"), ("wrong", "WrongName"), ("notametric", "NotAMetric"),
        ("badload", "BadLoad"), ("broken", "no_such_module_anywhere:X"), ("seconds", "MaxErr"))})
    monkeypatch.syspath_prepend(str(site))
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(_natural(30, 28, 5)).save(imgs / "a.png")
    return site, imgs


def test_plugin_values_and_errors_land_in_rows(plugins, tmp_path):
    from sr_bench.run.runner import run

    _, imgs = plugins
    result = run(models=["bicubic"], datasets=[str(imgs)], scales=[Fraction(2)], metrics=["psnr", "maxerr"],
                 out=tmp_path / "r1", progress=False)
    r = result.rows.iloc[0]
    hr = np.asarray(Image.open(imgs / "a.png"))
    d = (_y(_bicubic_sr(_modcrop(hr, 2), 2)) - _y(_modcrop(hr, 2)))[2:-2, 2:-2]
    assert r.error == "" and r.maxerr == np.abs(d).max()
    # a metric that raises: the row keeps the other metrics' values and names the one that failed; the run completes
    failed = run(models=["bicubic"], datasets=[str(imgs)], scales=[Fraction(2)], metrics=["psnr", "fails"],
                 out=tmp_path / "r2", progress=False).rows.iloc[0]
    assert failed.error == "" and failed.psnr == r.psnr and math.isnan(failed.fails)
    assert json.loads(failed.metric_errors) == {"fails": "ValueError: cannot measure this"}
    # no metric gave a value: the row has no numbers, and its error says why
    alone = run(models=["bicubic"], datasets=[str(imgs)], scales=[Fraction(2)], metrics=["fails"],
                out=tmp_path / "r3", progress=False).rows.iloc[0]
    assert alone.error == "fails: ValueError: cannot measure this" and alone.error_kind == "metric"


@pytest.mark.parametrize("metric,needle", [
    ("wrong", "declares info.name 'Wrong'; it must equal the entry-point name 'wrong'"),
    ("notametric", "is not a subclass of sr_bench.metrics.Metric"),
    ("badload", "failed to load: RuntimeError: weights server down"),
    ("broken", "failed to load: ModuleNotFoundError"),
    ("seconds", "'seconds' is a column sr_bench already writes"),
])
def test_bad_plugins_are_one_line_errors(plugins, tmp_path, metric, needle):
    r = CliRunner().invoke(cli, ["run", "--datasets", str(plugins[1]), "--scales", "2", "--metrics", f"psnr,{metric}",
                                 "--out", str(tmp_path / "never"), "--no-progress"])
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.output, r.output
    assert f"metric '{metric}' (entry point {metric} = " in r.stderr and "of srb_test_metrics 1.0" in r.stderr
    assert not (tmp_path / "never").exists()


def test_a_name_registered_twice_is_refused_naming_both(plugins):
    from sr_bench.metrics import list_metrics

    site, _ = plugins
    _dist(site, "other_metrics", {"psnr": "other_metrics:PSNR"})
    with pytest.raises(UserError) as e:
        list_metrics()
    msg = str(e.value)
    assert ("metric 'psnr' is registered twice: built-in and entry point psnr = other_metrics:PSNR of other_metrics "
            "1.0") in msg


def test_an_uninstalled_plugin_metric_says_how_to_get_it():
    from sr_bench.metrics import metric_info

    with pytest.raises(UserError, match="unknown metric 'mae'.*entry point in group sr_bench.metrics"):
        metric_info("mae")
