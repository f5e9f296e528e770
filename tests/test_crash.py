"""Crashes of a real ``srbench run`` in a subprocess: SIGKILL mid-image, mid-shard and during a shard's write, then
``--resume`` gives the table of an uninterrupted run with no duplicate row; SIGKILL of the parent of a ``--workers 2``
run leaves no worker behind; SIGTERM saves what is finished and prints the resume command; a second writer is
refused while the first one runs.

The faults come from ``tests/fixtures/faulty_model.py`` (bicubic that kills or blocks its own process at a named
evaluation), so every kill point is exact, and the tests wait on files the run writes, never on a guessed delay.
Every process a test starts is in its own session and is killed with its whole group at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sr_bench.errors import UserError
from sr_bench.run.runner import resume_run, run
from sr_bench.store import load_rows

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "fixtures" / "faulty_model.py"
HEIGHTS = (40, 46, 52, 58, 64, 70)  # im0..im5: every (image, scale) has its own LR height at x2 and x3
KEY = ["model", "dataset", "image", "scale_text"]
VALUES = ["psnr", "ssim", "strategy", "hr_height", "hr_width", "lr_height", "lr_width", "error", "error_kind"]

# `srbench run` with the shard size set and, when asked, a SIGKILL of its own process inside the Nth shard write:
# after the temporary file is complete, before it is renamed to its .parquet name.
DRIVER = """
import os, signal, sys
from sr_bench.run import sink
sink.FLUSH_IMAGES = int(os.environ.get("TEST_FLUSH_IMAGES", "8"))
sink.FLUSH_SECONDS = 1e9
kill_at = int(os.environ.get("TEST_KILL_AT_SHARD_WRITE", "0"))
if kill_at:
    real, seen = os.replace, [0]
    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(".parquet"):
            seen[0] += 1
            if seen[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *args, **kwargs)
    os.replace = replace
