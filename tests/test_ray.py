"""``--executor ray``: a real Ray cluster (started by the test, then by the runner itself) evaluates the same rows
as a local run, images travel as bytes, an interrupted Ray run resumes, and a worker killed mid-image costs nothing
but a retry on another worker."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.run.runner import run
from sr_bench.store import load_rows

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sr_bench[ray]'; the test extra has it)")

SCALES = [Fraction(2), Fraction(5, 2)]
KEY = ["model", "dataset", "image", "scale_text"]
PLUGIN = Path(__file__).resolve().parent / "fixtures" / "faulty_model.py"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs") / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        base = np.add.outer(np.arange(40 + 3 * i), np.arange(52)).astype(np.float64)
        img = np.stack([base * (c + 1) % 256 for c in range(3)], -1) + rng.normal(0, 8, (40 + 3 * i, 52, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


@pytest.fixture(scope="module")
def cluster():
    # two logical GPUs: Ray schedules GPU requests against them (no CUDA here, so actors run their models on CPU)
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _sorted(rows):
    return rows.sort_values(KEY).reset_index(drop=True)


def test_ray_rows_equal_local_rows(images, cluster, tmp_path):
    common = dict(models=["bicubic", "srcnn"], datasets=[str(images)], scales=SCALES, protocol="metasr",
                  metrics=["psnr", "ssim"], allow_untrained=True, progress=False)
    local = _sorted(run(out=tmp_path / "local", **common).rows)
    remote = _sorted(run(out=tmp_path / "ray", executor="ray", workers=2, **common).rows)
    assert len(local) == len(remote) == 6 * 2 * 2
    assert local[KEY].equals(remote[KEY])
    ok = local["error"] == ""
    assert (ok == (remote["error"] == "")).all() and (~ok).sum() == 4  # broken.png: an error row per model/scale
    assert "broken" in remote.loc[~ok, "error"].iloc[0] or "broken" in remote.loc[~ok, "image"].iloc[0]
    # the same float64 code on the same bytes; only torch's thread count differs (1 per actor vs the process's)
    np.testing.assert_allclose(remote.loc[ok, "psnr"], local.loc[ok, "psnr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote.loc[ok, "ssim"], local.loc[ok, "ssim"], rtol=0, atol=1e-12)
    assert set(remote["device"]) == {"cpu:x86_64:1threads"} or all("1threads" in d for d in remote["device"])


def test_ray_actors_request_gpus_and_measure_the_precision_drift(images, cluster, tmp_path):
    common = dict(models=["srcnn"], datasets=[str(images)], scales=SCALES, protocol="metasr", metrics=["psnr"],
                  allow_untrained=True, progress=False, device="cpu", precision="bf16", drift_images=3)
    local = run(out=tmp_path / "local", **common)
    remote = run(out=tmp_path / "ray", executor="ray", workers=2, gpus_per_worker=1, **common)
    assert _sorted(local.rows)[KEY].equals(_sorted(remote.rows)[KEY])
    np.testing.assert_allclose(_sorted(remote.rows)["psnr"], _sorted(local.rows)["psnr"], rtol=0, atol=1e-6)
    a, b = local.precision["drift"], remote.precision["drift"]
    # the first 3 jobs (broken, im0, im1) carry the fp32 reference from the actors back to the driver
    assert a["images"] == b["images"] == 2 and b["models"]["srcnn"]["evaluations"] == 4
    assert b["models"]["srcnn"]["mean_abs_dpsnr"] == pytest.approx(a["models"]["srcnn"]["mean_abs_dpsnr"], abs=1e-6)
    # each actor holds one of the two GPUs: a third GPU per actor is more than the cluster has
    with pytest.raises(UserError, match=r"has 2 GPU\(s\) for --workers 2 x --gpus-per-worker 1.5"):
        run(out=tmp_path / "too", executor="ray", workers=2, gpus_per_worker=1.5, **common)


def test_ray_run_resumes_an_interrupted_run(images, cluster, tmp_path):
    out = tmp_path / "r"
    full = run(models=["bicubic"], datasets=[str(images)], scales=SCALES, protocol="metasr", metrics=["psnr"],
               out=out, executor="ray", workers=2, progress=False)
    shards = sorted((out / "rows").glob("*.parquet"))  # one, or more when the run outlasted FLUSH_SECONDS
    assert shards
    kept = load_rows(out)
    # simulate an interruption: drop the shards, keep the rows of two images in a new one
    from sr_bench.store import write_shard

    for shard in shards:
        shard.unlink()
    partial = kept[kept["image"].isin(["im0", "im1"])]
    write_shard(out, partial.to_dict("records"), "tiny")
    res = CliRunner().invoke(cli, ["run", "--resume", str(out), "--executor", "ray", "--workers", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    again = _sorted(load_rows(out))
    assert len(again) == len(full.rows)
    assert again[KEY].equals(_sorted(full.rows)[KEY])
    np.testing.assert_array_equal(again["psnr"].fillna(-1), _sorted(full.rows)["psnr"].fillna(-1))


def test_runner_starts_its_own_local_cluster_and_errors_are_one_line(images, tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    res = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", str(images), "--scales", "2",
                                   "--executor", "ray", "--workers", "1", "--no-progress", "--metrics", "psnr",
                                   "--out", str(tmp_path / "own")])
    assert res.exit_code == 0, res.output
    assert not ray.is_initialized()  # the runner shut down the cluster it started
    with pytest.raises(UserError, match="--ray-address needs --executor ray"):
        run(models=["bicubic"], datasets=[str(images)], scales=SCALES, ray_address="auto", out=tmp_path / "x")
    with pytest.raises(UserError, match="unknown executor 'rya'.*ray"):
        run(models=["bicubic"], datasets=[str(images)], scales=SCALES, executor="rya", out=tmp_path / "y")
    shutil.rmtree(tmp_path / "own")


def test_a_killed_worker_s_image_is_retried_on_another_worker(images, cluster, tmp_path):
    common = dict(models=["faulty"], plugins=(str(PLUGIN),), datasets=[str(images)], scales=SCALES,
                  protocol="metasr", metrics=["psnr", "ssim"], progress=False)
    local = _sorted(run(out=tmp_path / "local", **common).rows)
    # the faulty model (bicubic) SIGKILLs the actor process that first runs im2 x2 (named by its LR height)
    lr_height = int(local.set_index(["image", "scale_text"]).loc[("im2", "2"), "lr_height"])
    marks = tmp_path / "marks"
    marks.mkdir()
    remote = _sorted(run(out=tmp_path / "ray", executor="ray", workers=2, **common,
                         model_opts={"marks": str(marks), "die_at": f"{lr_height}@2"}).rows)
    assert (marks / f"died-{lr_height}@2").exists()  # an actor did die in that image
    assert local[KEY].equals(remote[KEY]) and local["error_kind"].equals(remote["error_kind"])
    ok = local["error"] == ""
    assert ok.equals(remote["error"] == "") and ok.sum() == 10  # only broken.png's rows are errors, as locally
    np.testing.assert_allclose(remote.loc[ok, "psnr"], local.loc[ok, "psnr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote.loc[ok, "ssim"], local.loc[ok, "ssim"], rtol=0, atol=1e-12)
