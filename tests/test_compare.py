"""`srbench compare`: paired statistics checked against independent references (a loop bootstrap with the same
seed, a normal approximation, scipy's Wilcoxon and wins/ties/losses counted straight from the Parquet rows), the
protocol guard, and the visual re-run checked against the stored rows and against the saved SR PNGs.

Rows come from the real runner on small synthetic images: bicubic (A) against a plugin model `mixed` (B) that, by
the LR width, is exactly bicubic (ties), bicubic with an unsharp mask, or bilinear -- so B wins, ties and loses.
"""

from __future__ import annotations

import math
import shutil
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.report.compare import Side, bootstrap_ci, compare_table, pair_rows, to_markdown
from sr_bench.run.runner import run

PLUGIN = textwrap.dedent('''
    from fractions import Fraction

    import torch
    import torch.nn.functional as F

    from sr_bench import ScaleSupport, Upscaler, register_model
    from sr_bench.imaging.resize import imresize


    @register_model("mixed")
    class Mixed(Upscaler):
        """By LR width mod 3: MATLAB bicubic (= the bicubic model), bicubic + unsharp mask, or bilinear."""

        def __init__(self):
            super().__init__(name="mixed", scales=ScaleSupport.any_scale(), learned=False)

        def super_resolve(self, lr, scale, size):
            bicubic = imresize(lr.double() * 255.0, scale=scale, size=size) / 255.0
            kind = lr.shape[-1] % 3
            if kind == 0:
                return bicubic
            if kind == 1:
                blur = F.avg_pool2d(F.pad(bicubic, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
                return (bicubic + 0.6 * (bicubic - blur)).clamp(0, 1)
            return F.interpolate(lr, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
''')

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}  # written here, not read from metric_info


def _images(folder: Path, n: int = 8) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(n):  # widths 40, 42, ... so that LR widths cover every residue mod 3
        base = rng.integers(0, 256, (10, 11, 3)).astype(np.uint8)
        Image.fromarray(base).resize((40 + 2 * i, 36), Image.BICUBIC).save(folder / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)).save(folder / "tiny.png")  # x3: error row
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    plugin = base / "mixed_plugin.py"
    plugin.write_text(PLUGIN)
    imgs = _images(base / "imgs")
    both = run(models=["bicubic", "mixed"], datasets=[str(imgs)], scales=[Fraction(2), Fraction(3)],
               plugins=(str(plugin),), out=base / "both", progress=False)
    # `mixed` is registered in this process now; load_plugin refuses a second import of the same file
    only_b = run(models=["mixed"], datasets=[str(imgs)], scales=[Fraction(2)], metrics=["psnr", "ssim"],
                 out=base / "only_b", progress=False)
    other = run(models=["bicubic"], datasets=[str(imgs)], scales=[Fraction(2)], protocol="metasr", metrics=["psnr"],
                out=base / "metasr", progress=False)
    return {"base": base, "imgs": imgs, "both": both.run_dir, "only_b": only_b.run_dir, "metasr": other.run_dir}


def _parquet(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "rows")  # straight from the files, not through sr_bench.store


def _loop_bootstrap(diff, n_resamples=10_000, seed=0, level=0.95):
    """The documented procedure written plainly: resample by resample, then a hand-made percentile."""
    d = [float(x) for x in diff]
    n = len(d)
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_resamples):
        u = rng.random(n)
        means.append(sum(d[int(math.floor(x * n))] for x in u) / n)
    means.sort()

    def pct(q):  # numpy's default ("linear") percentile
        pos = q * (len(means) - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, len(means) - 1)
        return means[lo] + (means[hi] - means[lo]) * (pos - lo)

    tail = (1 - level) / 2
    return pct(tail), pct(1 - tail)