from sr_bench.cli import cli
cli(["run", *sys.argv[1:]], prog_name="srbench")
"""


def key(height: int, scale: int) -> str:
    """The faulty model's name of an evaluation (the matlab protocol's LR is floor(h / s) rows high)."""
    return f"{height // scale}@{scale}"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash") / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i, h in enumerate(HEIGHTS):
        small = rng.integers(0, 256, (h // 6, 6, 3)).astype(np.uint8)
        Image.fromarray(small).resize((30, h), Image.BICUBIC).save(folder / f"im{i}.png")
    return folder


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory):
    """The uninterrupted run (in this process) every crashed-and-resumed run must reproduce."""
    out = tmp_path_factory.mktemp("crash-ref") / "ref"
    return run(models=["faulty"], plugins=(str(PLUGIN),), datasets=[str(images)], scales=[Fraction(2), Fraction(3)],
               metrics=["psnr", "ssim"], save_images=True, out=out, progress=False)


class Runs:
    """Subprocesses of one test, each in its own session; ``cleanup`` kills every group they made."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, args, flush_images=8, kill_at_shard_write=0) -> subprocess.Popen:
        env = {**os.environ, "TEST_FLUSH_IMAGES": str(flush_images),
               "TEST_KILL_AT_SHARD_WRITE": str(kill_at_shard_write)}
        p = subprocess.Popen([sys.executable, "-c", DRIVER, *map(str, args)], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.procs.append(p)
        return p

    def finish(self, p: subprocess.Popen, timeout=120) -> tuple[int, str]:
        _, err = p.communicate(timeout=timeout)
        return p.returncode, err

    def cleanup(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the group outlives its leader: workers of a killed parent too
            except (ProcessLookupError, PermissionError):
                pass
            p.communicate()


@pytest.fixture()
def runs():
    r = Runs()
    yield r
    r.cleanup()


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 90.0):
    """Poll until ``condition()`` is truthy; fail at once if ``proc`` ended meanwhile (with its stderr)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before the awaited state: {proc.communicate()[1]}")
        time.sleep(0.02)
    pytest.fail("timed out waiting for the run")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie nobody reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def shards(out: Path) -> list[Path]:
    return sorted((out / "rows").glob("*.parquet"))


def stored_rows(out: Path) -> pd.DataFrame:
    """Every row of every shard, duplicates kept."""
    return pd.concat([pq.read_table(p).to_pandas() for p in shards(out)], ignore_index=True)


def same_table(rows: pd.DataFrame, ref: pd.DataFrame) -> None:
    a = rows.sort_values(KEY).reset_index(drop=True)[KEY + VALUES]
    b = ref.sort_values(KEY).reset_index(drop=True)[KEY + VALUES]
    pd.testing.assert_frame_equal(a, b)


def run_args(images: Path, out: Path, marks: Path, *opts: str) -> list:
    args = ["--plugin", PLUGIN, "--models", "faulty", "--datasets", images, "--scales", "2,3", "--metrics",
            "psnr,ssim", "--save-images", "--out", out, "--no-progress", "--model-opt", f"marks={marks}"]
    for o in opts:
        args += ["--model-opt", o]
    return args


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux_only
def test_sigkill_mid_image_mid_shard_and_in_a_shard_write_then_resume_gives_the_uninterrupted_table(
        images, reference, runs, tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    args = run_args(images, out, marks, f"die_at={key(HEIGHTS[4], 2)}", f"block_at={key(HEIGHTS[5], 3)}")
    resume = ["--resume", out, "--no-progress"]

    # 1. shards of 3 images: im0-im2 saved; im3 finished but only buffered; killed inside im4's first evaluation
    rc, err = runs.finish(runs.start(args, flush_images=3))
    assert rc == -signal.SIGKILL, err
    assert sorted(stored_rows(out)["image"].unique()) == ["im0", "im1", "im2"] and len(stored_rows(out)) == 6

    # 2. resumed: im3, im4 and im5 make the next shard, and the process dies inside its write, after the temporary
    #    file is complete and before the rename: no new shard, a leftover temporary file
    rc, err = runs.finish(runs.start(resume, flush_images=3, kill_at_shard_write=1))
    assert rc == -signal.SIGKILL, err
    assert len(shards(out)) == 1 and list((out / "rows").glob(".tmp-*"))

    # 3. resumed again: SIGKILLed from outside while blocked in im5's x3, with im3, im4 and im5's x2 buffered
    (marks / "hold").touch()
    p = runs.start(resume, flush_images=3)
    wait_for(lambda: list(marks.glob("blocked-*")), p)
    assert len(shards(out)) == 1 and not list((out / "rows").glob(".tmp-*"))  # the resume removed the leftover
    p.send_signal(signal.SIGKILL)
    rc, err = runs.finish(p)
    assert rc == -signal.SIGKILL
    (marks / "hold").unlink()

    # 4. the last resume measures im3, im4 and im5
    rc, err = runs.finish(runs.start(resume, flush_images=3))
    assert rc == 0, err
    stored = stored_rows(out)
    assert not stored.duplicated(KEY).any()  # no evaluation was stored twice
    assert len(stored) == len(reference.rows) == 12
    same_table(load_rows(out), reference.rows)
    for r in load_rows(out).itertuples():  # every stored row has its image, the same pixels as uninterrupted
        png = f"images/faulty/imgs/x{r.scale_text}/{r.image}.png"
        assert np.array_equal(np.asarray(Image.open(out / png)), np.asarray(Image.open(reference.run_dir / png)))


@linux_only
def test_sigkill_of_the_parent_of_two_workers_leaves_no_worker(images, runs, tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    (marks / "hold").touch()  # both workers block in their first forward: busy when the parent dies
    p = runs.start([*run_args(images, out, marks, "block_at=all"), "--workers", "2"])
    def two_blocked():
        pids = {int(m.name.split("-")[1]) for m in marks.glob("blocked-*")}
        return pids if len(pids) >= 2 else None

    workers = wait_for(two_blocked, p)
    spawned = children(p.pid)  # the workers and multiprocessing's helper process
    assert set(workers) <= set(spawned)
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 10
    while any(map(alive, spawned)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in spawned if alive(pid)], "processes of the killed run are still alive after 10 s"


@linux_only
def test_sigterm_saves_the_finished_rows_and_prints_the_resume_command(images, reference, runs, tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    (marks / "hold").touch()
    # one shard for the whole run unless interrupted; stopped in im2's x3: im0, im1 and im2's x2 are finished
    p = runs.start(run_args(images, out, marks, f"block_at={key(HEIGHTS[2], 3)}"), flush_images=100)
    wait_for(lambda: list(marks.glob("blocked-*")), p)
    assert not (out / "rows").exists()
    p.send_signal(signal.SIGTERM)
    rc, err = runs.finish(p)
    (marks / "hold").unlink()
    assert rc == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert f"interrupted: 5 of 12 evaluations are saved in {out}; continue with: srbench run --resume {out}" in err
    assert len(stored_rows(out)) == 5
    same_table(resume_run(out, progress=False).rows, reference.rows)


@linux_only
def test_a_second_writer_is_refused_while_the_first_runs(images, runs, tmp_path):
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    (marks / "hold").touch()
    p = runs.start(run_args(images, out, marks, "block_at=all"))
    wait_for(lambda: list(marks.glob("blocked-*")), p)
    again = dict(models=["faulty"], plugins=(str(PLUGIN),), datasets=[str(images)],
                 scales=[Fraction(2), Fraction(3)], metrics=["psnr", "ssim"], save_images=True, out=out,
                 progress=False, model_opts={"marks": str(marks), "block_at": "all"})
    with pytest.raises(UserError, match=rf"run folder .* is in use by another srbench run \(pid {p.pid} since"):
        run(**again)
    (marks / "hold").unlink()
    rc, err = runs.finish(p)
    assert rc == 0, err
    first = load_rows(out)
    second = run(**again).rows  # the same request into the finished folder: nothing left to measure
    assert sorted(second["created"]) == sorted(first["created"])


@linux_only
def test_sigterm_while_starting_exits_143_and_leaves_no_folder(images, runs, tmp_path):
    # a plugin that takes its time to load: the signal arrives while the models are being built
    marker, plugin, out = tmp_path / "loading", tmp_path / "slow_plugin.py", tmp_path / "run"
    plugin.write_text(f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(60)\n")
    p = runs.start(["--plugin", plugin, "--datasets", images, "--scales", "2", "--out", out, "--no-progress"])
    wait_for(marker.exists, p)
    p.send_signal(signal.SIGTERM)
    rc, err = runs.finish(p)
    assert rc == 128 + signal.SIGTERM, err
    assert "Aborted" not in err and "Traceback" not in err and "interrupted while starting" in err
    assert not out.exists()  # the folder is made only once the request has loaded
