"""``srbench train``'s GPU options on CPU: with none given a step is the plain float32 Adam step (checked against a
loop written out here), gradient clipping is the textbook rescaling, the EMA is the average recomputed in float64
from the weights after every step, bf16/channels-last/compile run and stay close to float32, and throughput is
recorded. Small real runs on image files."""

from __future__ import annotations

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
from sr_bench.train import train
from sr_bench.train.families import build
from sr_bench.train.patches import load_images, step_batch

KW = dict(scales="2", batch=2, patch=10, lr=5e-4, seed=3, save_every=0, log_every=1, device="cpu", progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: training steps on one thread


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hr")
    for name, y, x in (("astronaut", 40, 180), ("coffee", 150, 250)):
        Image.fromarray(np.ascontiguousarray(getattr(skimage.data, name)()[y:y + 48, x:x + 48])).save(d / f"{name}.png")
    return d


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _reference_steps(images: Path, steps: int, clip: float = 0.0) -> dict[str, torch.Tensor]:
    """The training step written out: draw a batch, L1 on the family's forward, optional clipping by the total
    gradient norm (g * c / (||g|| + 1e-6) when the norm exceeds c), Adam."""
    t = build("edsr-baseline", "2", {}, torch.device("cpu"))
    ims = load_images(resolve_dataset(str(images)).items)
    sizes = [tuple(im.shape[-2:]) for im in ims]
    params = [p for p in t.module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=KW["lr"], betas=(0.9, 0.999))
    t.module.train()
    for step in range(steps):
        s, lr, hr = step_batch(ims, sizes, list(range(len(ims))), [Fraction(2)], KW["patch"], KW["seed"], step, 0,
                               KW["batch"])
        pred, target = t.predict(lr, hr, s, None)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(pred, target).backward()
        if clip:
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params))
            if norm > clip:
                for p in params:
                    p.grad.mul_(float(clip / (norm + 1e-6)))
        opt.step()
    return {k: v.detach().clone() for k, v in t.module.state_dict().items()}


def test_no_option_is_the_plain_float32_step(images, tmp_path):
    result = train("edsr-baseline", [str(images)], tmp_path / "w.pt", steps=3, **KW)
    ref, got = _reference_steps(images, 3), _weights(result.checkpoint)
    assert list(ref) == list(got) and all(torch.equal(ref[k], got[k]) for k in ref)  # the same bits
    record = json.loads(result.sidecar.read_text())
    assert record["precision"] == {"name": "fp32", "autocast": None, "tf32": False}
    assert record["ema"] is None and record["clip_grad"] is None and not record["channels_last"]
    # throughput: one entry per loss entry, positive images/s, and the session's overall figure
    assert [s for s, _ in record["throughput"]["log"]] == [s for s, _ in record["losses"]] == [1, 2, 3]
    assert all(v > 0 for _, v in record["throughput"]["log"]) and record["sessions"][0]["images_per_second"] > 0


def test_gradient_clipping_is_the_total_norm_rescaling(images, tmp_path):
    clip = 0.05  # far below the untrained network's gradient norm, so every step is clipped
    result = train("edsr-baseline", [str(images)], tmp_path / "c.pt", steps=3, clip_grad=clip, **KW)
    ref, got = _reference_steps(images, 3, clip), _weights(result.checkpoint)
    plain = _reference_steps(images, 3)
    # Adam divides by the gradient's scale, so clipping moves the weights little (through eps and the moments)
    moved = max((plain[k] - ref[k]).abs().max().item() for k in ref)
    err = max((got[k] - ref[k]).abs().max().item() for k in ref)
    # measured: clipping moves a weight by up to 1.5e-3 here; the loop matches the written-out rescaling to 5e-8
    assert moved > 1e-4 and err < 1e-6, (moved, err)
    assert json.loads(result.sidecar.read_text())["clip_grad"]["max_norm"] == clip


def test_ema_is_the_average_of_the_weights_after_each_step(images, tmp_path):
    decay, steps = 0.6, 4
    straight = train("edsr-baseline", [str(images)], tmp_path / "a.pt", steps=steps, ema=decay, **KW)
    # the optimised weights after each step, read from the resume file of a run continued one step at a time
    # (resuming is bit-exact on CPU: the same trajectory)
    w = [build("edsr-baseline", "2", {}, torch.device("cpu")).module.state_dict()]
    for k in range(1, steps + 1):
        train("edsr-baseline", [str(images)], tmp_path / "b.pt", steps=k, ema=decay, resume=k > 1, **KW)
        w.append(torch.load(tmp_path / "b.pt.resume", weights_only=True)["model"])
    ema = {k: v.double() for k, v in w[0].items()}
    for wk in w[1:]:
        ema = {k: decay * ema[k] + (1 - decay) * wk[k].double() for k in ema}
    got = _weights(straight.checkpoint)
    assert max((got[k].double() - ema[k]).abs().max().item() for k in ema) < 1e-5  # float32 averaging
    assert not all(torch.equal(got[k], w[-1][k]) for k in got)  # PATH is the average, not the last weights
    resumed = _weights(tmp_path / "b.pt")
    assert all(torch.equal(got[k], resumed[k]) for k in got)  # the EMA resumes bit-exactly too
    record = json.loads(straight.sidecar.read_text())
    assert record["ema"]["decay"] == decay and "EMA weights" in record["ema"]["checkpoint"]


