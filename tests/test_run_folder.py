"""A run folder holds one request, its data's hashes, and rows saved by count and by time; what fails is told
apart (data or code) and sets the exit status; impossible requests fail before the first image."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import DATA, SHARED, need_shared
from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.run import sink
from sr_bench.run.outcome import exit_status, failure_summary
from sr_bench.run.progress import Progress
from sr_bench.run.runner import resume_run, run
from sr_bench.store import load_rows

PLUGIN = Path(__file__).resolve().parent / "fixtures" / "faulty_model.py"
SCALES = [Fraction(2), Fraction(3)]


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(5)
    for i, h in enumerate((30, 36, 42)):
        Image.fromarray(rng.integers(0, 256, (h, 24, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    return d


def _cli(*args):
    return CliRunner().invoke(cli, ["run", *map(str, args)])


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# ------------------------------------------------------------------------------------------ one request only ----
def test_the_same_request_continues_and_another_is_refused(folder, tmp_path):
    out = tmp_path / "run"
    base = ["--datasets", folder, "--metrics", "psnr", "--out", out, "--no-progress"]
    assert _cli(*base, "--scales", "2,3").exit_code == 0
    before = (out / "run.json").read_text(), sorted(p.name for p in (out / "rows").iterdir())

    line = _one_line(_cli(*base, "--scales", "2,4"))
    assert "holds another request: --scales 2,4 (the run has 2,3)" in line and f"--resume {out}" in line
    line = _one_line(_cli(*base, "--scales", "2,3", "--models", "bicubic,srcnn", "--allow-untrained"))
    assert "--models bicubic,srcnn (the run has bicubic)" in line
    assert "--allow-untrained True (the run has False)" in line
    assert ((out / "run.json").read_text(), sorted(p.name for p in (out / "rows").iterdir())) == before

    again = _cli(*base, "--scales", "2,3")  # the same request: a resume with nothing left to measure
    assert again.exit_code == 0, again.output
    assert len(json.loads((out / "run.json").read_text())["resumed"]) == 1
    assert sorted(p.name for p in (out / "rows").iterdir()) == before[1]


def test_resume_says_which_options_it_ignores(folder, tmp_path):
    out = tmp_path / "run"
    first = _cli("--datasets", folder, "--metrics", "psnr", "--scales", "2", "--out", out, "--no-progress")
    assert first.exit_code == 0, first.output
    r = _cli("--resume", out, "--scales", "3", "--models", "edsr", "--no-progress", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert f"note: --resume runs the request stored in {out / 'run.json'}; ignoring --models, --scales" in r.stderr
    assert set(load_rows(out)["scale_text"]) == {"2"}


def test_a_folder_of_other_files_and_an_unwritable_out_are_one_line(folder, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a run")
    line = _one_line(_cli("--datasets", folder, "--out", tmp_path / "mine", "--no-progress"))
    assert "holds other files (notes.txt) and no run.json" in line
    line = _one_line(_cli("--datasets", folder, "--out", folder, "--no-progress"))  # a folder of images
    assert "holds other files (im0.png, im1.png, im2.png) and no run.json" in line
    assert sorted(p.name for p in folder.iterdir()) == ["im0.png", "im1.png", "im2.png"]  # left untouched
    (tmp_path / "file").write_text("")
    line = _one_line(_cli("--datasets", folder, "--out", tmp_path / "file" / "run", "--no-progress"))
    assert "cannot create the run folder" in line and "is a file" in line
    if Path("/proc/self").is_dir():  # not writable even for root
        assert "cannot write the run folder" in _one_line(_cli("--datasets", folder, "--out", "/proc/self/run",
                                                               "--no-progress"))


# ------------------------------------------------------------------------------------------------- the data ----
def test_run_json_records_the_data_and_resume_refuses_changed_files(folder, tmp_path):
    out = tmp_path / "run"
    first = run(models=["bicubic"], datasets=[str(folder)], scales=SCALES, metrics=["psnr"], out=out, progress=False)
    record = json.loads((out / "run.json").read_text())["datasets"][0]
    assert record["files_sha256"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                      for p in sorted(folder.glob("*.png"))}
    resume_run(out, progress=False)  # unchanged data: fine

    arr = np.asarray(Image.open(folder / "im1.png")).copy()
    arr[0, 0, 0] ^= 1  # one pixel
    Image.fromarray(arr).save(folder / "im1.png")
    with pytest.raises(UserError, match=r"dataset imgs: file im1.png changed since the run started; restore"):
        resume_run(out, progress=False)
    Image.fromarray(arr).save(folder / "im9.png")
    with pytest.raises(UserError, match=r"file im1.png changed since the run started \(and 1 more\)"):
        resume_run(out, progress=False)
    (folder / "im1.png").unlink()
    with pytest.raises(UserError, match=r"file im1.png is gone since the run started \(and 1 more\)"):
        resume_run(out, progress=False)
    (folder / "im1.png").write_bytes((folder / "im0.png").read_bytes())
    (folder / "im0.png").unlink()
    with pytest.raises(UserError, match=r"file im1.png changed .* \(and 2 more\)"):  # + im0 gone, im9 new
        resume_run(out, progress=False)
    (folder / "im1.png").rename(folder / "im0.png")
    (folder / "im9.png").rename(folder / "im1.png")
    with pytest.raises(UserError, match="file im1.png changed"):  # restored name, other pixels
        run(models=["bicubic"], datasets=[str(folder)], scales=SCALES, metrics=["psnr"], out=out, progress=False)
    # a run.json from before the hashes were recorded resumes without the check
    manifest = json.loads((out / "run.json").read_text())
    del manifest["datasets"][0]["files_sha256"]
    (out / "run.json").write_text(json.dumps(manifest))
    assert len(resume_run(out, progress=False).rows) == len(first.rows)


def test_resume_finds_its_data_in_a_new_shell_and_after_a_move(tmp_path, monkeypatch):
    """A run started with SRBENCH_DATA and interrupted: the printed command finishes it in a shell without the
    variable, and after the data moved, --resume with --data-root finishes it (the files' hashes still match)."""
    if not (DATA / "Set5").is_dir():
        need_shared(DATA / "Set5")
    import shlex
    import shutil

    from sr_bench.run.sink import Sink

    root = tmp_path / "a"
    shutil.copytree(DATA / "Set5", root / "Set5")
    monkeypatch.chdir(tmp_path)  # no ./datasets here, and an empty user cache: only the recorded places hold Set5
    env = {"SRBENCH_DATA": str(root), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    collect = Sink.collect

    def interrupted(self, *args, **kwargs):  # Ctrl-C once the first rows arrived (they are saved)
        collect(self, *args, **kwargs)
        raise KeyboardInterrupt

    def start(out):
        monkeypatch.setattr(Sink, "collect", interrupted)
        r = CliRunner().invoke(cli, ["run", "--datasets", "set5", "--scales", "2,3", "--metrics", "psnr", "--out",
                                     str(out), "--no-progress"], env=env)
        monkeypatch.setattr(Sink, "collect", collect)
        assert r.exit_code == 130 and len(load_rows(out)) == 1, r.output  # baby x2, then Ctrl-C
        return r.stderr.split("continue with: ")[1].strip()

    command = start(tmp_path / "one")
    assert command == f"srbench run --resume {tmp_path / 'one'} --data-root {root} --no-progress"
    assert json.loads((tmp_path / "one" / "run.json").read_text())["datasets"][0]["folder"] == str(root / "Set5")
    done = CliRunner().invoke(cli, shlex.split(command)[1:], env={**env, "SRBENCH_DATA": None})
    assert done.exit_code == 0 and len(load_rows(tmp_path / "one")) == 10, done.output

    start(tmp_path / "two")
    root.rename(tmp_path / "b")
    lost = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path / "two")], env={**env, "SRBENCH_DATA": None})
    assert lost.exit_code == 2 and "dataset Set5 not found" in lost.stderr, lost.output
    moved = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path / "two"), "--data-root", str(tmp_path / "b")],
                               env={**env, "SRBENCH_DATA": None})
    assert moved.exit_code == 0 and "ignoring" not in moved.stderr, moved.output
    rows = load_rows(tmp_path / "two").sort_values(["image", "scale_text"])
    full = load_rows(tmp_path / "one").sort_values(["image", "scale_text"])
    assert rows["psnr"].tolist() == full["psnr"].tolist()  # the same numbers as the run resumed in place