# ----------------------------------------------------------------------------------------- the statistics ----
@pytest.mark.parametrize("n", [7, 257])
def test_bootstrap_equals_a_loop_reimplementation(n):
    d = np.random.default_rng(n).normal(0.2, 1.0, n)
    lo, hi = bootstrap_ci(d, seed=11)
    ref_lo, ref_hi = _loop_bootstrap(d, seed=11)
    assert lo == pytest.approx(ref_lo, abs=1e-12) and hi == pytest.approx(ref_hi, abs=1e-12)
    assert bootstrap_ci(d, seed=11) == (lo, hi)  # seeded: reproducible
    assert bootstrap_ci(d, seed=12) != (lo, hi)


def test_bootstrap_agrees_with_the_normal_approximation():
    n = 400
    d = np.random.default_rng(5).normal(0.3, 1.0, n)
    lo, hi = bootstrap_ci(d)
    # The bootstrap distribution of the mean is ~ N(mean, sd/sqrt(n)) with sd the plug-in (ddof=0) deviation.
    # Monte-Carlo error of a 2.5% percentile from 10,000 resamples: sqrt(.025*.975/1e4) / phi(1.96) ~= 0.027 se;
    # the residual skew of a mean of 400 normals is negligible. 0.15 se is ~5 Monte-Carlo standard errors.
    se = d.std() / math.sqrt(n)
    assert lo == pytest.approx(d.mean() - 1.959964 * se, abs=0.15 * se)
    assert hi == pytest.approx(d.mean() + 1.959964 * se, abs=0.15 * se)


def _direct_cells(rows_a: pd.DataFrame, rows_b: pd.DataFrame, model_a: str, model_b: str) -> dict:
    """{(dataset, scale_text, metric): (a values, b values)} paired by a dict on (dataset, image, scale_text)."""
    def index(rows, model):
        ok = rows[(rows.model == model) & (rows.error == "")]
        return {(r.dataset, r.image, r.scale_text): r for r in ok.itertuples()}

    ia, ib = index(rows_a, model_a), index(rows_b, model_b)
    cells: dict = {}
    for key in sorted(set(ia) & set(ib)):
        for metric in HIGHER_IS_BETTER:
            va, vb = getattr(ia[key], metric), getattr(ib[key], metric)
            if va is None or vb is None or np.isnan(va) or np.isnan(vb):
                continue
            cell = cells.setdefault((key[0], key[2], metric), ([], [], []))
            cell[0].append(va)
            cell[1].append(vb)
            cell[2].append(key[1])
    return cells


def _check_cell(got: pd.Series, a: list, b: list, metric: str) -> None:
    a, b = np.array(a), np.array(b)
    higher = HIGHER_IS_BETTER[metric]
    wins = sum((y > x) if higher else (y < x) for x, y in zip(a, b, strict=True))
    ties = sum(y == x for x, y in zip(a, b, strict=True))
    losses = sum((y < x) if higher else (y > x) for x, y in zip(a, b, strict=True))
    assert (got.n, got.wins, got.ties, got.losses) == (len(a), wins, ties, losses)
    assert got.mean_a == pytest.approx(a.mean(), abs=1e-12) and got.mean_b == pytest.approx(b.mean(), abs=1e-12)
    assert got["diff"] == pytest.approx((b - a).mean(), abs=1e-12)
    lo, hi = _loop_bootstrap(b - a)
    assert got.ci_low == pytest.approx(lo, abs=1e-12) and got.ci_high == pytest.approx(hi, abs=1e-12)
    if np.count_nonzero(b - a) >= 6:
        p = scipy.stats.wilcoxon(b, a, zero_method="wilcox").pvalue
        assert got.p_wilcoxon == pytest.approx(p, rel=1e-12)
    else:
        assert math.isnan(got.p_wilcoxon)