def test_bf16_channels_last_and_compile_run_and_stay_close(images, tmp_path):
    fp32 = train("edsr-baseline", [str(images)], tmp_path / "f.pt", steps=2, **KW)
    bf16 = train("edsr-baseline", [str(images)], tmp_path / "h.pt", steps=2, precision="bf16", **KW)
    nhwc = train("edsr-baseline", [str(images)], tmp_path / "n.pt", steps=2, channels_last=True, **KW)
    comp = train("srcnn", [str(images)], tmp_path / "s.pt", steps=2, compile="aot_eager", **KW)
    eager = train("srcnn", [str(images)], tmp_path / "e.pt", steps=2, **KW)
    a, b = np.array(fp32.losses)[:, 1], np.array(bf16.losses)[:, 1]
    assert np.all(np.isfinite(b)) and not np.array_equal(a, b)  # autocast did run ...
    assert np.allclose(a, b, rtol=2e-2)  # ... and bfloat16's 8-bit mantissa keeps the L1 within ~1%
    assert all(v.dtype == torch.float32 for v in _weights(bf16.checkpoint).values())  # weights stay float32
    f, n = _weights(fp32.checkpoint), _weights(nhwc.checkpoint)
    assert all(v.is_contiguous() for v in n.values())  # a checkpoint never carries the NHWC layout
    assert max((f[k] - n[k]).abs().max().item() for k in f) < 1e-5  # the same float32 arithmetic, reordered
    c, e = _weights(comp.checkpoint), _weights(eager.checkpoint)
    assert list(c) == list(e) and max((c[k] - e[k]).abs().max().item() for k in c) < 1e-5
    record = json.loads(bf16.sidecar.read_text())
    assert record["precision"]["autocast"] == "bfloat16" and record["sessions"][0]["precision"] == "bf16"
    assert json.loads(comp.sidecar.read_text())["compile"] == "aot_eager"


@pytest.mark.parametrize("args,needle", [
    (["--precision", "fp16"], "fp16 is not offered for training"),
    (["--precision", "tf32", "--device", "cpu"], "--precision tf32 on cpu: TF32 is a CUDA tensor-core mode"),
    (["--ema", "1"], "--ema must be a decay in [0, 1)"),
    (["--clip-grad", "-1"], "--clip-grad must be a gradient norm >= 0"),
])
def test_option_errors_are_one_line(args, needle, images, tmp_path):
    r = CliRunner().invoke(cli, ["train", "edsr-baseline", "--scale", "2", "--data", str(images), "--out",
                                 str(tmp_path / "w.pt"), "--no-progress", *args])
    assert r.exit_code == 2 and r.output.startswith("error: ") and needle in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_resume_must_repeat_ema_and_clipping(images, tmp_path):
    train("edsr-baseline", [str(images)], tmp_path / "w.pt", steps=1, ema=0.9, **KW)
    with pytest.raises(Exception, match="--resume: --ema is 0.0 here but 0.9"):
        train("edsr-baseline", [str(images)], tmp_path / "w.pt", steps=2, resume=True, **KW)


def test_batches_made_ahead_on_a_thread_change_nothing(images, tmp_path):
    inline = train("edsr-baseline", [str(images)], tmp_path / "a.pt", steps=3, prefetch=0, **KW)
    ahead = train("edsr-baseline", [str(images)], tmp_path / "b.pt", steps=3, prefetch=2, **KW)
    assert inline.sha256 == ahead.sha256 and inline.losses == ahead.losses


def test_a_non_finite_loss_stops_before_anything_is_written(images, tmp_path):
    # lr 1e30: the first step's weights are ~1e30, the second forward overflows float32; the loss is read at the
    # first --log-every boundary, so the run stops there with nothing saved (save_every 0: only at the end)
    with pytest.raises(Exception, match=r"the loss became (nan|inf) at or before step 4 \(x2\); lower --lr"):
        train("edsr-baseline", [str(images)], tmp_path / "w.pt", steps=8, **{**KW, "lr": 1e30, "log_every": 4})
    assert not (tmp_path / "w.pt").exists() and not (tmp_path / "w.pt.resume").exists()