def test_card_datasets_record_the_card_hashes(tmp_path):
    if not (DATA / "Set5").is_dir():
        need_shared(DATA / "Set5")
    from sr_bench.data.cards import find_card

    run(models=["bicubic"], datasets=["set5"], data_root=str(DATA), scales=[Fraction(4)], metrics=["psnr"],
        out=tmp_path / "run", progress=False)
    record = json.loads((tmp_path / "run" / "run.json").read_text())["datasets"][0]
    card = {f.name: f.sha256 for f in find_card("set5").files}
    assert record["matches_card"] is True and record["files_sha256"] == card


# ------------------------------------------------------------------------------------------ saving as we go ----
def test_rows_are_saved_by_count_and_by_time(folder, tmp_path, monkeypatch):
    common = dict(models=["bicubic"], datasets=[str(folder)], scales=SCALES, metrics=["psnr"], progress=False)
    monkeypatch.setattr(sink, "FLUSH_SECONDS", 1e9)
    monkeypatch.setattr(sink, "FLUSH_IMAGES", 2)
    by_count = run(out=tmp_path / "count", **common)
    sizes = sorted(pq.read_metadata(p).num_rows for p in (tmp_path / "count" / "rows").glob("*.parquet"))
    assert sizes == [2, 4]  # two images, then the last one at the end
    # with no time between shards allowed, every scale of every image is saved as soon as it is measured
    monkeypatch.setattr(sink, "FLUSH_SECONDS", 0.0)
    monkeypatch.setattr(sink, "FLUSH_IMAGES", 100)
    by_time = run(out=tmp_path / "time", **common)
    shards = [pq.read_table(p).to_pandas() for p in (tmp_path / "time" / "rows").glob("*.parquet")]
    assert sorted((s["image"].iloc[0], s["scale_text"].iloc[0], len(s)) for s in shards) == [
        (f"im{i}", st, 1) for i in range(3) for st in ("2", "3")]
    assert by_time.rows[["image", "scale_text", "psnr"]].equals(by_count.rows[["image", "scale_text", "psnr"]])