def test_table_matches_statistics_computed_from_the_rows(runs):
    rows = _parquet(runs["both"])
    if rows["lpips"].isna().all():
        pytest.skip("LPIPS weights are unavailable here, so the lower-is-better metric has no values")
    pairing = pair_rows(rows, rows, Side("bicubic", "r", "bicubic"), Side("mixed", "r", "mixed"))
    assert pairing.metrics == ("psnr", "ssim", "lpips")
    table = compare_table(pairing)
    cells = _direct_cells(rows, rows, "bicubic", "mixed")
    per_scale = table[table.scale != "all"]
    assert len(per_scale) == len(cells) == 2 * 3
    for _, got in per_scale.iterrows():
        a, b, _ = cells[(got.dataset, got.scale, got.metric)]
        _check_cell(got, a, b, got.metric)
    # the plugin makes B win, tie and lose; lpips (lower is better) counts the other way round from psnr
    assert per_scale.wins.sum() > 0 and per_scale.ties.sum() > 0 and per_scale.losses.sum() > 0
    assert per_scale.p_wilcoxon.notna().any()  # scipy's p is compared, not only the NaN rule
    lp = per_scale[per_scale.metric == "lpips"]
    a, b, _ = cells[("imgs", "2", "lpips")]
    assert int(lp[lp.scale == "2"].wins.iloc[0]) == sum(y < x for x, y in zip(a, b, strict=True))
    # 'all': each image once, its values averaged over its paired scales
    for metric in HIGHER_IS_BETTER:
        per_image: dict = {}
        for s in ("2", "3"):
            a, b, names = cells[("imgs", s, metric)]
            for x, y, name in zip(a, b, names, strict=True):
                per_image.setdefault(name, []).append((x, y))
        a = [np.mean([x for x, _ in v]) for v in per_image.values()]
        b = [np.mean([y for _, y in v]) for v in per_image.values()]
        got = table[(table.scale == "all") & (table.metric == metric)].iloc[0]
        _check_cell(got, a, b, metric)


def test_dropped_and_cross_run_pairs(runs):
    ra, rb = _parquet(runs["both"]), _parquet(runs["only_b"])
    pairing = pair_rows(ra, rb, Side("bicubic", "both", "bicubic"), Side("mixed", "only_b", "mixed"))
    assert pairing.metrics == ("psnr", "ssim")  # only_b measured no lpips
    keys = lambda r: {(x.dataset, x.image, x.scale_text) for x in r.itertuples()}  # noqa: E731
    a_all, b_all = keys(ra[ra.model == "bicubic"]), keys(rb)
    a_ok, b_ok = keys(ra[(ra.model == "bicubic") & (ra.error == "")]), keys(rb[rb.error == ""])
    unpaired = (a_all | b_all) - (a_ok & b_ok)
    errored = unpaired & ((a_all - a_ok) | (b_all - b_ok))
    assert len(pairing.pairs) == len(a_ok & b_ok) > 0
    assert pairing.with_error == len(errored) >= 1  # tiny.png at x3
    assert pairing.one_side_only == len(unpaired - errored) >= 8  # the x3 rows B never measured
    # the same model's numbers paired across runs give the same x2 statistics as within one run
    cross = compare_table(pairing).set_index(["scale", "metric"])
    within = compare_table(pair_rows(ra, ra, Side("bicubic", "both", "bicubic"), Side("mixed", "both", "mixed")))
    within = within.set_index(["scale", "metric"])
    for metric in ("psnr", "ssim"):
        assert cross.loc[("2", metric)].equals(within.loc[("2", metric)])
    md = to_markdown(compare_table(pairing), pairing)
    assert f"{pairing.dropped} dropped as unpaired ({pairing.one_side_only} measured for one model only, " \
           f"{pairing.with_error} with an error row)" in md
    assert "only the images both models measured without an error are compared" in md


def test_different_protocols_are_refused(runs):
    ra, rc = _parquet(runs["both"]), _parquet(runs["metasr"])
    fa, fc = ra.protocol_fingerprint.iloc[0], rc.protocol_fingerprint.iloc[0]
    assert fa != fc
    with pytest.raises(UserError) as e:
        pair_rows(ra, rc, Side("bicubic", "both", "bicubic@both"), Side("bicubic", "metasr", "bicubic@metasr"))
    msg = str(e.value)
    assert fa in msg and fc in msg and "--protocol" in msg and "\n" not in msg


