"""The built wheel works on its own: no checkout, no editable install, run from an unrelated directory.

The wheel is built from a copy of this checkout's source (so no build/ folder lands in the tree) with
``--no-build-isolation --no-deps``, and pip installs it into a fresh venv. That venv reaches its dependencies
(torch, pandas, ...) in the running environment through a ``.pth`` path line, written only after the install so that
pip never sees the editable sr_bench; a path line adds the folder to sys.path without running the ``.pth`` files in
it, so the editable install's finder stays off and the wheel's copy is the one imported (checked below).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import need_shared, wheel_source_ignore

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SRBENCH_DATA") or REPO.parent / "shared" / "datasets")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(fresh venv, the wheel, a clean environment, an empty working directory)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=wheel_source_ignore)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRBENCH_") and k != "PYTHONPATH"}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")  # the data root's last place: nothing there
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                  "--wheel-dir", str(tmp / "dist"), str(src)], tmp, env)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp / "dist").glob("sr_bench-*.whl")

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                str(wheel)], tmp, env)
    assert pip.returncode == 0, pip.stderr[-3000:]
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp,
                     env).stdout.strip())
    outer = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "dependencies-from-test-env.pth").write_text("".join(f"{p}\n" for p in outer))
    work = tmp / "work"
    work.mkdir()
    return venv, site, wheel, env, work


def test_wheel_carries_every_card_and_no_data(installed):
    _, _, wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("registry", "datasets"):
        packaged = sorted(Path(n).name for n in names if n.startswith(f"sr_bench/_builtin_cards/{folder}/"))
        assert packaged == sorted(p.name for p in (REPO / folder).glob("*.toml")), folder
    assert not [n for n in names if n.lower().endswith((".png", ".bmp", ".jpg"))]
    # the C kernels' source, compiled on the user's machine (sr_bench.native); no prebuilt library
    kernels = sorted(Path(n).name for n in names if n.startswith("sr_bench/native/") and not n.endswith(".py"))
    assert kernels == sorted(p.name for p in (REPO / "sr_bench" / "native").glob("*.c")) and kernels, kernels


def test_installed_package_builds_its_kernels(installed, tmp_path):
    from sr_bench import native

    if native.library("ssim_map") is None:  # no compiler here (CC=false), or SRBENCH_NATIVE=0: nothing to build
        pytest.skip(f"the kernels cannot be built on this machine: {native.unavailable('ssim_map')}")
    venv, site, _, env, work = installed
    code = ("from sr_bench import native; import sys; lib = native.library('ssim_map'); "
            "print(native.__file__); sys.exit(0 if lib is not None else native.unavailable('ssim_map'))")
    built = _run([str(venv / "bin" / "python"), "-c", code], work, {**env, "SRBENCH_CACHE": str(tmp_path)})
    assert built.returncode == 0, built.stderr
    assert Path(built.stdout.strip()).is_relative_to(site)
    assert len(list((tmp_path / "native").glob("ssim_map-*.so"))) == 1


def test_installed_cli_from_an_empty_directory(installed):
    venv, site, _, env, work = installed
    where = _run([str(venv / "bin" / "python"), "-c", "import sr_bench; print(sr_bench.__file__)"], work, env)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr  # not the editable copy

    srbench = str(venv / "bin" / "srbench")
    models = _run([srbench, "models"], work, env)
    assert models.returncode == 0, models.stderr
    builtins = [tomllib.loads(p.read_text())["name"] for p in (REPO / "registry").glob("*.toml")]
    assert len(builtins) >= 16
    listed = {line.split("|")[1].strip() for line in models.stdout.splitlines() if line.startswith("| ")}
    assert set(builtins) <= listed, set(builtins) - listed

    datasets = _run([srbench, "datasets", "list"], work, env)
    assert datasets.returncode == 0, datasets.stderr
    rows = {line.split()[0] for line in datasets.stdout.splitlines()[2:]}
    assert rows == {"Set5", "Set14", "B100", "Urban100", "DIV2K", "DIV2K-valid", "demo"}, datasets.stdout
    assert f"data root: {work / 'datasets'} then {Path(env['XDG_CACHE_HOME']) / 'sr_bench' / 'datasets'}" in \
        datasets.stdout

    ran = _run([srbench, "run", "--models", "bicubic", "--scales", "2", "--metrics", "psnr", "--no-progress"], work,
               env)
    assert ran.returncode == 0, ran.stderr
    assert "using the built-in demo set" in ran.stderr  # no dataset anywhere: the default run falls back to demo
    [run_dir] = (work / "results").iterdir()  # the default results folder, relative to where it ran
    rows = pd.read_parquet(run_dir / "rows")
    assert len(rows) == 5 and set(rows.dataset) == {"demo"} and (rows.error == "").all()
    assert rows.psnr.between(20, 50).all()


def test_installed_set5_psnr_equals_the_editable_install(installed, tmp_path):
    if not (DATA / "Set5").is_dir():
        need_shared(DATA / "Set5")
    venv, _, _, env, work = installed
    args = ["run", "--models", "bicubic", "--datasets", "set5", "--scales", "2", "--metrics", "psnr,ssim",
            "--no-progress"]
    env = {**env, "SRBENCH_DATA": str(DATA)}
    wheel_run = _run([str(venv / "bin" / "srbench"), *args, "--out", str(tmp_path / "wheel")], work, env)
    assert wheel_run.returncode == 0, wheel_run.stderr
    editable = _run([sys.executable, "-m", "sr_bench.cli", *args, "--out", str(tmp_path / "editable")], REPO, env)
    assert editable.returncode == 0, editable.stderr
    a, b = (pd.read_parquet(tmp_path / name / "rows").sort_values("image").reset_index(drop=True)
            for name in ("wheel", "editable"))
    assert list(a.image) == list(b.image) and len(a) == 5 and (a.error == "").all()
    assert a.psnr.tolist() == b.psnr.tolist() and a.ssim.tolist() == b.ssim.tolist()  # same code: bit-equal


def test_install_without_cards_fails_loudly(installed):
    venv, site, _, env, work = installed
    cards = site / "sr_bench" / "_builtin_cards"
    shutil.move(cards, work / "moved-cards")
    try:
        out = _run([str(venv / "bin" / "srbench"), "models"], work, env)
    finally:
        shutil.move(work / "moved-cards", cards)
    assert out.returncode == 2
    assert out.stderr.startswith("error: no built-in model cards found") and out.stderr.count("\n") == 1, out.stderr