def test_no_progress_logs_each_saved_shard(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(sink, "FLUSH_IMAGES", 2)
    out = tmp_path / "run"
    r = _cli("--datasets", folder, "--models", "bicubic", "--scales", "2,3", "--metrics", "psnr", "--out", out,
             "--no-progress")
    assert r.exit_code == 0, r.output
    logged = [line for line in r.stderr.splitlines() if line.startswith("saved ")]
    files = sorted(p.name for p in (out / "rows").glob("*.parquet"))
    assert len(logged) == len(files) == 2
    assert logged[0].startswith("saved 4 row(s) of 2 imgs image(s) to rows/") and "4/6 evaluations done" in logged[0]
    assert logged[-1].endswith("6/6 evaluations done; ETA bicubic 0s")


def test_progress_names_the_latest_evaluation_and_an_eta_per_model():
    p = Progress(total=8, done=0, todo={"a": 4, "b": 4}, enabled=True, parallel=1)
    assert p.eta() == {"a": None, "b": None}  # nothing measured yet
    p.rows([{"model": "a", "dataset": "Set5", "image": "x", "scale_text": "2.5", "seconds": 1.0},
            {"model": "b", "dataset": "Set5", "image": "x", "scale_text": "2.5", "seconds": None}])
    eta = p.eta()
    assert eta["a"] >= 3 * 1.0 and eta["b"] is None  # three evaluations of at least a second each are left
    assert p.bar.desc.startswith("b Set5 x2.5") and "ETA a " in p.eta_text() and "b ?" in p.eta_text()
    p.rows([{"model": "a", "dataset": "Set5", "image": "y", "scale_text": "2.5", "seconds": 1.0}] * 3)
    assert p.eta()["a"] == 0.0
    p.close()


# ------------------------------------------------------------------------------------- failures and exit ----
def test_error_kinds_summary_and_exit_status(folder, tmp_path):
    (folder / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(folder / "tiny.png")  # too small for x3 (and x2's shave)
    data_only = _cli("--datasets", folder, "--scales", "2,3", "--metrics", "psnr", "--out", tmp_path / "d",
                     "--no-progress")
    assert data_only.exit_code == 0, data_only.output
    rows = load_rows(tmp_path / "d")
    bad = rows[rows["error"] != ""]
    assert set(bad["error_kind"]) == {"data"} and set(rows.loc[rows["error"] == "", "error_kind"]) == {""}
    assert f"{len(bad)} of 10 evaluations failed: {len(bad)} data (e.g. imgs/broken x2 bicubic: cannot read" in \
        data_only.stderr

    # im1 (36 px) at x3 has a 12-row LR: the faulty model raises there, a model error on one evaluation
    model = _cli("--plugin", PLUGIN, "--models", "bicubic,faulty", "--model-opt", "fail_at=12@3", "--datasets",
                 folder, "--scales", "2,3", "--metrics", "psnr", "--out", tmp_path / "m", "--no-progress")
    assert model.exit_code == 1, model.output
    rows = load_rows(tmp_path / "m")
    failed = rows[rows["error_kind"] == "model"]
    assert failed[["model", "image", "scale_text"]].values.tolist() == [["faulty", "im1", "3"]]
    assert "RuntimeError: faulty: asked to fail at 12@3" in failed["error"].iloc[0]
    assert "of 20 evaluations failed: 1 model (e.g. imgs/im1 x3 faulty: RuntimeError" in model.stderr

    # every evaluation failing is a failed run, whatever the kind
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "broken.png").write_bytes(b"not a png")
    r = _cli("--datasets", only_bad, "--scales", "2", "--metrics", "psnr", "--out", tmp_path / "b", "--no-progress")
    assert r.exit_code == 1 and "1 of 1 evaluations failed: 1 data" in r.stderr


def test_rows_without_error_kind_from_older_runs_still_load(folder, tmp_path):
    out = tmp_path / "run"
    (folder / "broken.png").write_bytes(b"not a png")
    run(models=["bicubic"], datasets=[str(folder)], scales=[Fraction(2)], metrics=["psnr"], out=out, progress=False)
    for shard in (out / "rows").glob("*.parquet"):  # as an sr_bench before the column wrote them
        pq.write_table(pq.read_table(shard).drop(["error_kind"]), shard)
    rows = load_rows(out)
    assert rows["error_kind"].isna().all() and len(rows) == 4
    assert failure_summary(rows).startswith("1 of 4 evaluations failed: 1 unclassified (e.g. imgs/broken")
    assert exit_status(rows) == 0  # an error of unknown kind is not taken for a code failure


# --------------------------------------------------------------------------------------- up-front checks ----
def test_a_checkpoint_that_cannot_serve_a_scale_fails_before_any_image(folder, tmp_path):
    weights = SHARED / "weights" / "lapsrn-official" / "LapSRN_x2.mat"
    if not weights.is_file():
        need_shared(weights)
    out = tmp_path / "run"
    line = _one_line(_cli("--models", f"lapsrn={weights}", "--datasets", folder, "--scales", "2,4", "--out", out,
                          "--no-progress"))
    assert line == ("error: model 'lapsrn' cannot run x4: it holds x2 only and ceil-then-down needs a network of "
                    "scale >= 4: add LapSRN_x4.mat, joined to the others with ':'")
    assert not out.exists()


def test_what_a_row_records_about_a_scale_is_checked_before_any_image(folder, tmp_path, clean_registry):
    plugin = tmp_path / "odd.py"
    plugin.write_text(
        "from sr_bench import ScaleSupport, Upscaler, register_model\n"
        "from sr_bench.models.bicubic import Bicubic\n\n"
        "@register_model('odd')\n"
        "class Odd(Bicubic):\n"
        "    def strategy_for(self, scale):\n"
        "        if scale == 3:\n"
        "            raise KeyError('no strategy for x3')\n"
        "        return 'native'\n")
    out = tmp_path / "run"
    with pytest.raises(UserError, match=r"model 'odd' .* raised KeyError: 'no strategy for x3' \(while checking x3\)"):
        run(models=["odd"], plugins=(str(plugin),), datasets=[str(folder)], scales=SCALES, out=out, progress=False)
    assert not out.exists()