# ---------------------------------------------------------------------------------------------------- CLI ----
def test_cli_markdown_and_csv(runs):
    r = CliRunner().invoke(cli, ["compare", str(runs["both"]), "--models", "bicubic,mixed"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "### PSNR ↑ (dB; higher is better)" in out and "### LPIPS ↓ (lower is better)" in out
    assert "| dataset | scale | n | A bicubic | B mixed | B − A | 95% CI of B − A |" in out
    assert "zero_method='wilcox'" in out and "10,000 resamples" in out
    assert "protocol matlab (" in r.stderr and "protocol matlab (" not in out.splitlines()[-1]
    c = CliRunner().invoke(cli, ["compare", str(runs["both"]), "--format", "csv", "--metrics", "psnr"])
    assert c.exit_code == 0, c.output  # two models in the run: --models may be omitted (run order: A, B)
    from io import StringIO

    csv = pd.read_csv(StringIO(c.stdout), dtype={"scale": str})
    rows = _parquet(runs["both"])
    cells = _direct_cells(rows, rows, "bicubic", "mixed")
    assert list(csv.scale) == ["2", "3", "all"] and set(csv.model_b) == {"mixed"}
    for _, got in csv[csv.scale != "all"].iterrows():
        a, b, _ = cells[("imgs", got.scale, "psnr")]
        assert got.wins + got.ties + got.losses == got.n == len(a)
        assert got["diff"] == pytest.approx((np.array(b) - np.array(a)).mean(), rel=1e-9)


@pytest.mark.parametrize("args,needle", [
    (["--models", "bicubc,mixed"], "unknown model 'bicubc'; did you mean 'bicubic'"),
    (["--models", "bicubic"], "--models takes two names"),
    (["--models", "bicubic,mixed", "--visual", "imgs/im99", "--scale", "2"], "unknown image 'im99'"),
    (["--models", "bicubic,mixed", "--visual", "imgz/im1", "--scale", "2"], "did you mean 'imgs'"),
    (["--models", "bicubic,mixed", "--visual", "imgs/im1", "--scale", "4"], "scale 4 is not in run"),
    (["--models", "bicubic,mixed", "--visual", "imgs/im1"], "--scale is needed"),
    (["--models", "bicubic,mixed", "--visual", "imgs/im1", "--scale", "2", "--box", "30,10,20,8"], "bad --box"),
    (["--models", "bicubic,mixed", "--visual", "imgs/im1", "--scale", "2", "--box", "1,2,3"], "bad --box"),
    (["--box", "1,2,3,4"], "--box belongs to --visual"),
    (["--metrics", "ssmi"], "did you mean 'ssim'"),
])
def test_one_line_errors(runs, args, needle):
    r = CliRunner().invoke(cli, ["compare", str(runs["both"]), *args])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and needle in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_cli_refuses_mixed_protocols(runs):
    r = CliRunner().invoke(cli, ["compare", str(runs["both"]), str(runs["metasr"]), "--models", "bicubic,bicubic"])
    assert r.exit_code == 2 and r.output.startswith("error: cannot compare") and "not comparable" in r.output
    assert len(r.output.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------- visual ----
def _y(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma of uint8 RGB, rounded half up (as MATLAB's uint8 cast), in numpy."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = r * (65.481 / 255.0) + g * (128.553 / 255.0) + b * (24.966 / 255.0) + 16.0
    return np.floor(y + 0.5)


def _psnr_from_files(sr_png: Path, hr_png: Path, s: int) -> float:
    sr = np.asarray(Image.open(sr_png).convert("RGB"))
    hr = np.asarray(Image.open(hr_png).convert("RGB"))
    hr = hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]  # modcrop
    d = (_y(sr) - _y(hr))[s:-s, s:-s]
    return 10 * math.log10(255.0 ** 2 / np.mean(d ** 2))


def _brute_force_box(sr_a: np.ndarray, sr_b: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    diff = np.abs(sr_a.astype(int) - sr_b.astype(int)).sum(axis=2)
    height, width = diff.shape
    h, w = max(8, height // 4), max(8, width // 4)
    best, where = -1, None
    for y in range(margin, height - margin - h + 1):
        for x in range(margin, width - margin - w + 1):
            total = int(diff[y:y + h, x:x + w].sum())
            if total > best:
                best, where = total, (x, y, w, h)
    return where


def test_visual_reproduces_the_stored_rows(runs, tmp_path):
    fig, srdir = tmp_path / "fig.png", tmp_path / "sr"
    r = CliRunner().invoke(cli, ["compare", str(runs["both"]), "--models", "bicubic,mixed", "--visual", "imgs/im4",
                                 "--scale", "2", "--out", str(fig), "--save-sr", str(srdir), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(fig).size[0] > 500
    rows = _parquet(runs["both"])
    for model in ("bicubic", "mixed"):
        row = rows[(rows.model == model) & (rows.image == "im4") & (rows.scale_text == "2")].iloc[0]
        # printed numbers are the re-computed ones; they must be the stored row's (the check is within 1e-9)
        assert f"{model}: PSNR {float(row.psnr)!r}, SSIM {float(row.ssim)!r}" in r.stdout
        sr_png = srdir / f"{model}_imgs_im4_x2.png"
        assert abs(_psnr_from_files(sr_png, runs["imgs"] / "im4.png", 2) - row.psnr) < 1e-9
    sr_a = np.asarray(Image.open(srdir / "bicubic_imgs_im4_x2.png"))
    sr_b = np.asarray(Image.open(srdir / "mixed_imgs_im4_x2.png"))
    x, y, w, h = _brute_force_box(sr_a, sr_b, margin=2)
    assert f"box: {x},{y},{w},{h} (x,y,w,h; default:" in r.stdout

    # two runs: each model re-created from its own run.json; a given box is used as given
    fig2 = tmp_path / "two.pdf"
    r2 = CliRunner().invoke(cli, ["compare", str(runs["both"]), str(runs["only_b"]), "--models", "bicubic,mixed",
                                  "--visual", "imgs/im1.png", "--scale", "2", "--box", "3,4,10,9", "--out", str(fig2)])
    assert r2.exit_code == 0, r2.output
    assert fig2.read_bytes()[:4] == b"%PDF" and "box: 3,4,10,9 (x,y,w,h; given)" in r2.stdout


def test_visual_detects_rows_it_cannot_reproduce(runs, tmp_path):
    imgs = tmp_path / "imgs"
    shutil.copytree(runs["imgs"], imgs)
    done = run(models=["bicubic", "mixed"], datasets=[str(imgs)], scales=[Fraction(2)], metrics=["psnr", "ssim"],
               out=tmp_path / "run", progress=False)  # `mixed`: registered by the module fixture's plugin
    arr = np.asarray(Image.open(imgs / "im2.png")).copy()
    arr[10:20, 10:20] = 255 - arr[10:20, 10:20]  # the data changed after the run
    Image.fromarray(arr).save(imgs / "im2.png")
    fig = tmp_path / "fig.png"
    r = CliRunner().invoke(cli, ["compare", str(done.run_dir), "--visual", "imgs/im2", "--out", str(fig),
                                 "--no-progress"])
    assert r.exit_code == 1, r.output
    assert r.output.startswith("error: re-created bicubic gives PSNR") and "stored" in r.output
    assert not fig.exists()


def test_visual_without_matplotlib_is_one_line(runs, tmp_path):
    import os
    import subprocess
    import sys

    shadow = tmp_path / "shadow" / "matplotlib"  # an installed-looking matplotlib that cannot be imported
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    r = subprocess.run([sys.executable, "-m", "sr_bench.cli", "compare", str(runs["both"]), "--models",
                        "bicubic,mixed", "--visual", "imgs/im1", "--scale", "2", "--out", str(tmp_path / "f.png")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "error: the figure needs matplotlib: pip install 'sr_bench[plot]'"
