"""``srbench run --tile / --max-memory / --profile`` end to end (real runs, real Parquet rows) and ``srbench profile``:
tiled rows keep the whole-image PSNR, a memory budget retries in tiles and stays under it, FLOPs match a count made
by hand from the layer shapes, parameter counts match the cards."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import srcnn_flops
from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.models import create_model
from sr_bench.models.cards import card_for
from sr_bench.run.cost import profile_forward, timed_forward
from sr_bench.run.memory import ForwardMemory, MemoryBudgetExceeded, load_guard, parse_size, rss_bytes
from sr_bench.run.runner import run
from sr_bench.store import load_rows
from sr_bench.store.schema import SCHEMA

LINUX = sys.platform.startswith("linux") and rss_bytes() is not None


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: small convolutions on one thread


def _folder(tmp_path: Path, size: tuple[int, int], name: str = "imgs") -> Path:
    """One smooth, textured RGB image (deterministic)."""
    rng = np.random.default_rng(5)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 60 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 11.0)[..., None] + rng.normal(0, 12, (h, w, 3))
    folder = tmp_path / name
    folder.mkdir()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / "a.png")
    return folder


def _run(folder, out, **kw):
    opts = dict(models=["srcnn"], datasets=[str(folder)], scales=[Fraction(2), Fraction(5, 2)], protocol="metasr",
                metrics=["psnr"], out=out, device="cpu", allow_untrained=True, progress=False)
    opts.update(kw)
    return run(**opts).rows.sort_values("scale").reset_index(drop=True)


def test_tiled_rows_keep_the_whole_image_psnr(tmp_path):
    folder = _folder(tmp_path, (96, 160))
    whole = _run(folder, tmp_path / "whole")
    tiled = _run(folder, tmp_path / "tiled", tile=16)
    assert whole["tile"].isna().all() and (whole["tile_reason"] == "").all()
    assert (tiled["tile"] == 16).all() and (tiled["tile_overlap"] == 8).all()  # SRCNN's recommended overlap
    assert (tiled["tile_reason"] == "--tile").all()
    assert np.allclose(tiled["psnr"], whole["psnr"], rtol=0, atol=1e-4)
    assert tiled["peak_memory"].notna().all() if LINUX else True


@pytest.mark.skipif(not LINUX, reason="the CPU budget reads this process's RSS from /proc")
def test_a_memory_budget_retries_in_tiles_and_stays_under_it(tmp_path):
    folder = _folder(tmp_path, (512, 512))
    # SRCNN x2 on a 256x256 LR runs on the 512x512 bicubic Y: its first conv alone makes 64 x 512^2 float32 (67 MB),
    # tiles of 128 LR pixels make a seventh of that; the budget lies between
    load_guard()  # the guard's own imports (once per process) are not what this budget is about
    budget = rss_bytes() + 100_000_000
    rows = _run(folder, tmp_path / "budget", scales=[Fraction(2)], max_memory=budget)
    row = rows.iloc[0]
    assert row["error"] == ""
    # halved at least once from the whole 256-pixel LR; how far depends on the RSS the run holds besides the forward
    assert row["tile"] in (128, 64, 32, 16) and row["tile_reason"].startswith("--max-memory (MemoryBudgetExceeded")
    assert row["peak_memory"] <= budget
    whole = _run(folder, tmp_path / "whole", scales=[Fraction(2)])
    assert whole.iloc[0]["tile_reason"] == "" and whole.iloc[0]["peak_memory"] > row["peak_memory"]
    assert abs(row["psnr"] - whole.iloc[0]["psnr"]) <= 1e-4


@pytest.mark.skipif(not LINUX, reason="the CPU budget reads this process's RSS from /proc")
def test_the_guard_stops_a_forward_over_budget_and_leaves_no_mode_behind():
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    model = create_model("srcnn", allow_untrained=True)
    lr = torch.rand(1, 3, 24, 24, dtype=torch.float64)
    with pytest.raises(MemoryBudgetExceeded, match="would exceed --max-memory"):
        timed_forward(model, lr, Fraction(2), (48, 48), memory=ForwardMemory("cpu", budget=rss_bytes() // 2))
    assert _get_current_dispatch_mode() is None
    memory = ForwardMemory("cpu", budget=rss_bytes() + 10**9)
    sr, seconds, _ = timed_forward(model, lr, Fraction(2), (48, 48), memory=memory)
    assert sr.shape[-2:] == (48, 48) and memory.before <= memory.peak <= rss_bytes() + 10**9


def test_memory_budget_and_tile_errors_are_one_line(tmp_path):
    folder = _folder(tmp_path, (32, 32))
    with pytest.raises(UserError, match="--max-memory '4 apples' is not a size"):
        _run(folder, tmp_path / "a", max_memory="4 apples")
    if LINUX:
        with pytest.raises(UserError, match="below the .* this process already holds"):
            _run(folder, tmp_path / "b", max_memory="1MB")
    with pytest.raises(UserError, match="--tile-overlap needs --tile"):
        _run(folder, tmp_path / "c", tile_overlap=4)
    assert parse_size("4GB") == 4 * 10**9 and parse_size("4GiB") == 4 * 2**30 and parse_size("1.5G") == 1_500_000_000


def _edsr_baseline_x2_flops(h: int, w: int) -> int:
    """EDSR-baseline x2 on an h x w LR: MeanShift 1x1 3->3, head 3->64 3x3, 16 resblocks of two 64->64 3x3 convs,
    the body's last 64->64 3x3, the upsampler's 64->256 3x3 (then pixel shuffle), at 2h x 2w the tail's 64->3 3x3
    and the MeanShift back."""
    lr, hr = h * w, 4 * h * w
    k3 = 9
    convs_lr = 3 * 3 + 3 * 64 * k3 + (2 * 16 + 1) * 64 * 64 * k3 + 64 * 256 * k3
    convs_hr = 64 * 3 * k3 + 3 * 3
    return 2 * (lr * convs_lr + hr * convs_hr)


def test_flops_match_a_count_by_hand():
    srcnn = create_model("srcnn", allow_untrained=True)
    p = profile_forward("srcnn", srcnn, Fraction(5, 2), (20, 28), torch.device("cpu"), repeat=1)
    assert p.sr_size == (50, 70)
    assert p.flops == srcnn_flops(50, 70)  # the network runs on the bicubic Y of MATLAB's ceil size
    edsr = create_model("edsr-baseline", allow_untrained=True)
    p = profile_forward("edsr-baseline", edsr, Fraction(2), (12, 20), torch.device("cpu"), repeat=1)
    assert p.flops == _edsr_baseline_x2_flops(12, 20)
    assert p.seconds > 0 and p.runs == 1 and p.strategy == "native" and p.checkpoint == "untrained"


@pytest.mark.parametrize("name,scale,key", [("rcan", "2", "x2"), ("metasr", "2.5", "all"), ("asdn", "2.5", "all"),
                                            ("edsr-baseline", "2", "x2"), ("edsr-baseline", "3", "x3"),
                                            ("srcnn", "3", "9-5-5"), ("lapsrn", "4", "x4")])
def test_parameter_counts_equal_the_cards(name, scale, key):
    model = create_model(name, allow_untrained=True)
    params = card_for(name)["params"]
    assert model.parameter_count(Fraction(scale)) == params[key], (name, scale)


def test_run_profile_stores_flops_and_parameters(tmp_path):
    folder = _folder(tmp_path, (40, 56))
    rows = _run(folder, tmp_path / "p", profile=True)
    for _, r in rows.iterrows():
        assert r["flops"] == srcnn_flops(int(r["hr_height"]), int(r["hr_width"])) or r["scale"] == 2.5
        assert r["parameters"] == card_for("srcnn")["params"]["9-5-5"]
    # x2.5: the network ran on ceil(2.5 x LR) and the protocol kept floor(2.5 x LR) rows of it
    r = rows[rows["scale"] == 2.5].iloc[0]
    assert r["flops"] == srcnn_flops(math.ceil(2.5 * r["lr_height"]), math.ceil(2.5 * r["lr_width"]))
    plain = _run(folder, tmp_path / "q")
    assert plain["flops"].isna().all() and plain["parameters"].isna().all()


def test_cli_profile_prints_the_table(tmp_path):
    out = tmp_path / "p.csv"
    r = CliRunner().invoke(cli, ["profile", "--models", "srcnn,bicubic", "--scales", "2,2.5", "--size", "16x24",
                                 "--allow-untrained", "--device", "cpu", "--repeat", "1", "--format", "csv",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out)
    assert list(table["model"]) == ["srcnn", "srcnn", "bicubic", "bicubic"]
    assert list(table["sr_height"]) == [32, 40, 32, 40]
    assert table.loc[0, "flops"] == srcnn_flops(32, 48) and table.loc[2, "parameters"] == 0
    bad = CliRunner().invoke(cli, ["profile", "--models", "srcnn", "--size", "0x3", "--allow-untrained"])
    assert bad.exit_code == 2 and "--size '0x3' is not HEIGHTxWIDTH" in bad.output


def test_runs_without_the_new_columns_still_load(tmp_path):
    folder = _folder(tmp_path, (32, 32))
    rows = _run(folder, tmp_path / "r", scales=[Fraction(2)], profile=True)
    new = ["tile", "tile_overlap", "tile_reason", "peak_memory", "parameters", "flops"]
    shard = next((tmp_path / "r" / "rows").glob("*.parquet"))
    old = pq.read_table(shard)
    pq.write_table(old.drop(new), shard)  # what an earlier sr_bench wrote
    back = load_rows(tmp_path / "r")
    assert list(back.columns) == SCHEMA.names + [c for c in back.columns if c not in SCHEMA.names]
    assert back[new].isna().all().all() and back["psnr"].iloc[0] == rows["psnr"].iloc[0]
    assert pa.types.is_int64(SCHEMA.field("flops").type)


def test_table_cost_shows_flops_and_peak_memory(tmp_path):
    folder = _folder(tmp_path, (32, 48))
    _run(folder, tmp_path / "r", profile=True)
    r = CliRunner().invoke(cli, ["table", str(tmp_path / "r"), "--cost"])
    assert r.exit_code == 0, r.output
    head = r.output.splitlines()[0]
    assert "params" in head and "GFLOPs" in head and ("peak mem" in head or not LINUX)
    csv = CliRunner().invoke(cli, ["table", str(tmp_path / "r"), "--cost", "--format", "csv"])
    assert "gflops" in csv.output.splitlines()[0]


def test_cli_run_takes_the_tiling_memory_and_profile_options(tmp_path):
    folder = _folder(tmp_path, (48, 64))
    out = tmp_path / "r"
    r = CliRunner().invoke(cli, ["run", "--models", "srcnn", "--allow-untrained", "--datasets", str(folder),
                                 "--scales", "2", "--metrics", "psnr", "--device", "cpu", "--out", str(out),
                                 "--tile", "16", "--tile-overlap", "4", "--max-memory", "100GB", "--profile",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    row = load_rows(out).iloc[0]
    assert (row["tile"], row["tile_overlap"], row["tile_reason"]) == (16, 4, "--tile")
    # the 48x64 bicubic Y in cores of 32 (16 LR px) with 8 (4 LR px) of context: rows [0,40) and [24,48), columns
    # [0,40) and [24,64); a tiled forward counts its overlap
    assert row["flops"] == srcnn_flops(40 + 24, 40 + 40) and row["parameters"] == card_for("srcnn")["params"]["9-5-5"]
    manifest = (out / "run.json").read_text()
    assert '"tile": 16' in manifest and '"max_memory": 100000000000' in manifest and '"profile": true' in manifest


IMDN_LIKE = '''
import torch.nn as nn
import torch.nn.functional as F
from sr_bench import ScaleSupport, Upscaler, register_model

@register_model("per-scale-nets")
class PerScale(Upscaler):
    def __init__(self, checkpoint=None):
        super().__init__(name="per-scale-nets", scales=ScaleSupport.integers(2, 3, 4), learned=False)
        self.nets = {k: nn.Conv2d(3, 3 * k * k, 2 * k - 1, padding=k - 1) for k in (2, 3, 4)}  # one per scale

    def super_resolve(self, lr, scale, size):
        return F.pixel_shuffle(self.nets[int(scale)](lr.float()), int(scale))[..., : size[0], : size[1]].double()
'''


def test_profile_counts_the_network_of_each_scale_and_runs_learned_models_untrained(tmp_path, clean_registry):
    plugin = tmp_path / "imdn_like.py"
    plugin.write_text(IMDN_LIKE)
    out = tmp_path / "p.csv"
    r = CliRunner().invoke(cli, ["profile", "--plugin", str(plugin), "--models", "per-scale-nets,rcan", "--scales",
                                 "2,3", "--size", "8x8", "--device", "cpu", "--repeat", "1", "--format", "csv",
                                 "--out", str(out)])  # no --allow-untrained: the weights' values change none of it
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out).set_index(["model", "scale"])
    for k in (2, 3):  # a k x k-channel conv of side 2k-1 per scale, counted by hand (weights + biases)
        assert table.loc[("per-scale-nets", k), "parameters"] == 3 * 3 * k * k * (2 * k - 1) ** 2 + 3 * k * k
    assert table.loc[("rcan", 2), "parameters"] == card_for("rcan")["params"]["x2"]
    assert table.loc[("rcan", 3), "parameters"] == card_for("rcan")["params"]["x3"]
    assert (table.loc["rcan", "checkpoint"] == "untrained").all()
    old = CliRunner().invoke(cli, ["profile", "--models", "srcnn", "--size", "8x8", "--repeat", "1", "--device", "cpu",
                                   "--allow-untrained"])  # the old flag is still accepted
    assert old.exit_code == 0, old.output
