"""``srbench train`` under torchrun with 2 gloo processes on CPU: the same trajectory as one process with the whole
batch, a SIGKILL-ed run that resumes where it stopped on 2 processes or on 1, and ``--nproc`` launching torchrun.
(Each launch starts 2 Python processes that import torch: about 10 s each on two shared cores.)

Why one process with batch 2B is the reference: each of 2 ranks takes samples r*B .. r*B+B-1 of the global batch
(the union is exactly the one-process batch, checked below), computes the mean L1 over its B samples, and
DistributedDataParallel averages the two gradients, which is the gradient of the mean over all 2B samples. The
only difference is the order of float32 additions (per-rank sums, then the all-reduce), so the weights agree to
float rounding, not bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
from sr_bench.train.patches import ImageBank, step_batch

B = 2  # per-rank batch
LR = 0.02
# SGD, not Adam: Adam's step hardly depends on the gradient's scale, so gradients summed over the ranks instead of
# averaged would pass unnoticed; SGD's step is the gradient times lr
ARGS = ["edsr-baseline", "--scale", "2", "--batch", str(2 * B), "--patch", "8", "--optimizer", "sgd", "--lr", str(LR),
        "--momentum", "0.9", "--seed", "5", "--log-every", "1", "--device", "cpu", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: training steps on one thread


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hr")
    for name, y, x in (("astronaut", 40, 180), ("chelsea", 100, 150), ("coffee", 150, 250)):
        Image.fromarray(np.ascontiguousarray(getattr(skimage.data, name)()[y:y + 40, x:x + 40])).save(d / f"{name}.png")
    return d


def _torchrun(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "-m",
           "sr_bench.train", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _kill_launch(p: subprocess.Popen) -> None:
    """SIGKILL torchrun's workers (each in its own session), then torchrun: a machine going down mid-step."""
    children = set()
    for task in Path(f"/proc/{p.pid}/task").iterdir():
        children |= {int(c) for c in (task / "children").read_text().split()}
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    p.kill()
    p.communicate(timeout=60)
    for pid in children:
        while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower():
            time.sleep(0.05)


def _run2(args: list[str]) -> str:
    p = _torchrun(args)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _kw(images: Path) -> dict:
    return dict(scales="2", batch=2 * B, patch=8, optimizer="sgd", lr=LR, momentum=0.9, seed=5, log_every=1,
                device="cpu", progress=False)


def test_the_ranks_batches_are_the_one_process_batch(images):
    bank = ImageBank(resolve_dataset(str(images)).items, 1 << 30)
    pool = list(range(len(bank)))
    for step in (0, 7):
        s, lr, hr = step_batch(bank, bank.sizes, pool, [Fraction(2)], 8, 5, step, 0, 2 * B)
        parts = [step_batch(bank, bank.sizes, pool, [Fraction(2)], 8, 5, step, r * B, B) for r in (0, 1)]
        assert all(p[0] == s for p in parts)
        assert torch.equal(torch.cat([p[1] for p in parts]), lr) and torch.equal(torch.cat([p[2] for p in parts]), hr)
        assert not torch.equal(parts[0][2], parts[1][2])  # the ranks draw different samples
    # any-scale: every rank draws the step's one scale
    scales = [Fraction(3, 2), Fraction(2), Fraction(5, 2), Fraction(3)]
    drawn = {step_batch(bank, bank.sizes, pool, scales, 8, 5, k, r, 1)[0] for k in range(12) for r in (0, 1)}
    assert len(drawn) > 1
    for k in range(12):
        assert len({step_batch(bank, bank.sizes, pool, scales, 8, 5, k, r, 1)[0] for r in (0, 1, 2)}) == 1


