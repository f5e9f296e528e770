"""The runner end to end on small folders the tests make: real Parquet files, real image files, real errors."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sr_bench.errors import UserError
from sr_bench.imaging.resize import imresize
from sr_bench.report.tables import summarize, to_csv
from sr_bench.run.folder import request_differences
from sr_bench.run.request import RunOptions, RunRequest
from sr_bench.run.runner import resume_run, run
from sr_bench.scales import parse_scales
from sr_bench.store import SCHEMA, write_shard


def _natural(h, w, seed=0):
    # smooth-ish content so PSNR is finite and plausible
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float64)
    import torch

    big = imresize(torch.from_numpy(small).permute(2, 0, 1), size=(h, w)).permute(1, 2, 0).numpy()
    return np.clip(np.round(big), 0, 255).astype(np.uint8)


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(_natural(48, 40, 1)).save(d / "a.png")
    Image.fromarray(_natural(37, 45, 2)[:, :, 0]).save(d / "gray.png")  # 1 channel
    rgba = np.dstack([_natural(32, 32, 3), np.full((32, 32), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    Image.fromarray(_natural(6, 6, 4)).save(d / "tiny.png")  # too small for x4
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return d


def test_rows_schema_errors_and_summary(folder, tmp_path):
    result = run(models=["bicubic"], datasets=[str(folder)], scales=parse_scales("2,4"), metrics=["psnr", "ssim"],
                 out=tmp_path / "run", progress=False)
    rows = result.rows
    assert len(rows) == 5 * 2
    files = sorted((tmp_path / "run" / "rows").glob("*.parquet"))
    assert files and all(pq.read_schema(f).names == SCHEMA.names for f in files)
    by = {(r.image, r.scale_text): r for r in rows.itertuples()}
    broken = by[("broken", "2")]  # a data error naming the file, with no numbers
    assert broken.error.startswith(f"cannot read image {folder / 'broken.png'}: ") and broken.error_kind == "data"
    assert pd.isna(broken.psnr) and pd.isna(broken.ssim)
    assert "too small" in by[("tiny", "4")].error
    assert by[("tiny", "2")].error == ""  # 6x6 survives x2 (shave 2 leaves 2x2)
    for name in ("a", "gray", "rgba"):
        r = by[(name, "2")]
        assert r.error == "" and 15 < r.psnr < 80 and 0 < r.ssim <= 1
        assert r.protocol == "matlab" and len(r.protocol_fingerprint) == 16
        assert json.loads(r.package_versions)["torch"]
    # summaries are means of the per-image rows, errors excluded
    summary = summarize(rows)
    x2 = summary[summary.scale_text == "2"].iloc[0]
    ok = rows[(rows.scale_text == "2") & (rows.error == "")]
    assert x2.n_images == len(ok) == 4
    assert x2.psnr == pytest.approx(ok.psnr.mean())
    csv = to_csv(summary)
    assert csv.splitlines()[0] == "model,dataset,scale,n_images,psnr,ssim,lpips"


def test_gray_image_rows_use_gray_values(folder, tmp_path):
    result = run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(2)], metrics=["psnr"],
                 out=tmp_path / "run", progress=False)
    gray = result.rows.set_index("image").loc["gray"]
    # independent: MATLAB pipeline on the gray plane directly
    import torch

    hr = torch.from_numpy(np.asarray(Image.open(folder / "gray.png")).astype(np.float64))[None]
    hr = hr[:, :36, :44]
    lr = torch.floor(imresize(hr, scale=Fraction(1, 2)) + 0.5).clamp(0, 255)
    sr = torch.floor(imresize(lr, scale=2) + 0.5).clamp(0, 255)
    mse = ((sr - hr)[:, 2:-2, 2:-2] ** 2).mean().item()
    assert gray.psnr == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)


def test_resume_measures_only_what_is_missing(folder, tmp_path):
    out = tmp_path / "run"
    first = run(models=["bicubic"], datasets=[str(folder)], scales=parse_scales("2,3"), metrics=["psnr"], out=out,
                progress=False)
    shards = sorted((out / "rows").glob("*.parquet"))
    assert len(shards) == 1  # 5 images < FLUSH_IMAGES: one shard
    # simulate an interruption after two images: keep only their rows
    keep = first.rows[first.rows.image.isin(["a", "gray"])]
    shards[0].unlink()
    write_shard(out, keep.to_dict("records"), "imgs")
    result = resume_run(out, progress=False)
    rows = result.rows
    assert len(rows) == 10 and set(rows.image) == {"a", "gray", "rgba", "tiny", "broken"}
    kept = rows[rows.image.isin(["a", "gray"])]
    assert set(kept.created) == set(keep.created)  # not measured again
    redone = rows[rows.image == "rgba"]
    assert (redone.created > keep.created.max()).all()
    manifest = json.loads((out / "run.json").read_text())
    assert len(manifest["resumed"]) == 1 and manifest["request"]["metrics"] == ["psnr"]


def test_two_workers_give_the_same_rows(folder, tmp_path):
    one = run(models=["bicubic"], datasets=[str(folder)], scales=parse_scales("2,2.5"), metrics=["psnr", "ssim"],
              out=tmp_path / "one", progress=False)
    two = run(models=["bicubic"], datasets=[str(folder)], scales=parse_scales("2,2.5"), metrics=["psnr", "ssim"],
              out=tmp_path / "two", progress=False, workers=2)
    cols = ["image", "scale_text", "psnr", "ssim", "error"]
    a = one.rows[cols].sort_values(["image", "scale_text"]).reset_index(drop=True)
    b = two.rows[cols].sort_values(["image", "scale_text"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_bad_requests_fail_before_work(folder, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(UserError, match="did you mean 'bicubic'"):
        run(models=["bicubc"], datasets=[str(folder)], scales=[Fraction(2)], out=out, progress=False)
    with pytest.raises(UserError, match="did you mean 'psnr'"):
        run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(2)], metrics=["pnsr"], out=out, progress=False)
    with pytest.raises(UserError, match="integer scales only"):
        run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(5, 2)], protocol="matlab", out=out,
            progress=False)
    with pytest.raises(UserError, match="protocol"):
        run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(2)], protocol="matlb", out=out, progress=False)
    with pytest.raises(UserError, match="no weights"):
        run(models=["bicubic=foo.pt"], datasets=[str(folder)], scales=[Fraction(2)], out=out, progress=False)
    assert not out.exists()


def test_decimal_scales_use_metasr_and_exact_sizes(folder, tmp_path):
    result = run(models=["bicubic"], datasets=[str(folder)], scales=parse_scales("1.5:2:0.5"), metrics=["psnr"],
                 out=tmp_path / "run", progress=False)
    rows = result.rows.set_index(["image", "scale_text"])
    assert result.protocol.name == "metasr" and set(result.rows.scale_text) == {"1.5", "2"}
    r = rows.loc[("a", "1.5")]  # 48x40: 48/1.5 = 32 and 40/1.5 is not whole -> 36 -> ceil(24)=24 -> 36
    assert (r.lr_height, r.lr_width, r.hr_height, r.hr_width) == (32, 24, 48, 36)


def test_a_request_round_trips_through_run_json_and_old_requests_still_read():
    req = RunRequest(models=["bicubic", "edsr=w.pt"], datasets=["set5", "./imgs"], scales=parse_scales("2,2.5"),
                     metrics=["psnr"], data_root="/d", lpips_weights="a.pth", plugins=["p.py"], allow_untrained=True,
                     model_opts={"n": [1, 2], "a": "x"}, save_images=True, precision="bf16", tile=64, tile_overlap=8,
                     profile=True)
    assert req.protocol == "metasr"  # auto, resolved for the decimal scale: a request names its rows' protocol
    assert RunRequest.from_json(json.loads(json.dumps(req.to_json()))) == req
    # the request of a run.json from before --model-opt, --save-images, --precision, --tile and --profile
    first = {"models": ["bicubic"], "datasets": ["set5"], "scales": ["2", "3"], "protocol": "matlab",
             "metrics": None, "data_root": None, "lpips_weights": None, "plugins": [], "allow_untrained": False}
    old = RunRequest.from_json(first)
    assert old == RunRequest(models=["bicubic"], datasets=["set5"], scales=[2, 3])
    assert request_differences(first, old.to_json()) == []  # so such a folder continues
    for bad, match in ((dict(tile_overlap=4), "--tile-overlap needs --tile"), (dict(precision="fp61"), "fp16"),
                       (dict(models=["a", "a"]), "appears twice"), (dict(scales=[]), "no scales given")):
        with pytest.raises(UserError, match=match):
            RunRequest(**{"models": ["bicubic"], "datasets": ["set5"], "scales": [2], **bad})
    for bad, match in ((dict(workers=0), "--workers must be >= 1"), (dict(executor="dask"), "unknown executor"),
                       (dict(ray_address="auto"), "needs --executor ray"), (dict(max_memory="4 parsecs"), "size")):
        with pytest.raises(UserError, match=match):
            RunOptions(**bad)
