"""``srbench train``: real, small training runs on CPU (EDSR-baseline, LIIF), reloaded through the runner.

Everything is the real pipeline: images on disk, MATLAB bicubic LR, the model's own network, Adam, the files on
disk, ``sr_bench.run.runner.run`` loading them strictly. Nets and step counts are kept small so the file runs in
well under a minute on two shared cores.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.data import resolve_dataset
from sr_bench.imaging.resize import imresize
from sr_bench.models import create_model
from sr_bench.protocols.matlab import MatlabProtocol
from sr_bench.provenance import package_versions
from sr_bench.run.runner import run
from sr_bench.train import train
from sr_bench.train.families import parse_train_scales
from sr_bench.train.patches import hr_side, load_images, random_batch

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: training steps on one thread


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Three 96x96 crops of scikit-image photographs (textured regions), as PNG files in a folder."""
    d = tmp_path_factory.mktemp("hr")
    for name, y, x in (("astronaut", 40, 180), ("chelsea", 100, 150), ("coffee", 150, 250)):
        arr = getattr(skimage.data, name)()[y:y + 96, x:x + 96]
        Image.fromarray(np.ascontiguousarray(arr)).save(d / f"{name}.png")
    return d


@pytest.fixture(scope="module")
def edsr(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("edsr") / "edsr_x2.pt"
    result = train("edsr-baseline", [str(images)], out, scales="2", steps=60, batch=4, patch=16, lr=5e-4,
                   log_every=1, save_every=25, seed=1, device="cpu", progress=False)
    return result


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------------------- data ----
def test_pairs_are_the_protocol_degradation_and_seeded(images):
    ims = load_images(resolve_dataset(str(images)).items)
    for s in (Fraction(2), Fraction(5, 2), Fraction(13, 10)):
        lr, hr = random_batch(ims, [0, 1, 2], 3, 12, s, torch.Generator().manual_seed(0))
        assert lr.shape == (3, 3, 12, 12) and hr.shape == (3, 3, hr_side(12, s), hr_side(12, s))
        hr255, lr255 = (hr.double() * 255).round(), (lr.double() * 255).round()
        assert torch.equal(hr255 / 255, hr.double().mul(255).round() / 255)
        # the LR is MATLAB imresize(HR, 1/s) rounded to uint8: what the matlab/metasr protocols feed a model
        assert torch.equal(lr255, torch.floor(imresize(hr255, scale=1 / s) + 0.5).clamp(0, 255))
        if s == 2:
            assert torch.equal(lr255[0], MatlabProtocol().make_lr(hr255[0], 2))
    first, again, other = (random_batch(ims, [0, 1, 2], 3, 12, Fraction(2), torch.Generator().manual_seed(seed))
                           for seed in (0, 0, 1))
    assert torch.equal(again[1], first[1]) and not torch.equal(other[1], first[1])


def test_scale_ranges():
    assert parse_train_scales("2") == [Fraction(2)]
    assert parse_train_scales("1:4")[0] == Fraction(101, 100) and parse_train_scales("1:4")[-1] == 4
    assert len(parse_train_scales("1:4")) == 300
    assert parse_train_scales("1.1:2:0.1,3") == [Fraction(11 + i, 10) for i in range(10)] + [Fraction(3)]


# ------------------------------------------------------------------------------------------------- training ----
def test_loss_decreases(edsr):
    losses = [loss for _, loss in edsr.losses]
    assert [step for step, _ in edsr.losses] == list(range(1, 61))
    first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
    assert last < 0.6 * first, (first, last)


def test_checkpoint_reloads_strictly_through_the_runner_and_beats_untrained(edsr, images, tmp_path):
    ckpt = edsr.checkpoint
    sha = _sha256(ckpt)
    assert edsr.sha256 == sha
    # a plain state_dict with exactly the official EDSR-PyTorch keys of a x2 baseline
    official = create_model("edsr-baseline", allow_untrained=True, scale=2).net(2).state_dict()
    sd = _state_dict(ckpt)
    assert list(sd) == list(official) and all(sd[k].shape == official[k].shape for k in sd)

    trained = run(models=[f"edsr-baseline={ckpt}"], datasets=[str(images)], scales=[Fraction(2)], metrics=["psnr"],
                  out=tmp_path / "trained", device="cpu", progress=False).rows
    untrained = run(models=["edsr-baseline"], datasets=[str(images)], scales=[Fraction(2)], metrics=["psnr"],
                    out=tmp_path / "untrained", device="cpu", allow_untrained=True, progress=False).rows
    assert (trained["error"] == "").all() and len(trained) == 3
    assert (trained["checkpoint_sha256"] == sha).all()
    assert not trained["untrained"].any() and untrained["untrained"].all()
    pairs = trained.set_index("image")["psnr"].to_dict(), untrained.set_index("image")["psnr"].to_dict()
    for image in pairs[0]:
        assert pairs[0][image] > pairs[1][image] + 10.0, pairs  # measured: about +15 dB

    record = json.loads(edsr.sidecar.read_text())
    assert record["checkpoint"] == {"file": ckpt.name, "sha256": sha, "layout": "state_dict"}
    assert record["model"] == "edsr-baseline" and record["variant"] == "baseline" and record["scales"] == ["2"]
    assert record["steps_done"] == 60 and record["seed"] == 1 and record["batch"] == 4
    assert [tuple(x) for x in record["losses"]] == [tuple(x) for x in edsr.losses]
    assert record["data"]["names"] == [images.name] and record["data"]["images"] == 3
    assert len(record["data"]["files_sha256"]) == 64
    assert record["lr"]["schedule"] == [[0, 5e-4]] and record["package_versions"] == package_versions()
    assert record["device"].startswith("cpu")
    assert record["run_with"] == f"srbench run --models edsr-baseline={ckpt} --scales 2"


@pytest.mark.parametrize("model,scales", [("edsr-baseline", "2"), ("liif", "1.5:3")])
def test_resume_is_bit_identical(model, scales, images, tmp_path):
    kw = dict(scales=scales, batch=2, patch=10, lr=5e-4, lr_halve_every=3, seed=7, save_every=0, log_every=1,
              device="cpu", progress=False)
    straight = train(model, [str(images)], tmp_path / "a.pt", steps=6, **kw)
    train(model, [str(images)], tmp_path / "b.pt", steps=3, **kw)
    resumed = train(model, [str(images)], tmp_path / "b.pt", steps=6, resume=True, **kw)
    a, b = _state_dict(tmp_path / "a.pt"), _state_dict(tmp_path / "b.pt")
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.sha256 == resumed.sha256 == _sha256(tmp_path / "b.pt")
    assert straight.losses == resumed.losses  # the same batches, not just the same end point
    record = json.loads((tmp_path / "b.pt.json").read_text())
    assert [(s["from_step"], s["to_step"]) for s in record["sessions"]] == [(0, 3), (3, 6)]
    assert record["lr"]["schedule"] == [[0, 5e-4], [3, 2.5e-4]]


def test_any_scale_model_trains_at_decimal_scales_and_runs_at_one(images, tmp_path):
    out = tmp_path / "liif.pt"
    result = train("liif", [str(images)], out, scales="1.5:3", steps=4, batch=2, patch=12, log_every=1,
                   device="cpu", progress=False)
    record = json.loads((tmp_path / "liif.pt.json").read_text())
    assert record["scales"][0] == "1.5" and record["scales"][-1] == "3" and len(record["scales"]) == 151
    assert record["scale_sampling"].startswith("one scale per batch")
    rows = run(models=[f"liif={out}"], datasets=[str(images)], scales=[Fraction(5, 2)], metrics=["psnr"],
               out=tmp_path / "r", device="cpu", progress=False).rows
    assert (rows["error"] == "").all() and (rows["scale_text"] == "2.5").all()
    assert (rows["checkpoint_sha256"] == result.sha256).all() and not rows["untrained"].any()
    assert rows["psnr"].notna().all()


def test_y_only_model_trains_on_y_and_reloads(images, tmp_path):
    out = tmp_path / "srcnn.pt"
    result = train("srcnn", [str(images)], out, scales="2,3", steps=3, batch=2, patch=10, log_every=1,
                   device="cpu", progress=False)
    assert json.loads((tmp_path / "srcnn.pt.json").read_text())["loss"].startswith("L1 on Y")
    model = create_model("srcnn", checkpoint=str(out))
    assert model.checkpoint_sha256 == result.sha256 and not model.untrained
    lr = torch.rand(1, 3, 10, 12, dtype=torch.float64)
    assert model.super_resolve(lr, Fraction(3), (30, 36)).shape == (1, 3, 30, 36)


# ------------------------------------------------------------------------------------------------------- CLI ----
def test_cli_trains_and_prints_how_to_evaluate(images, tmp_path):
    out = tmp_path / "w.pt"
    r = CliRunner().invoke(cli, ["train", "edsr-baseline", "--scale", "3", "--data", str(images), "--out", str(out),
                                 "--steps", "2", "--batch", "1", "--patch", "8", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert f"evaluate: srbench run --models edsr-baseline={out} --scales 3" in r.stdout
    assert out.is_file() and (tmp_path / "w.pt.json").is_file() and (tmp_path / "w.pt.resume").is_file()
    again = CliRunner().invoke(cli, ["train", "edsr-baseline", "--scale", "3", "--data", str(images), "--out",
                                     str(out), "--steps", "2"])
    assert again.exit_code == 2 and "exists; add --resume" in again.output


@pytest.mark.parametrize("args,needle", [
    (["edsr-basline", "--scale", "2"], "unknown model 'edsr-basline'; did you mean 'edsr-baseline'"),
    (["bicubic"], "model 'bicubic' is not learned"),
    (["edsr-baseline"], "one network per scale: add --scale 2"),
    (["edsr-baseline", "--scale", "2.5"], "trains x2, x3, x4 (one network each), not x2.5"),
    (["edsr-baseline", "--scale", "2,3"], "train one scale per run"),
    (["srcnn", "--scales", "2:6"], "trains scales in (1, 4], not x4.01"),
    (["edsr+", "--scale", "2"], "train 'edsr'"),
    (["edsr-baseline", "--scale", "2", "--steps", "0"], "--steps must be a whole number >= 1"),
    (["edsr-baseline", "--scale", "2", "--data", "no/such/folder"], "dataset folder no/such/folder does not exist"),
    (["edsr-baseline", "--scale", "2", "--resume"], "--resume: no resume file"),
    (["edsr-baseline", "--scale", "2", "--out", "{file}/w.pt"], "cannot write to"),
    (["edsr-baseline", "--scale", "2", "--patch", "60"], "lower --patch to 48"),
    (["edsr-baseline", "--scale", "2", "--loss", "l3"], "unknown loss 'l3'; did you mean 'l1'"),
    (["edsr-baseline", "--scale", "2", "--optimizer", "adamw"], "unknown optimizer 'adamw'; did you mean 'adam'"),
    (["edsr-baseline", "--scale", "2", "--lr-gamma", "2"], "--lr-gamma must be in (0, 1]"),
    (["edsr-baseline", "--scale", "2", "--betas", "0.9"], "--betas must be two numbers in [0, 1)"),
])
def test_one_line_errors(args, needle, images, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    if "--data" not in args:
        args += ["--data", str(images)]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "w.pt")]
    r = CliRunner().invoke(cli, ["train", *args, "--no-progress"])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and needle in r.output, r.output
    assert "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1, r.output