def test_two_ranks_match_one_process_and_survive_a_kill(images, tmp_path):
    data = ["--data", str(images)]
    # 1. a long 2-rank run, SIGKILL-ed (the whole process group: torchrun and its workers) once it has saved
    out = tmp_path / "run.pt"
    if not Path("/proc/self/task").is_dir():
        pytest.skip("finding torchrun's workers to kill reads /proc (Linux)")
    p = _torchrun([*ARGS, *data, "--steps", "100000", "--save-every", "3", "--out", str(out)])
    deadline = time.monotonic() + 240
    while not (out.with_name("run.pt.json").is_file() and out.is_file()):
        assert p.poll() is None, p.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    _kill_launch(p)
    killed_at = int(torch.load(out.with_name("run.pt.resume"), weights_only=True)["step"])
    assert killed_at >= 3 and killed_at % 3 == 0
    total = killed_at + 3
    for suffix in ("", ".json", ".resume"):  # the same interrupted run, to resume on one process below
        shutil.copy(out.with_name("run.pt" + suffix), tmp_path / ("one.pt" + suffix))

    # 2. resumed on 2 ranks, and the same run uninterrupted (through `srbench train --nproc 2`, which runs torchrun)
    _run2([*ARGS, *data, "--steps", str(total), "--save-every", "3", "--resume", "--out", str(out)])
    straight = tmp_path / "straight.pt"
    env = {"OMP_NUM_THREADS": "1"}
    r = CliRunner(env=env).invoke(cli, ["train", *ARGS, *data, "--steps", str(total), "--save-every", "3",
                                        "--nproc", "2", "--out", str(straight)])
    assert r.exit_code == 0, r.output
    a, b = _weights(out), _weights(straight)
    assert all(torch.equal(a[k], b[k]) for k in a)  # resuming continues the same trajectory, bit for bit
    ra, rb = (json.loads(p.with_name(p.name + ".json").read_text()) for p in (out, straight))
    assert ra["losses"] == rb["losses"] and len(ra["losses"]) == total
    assert ra["distributed"] == {"processes": 2, "batch_per_process": B, "backend": "gloo"}
    assert [s["processes"] for s in ra["sessions"]] == [2, 2]

    # 3. one process, batch 2B: the same trajectory to float rounding
    one = train("edsr-baseline", [str(images)], tmp_path / "single.pt", steps=total, **_kw(images))
    c = _weights(one.checkpoint)
    w0 = build("edsr-baseline", "2", {}, torch.device("cpu")).module.state_dict()  # the deterministic init
    moved = torch.sqrt(sum(((c[k] - w0[k]).double() ** 2).sum() for k in c)).item()
    diff = torch.sqrt(sum(((c[k] - b[k]).double() ** 2).sum() for k in c)).item()
    # SGD is linear in the gradient, so float32 rounding in the per-rank sums and the all-reduce (relative ~1e-7)
    # stays of that order in the steps; a few steps of a well-conditioned start do not amplify it much.
    # Measured: ||diff|| / ||moved|| = 8e-7 (0.18e-6 of 0.22); gradients summed instead of averaged would be ~1.
    assert diff < 1e-4 * moved, (diff, moved)
    losses_1, losses_2 = np.array(one.losses)[:, 1], np.array(rb["losses"])[:, 1]
    assert np.allclose(losses_1, losses_2, rtol=1e-5, atol=0), (losses_1, losses_2)
    # the comparison can fail: another seed (other batches) moves the weights by a like amount, not by rounding
    other = _weights(train("edsr-baseline", [str(images)], tmp_path / "other.pt", steps=total,
                           **{**_kw(images), "seed": 6}).checkpoint)
    assert torch.sqrt(sum(((other[k] - c[k]).double() ** 2).sum() for k in c)).item() > 0.1 * moved

    # 4. the 2-rank interrupted run resumed on one process (batch 2B): the same trajectory to float rounding
    res = train("edsr-baseline", [str(images)], tmp_path / "one.pt", steps=total, resume=True, **_kw(images))
    d = _weights(res.checkpoint)
    diff = torch.sqrt(sum(((d[k] - b[k]).double() ** 2).sum() for k in d)).item()
    assert diff < 1e-3 * moved, (diff, moved)
    record = json.loads(res.sidecar.read_text())
    assert [s["processes"] for s in record["sessions"]] == [2, 1]
    assert record["distributed"]["processes"] == 1


def test_batch_must_split_over_the_ranks(images, tmp_path):
    p = _torchrun(["edsr-baseline", "--scale", "2", "--batch", "3", "--patch", "8", "--steps", "1", "--data",
                   str(images), "--device", "cpu", "--no-progress", "--out", str(tmp_path / "w.pt")])
    out, _ = p.communicate(timeout=300)
    assert p.returncode != 0 and "error: --batch 3 (the global batch) does not split over 2 processes" in out, out
