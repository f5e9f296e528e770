"""Shared fixtures: where ../shared is, and basicsr imported as an independent reference without its __init__."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRBENCH_SHARED", REPO.parent / "shared"))
DATA = Path(os.environ.get("SRBENCH_DATA", SHARED / "datasets"))
# the one line every test that needs ../shared ends its skip reason with (CI has it, so there nothing skips)
SHARED_HINT = ("provide the read-only shared/ folder (datasets/, weights/lapsrn-official/, calibration/) as ../shared "
               "beside the repo, or set SRBENCH_SHARED=/path/to/shared (SRBENCH_DATA=/path/to/datasets for data alone)")


def need_data(*names: str) -> Path:
    """Skip (with the reason) unless every named dataset folder is present."""
    missing = [n for n in names if not (DATA / n).is_dir()]
    if missing:
        pytest.skip(f"dataset(s) {', '.join(missing)} not found under {DATA}; {SHARED_HINT}")
    return DATA


def srcnn_flops(h: int, w: int) -> int:
    """SRCNN 9-5-5 on an h x w bicubic Y, counted by hand: conv 1->64 9x9, 64->32 5x5, 32->1 5x5; 2 FLOPs per
    multiply-add (the cost tests' independent reference)."""
    return 2 * h * w * (1 * 64 * 9 * 9 + 64 * 32 * 5 * 5 + 32 * 1 * 5 * 5)


WHEEL_SKIP = {".venv", ".git", "results", "build", "dist", ".pytest_cache", ".device"}


def wheel_source_ignore(folder: str, names: list[str]) -> set[str]:
    """``shutil.copytree``'s ignore for the copy of this checkout a wheel is built from (test_wheel, test_floors)."""
    here = Path(folder)
    skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if here == REPO:
        skip |= WHEEL_SKIP & set(names)
    if here == REPO / "datasets":  # users' image folders are git-ignored data, never part of a build
        skip |= {n for n in names if (here / n).is_dir()}
    return skip


def need_shared(*paths: Path) -> None:
    """Skip (with the reason and the fix) unless every path from ../shared exists."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        pytest.skip(f"not found: {', '.join(missing)}; {SHARED_HINT}")


@pytest.fixture(scope="session")
def basicsr():
    """basicsr's metric/resize modules, loaded without running basicsr/__init__ (which imports its whole trainer)."""
    spec = importlib.util.find_spec("basicsr")
    if spec is None:
        pytest.skip("basicsr (basicsr-fixed==1.4.2) is not installed; it is the independent reference here")
    if "basicsr" not in sys.modules:
        pkg = types.ModuleType("basicsr")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        sys.modules["basicsr"] = pkg
    from basicsr.metrics import psnr_ssim
    from basicsr.utils import color_util, matlab_functions

    return types.SimpleNamespace(
        imresize=matlab_functions.imresize,
        rgb2ycbcr=color_util.rgb2ycbcr,
        calculate_psnr=psnr_ssim.calculate_psnr,
        calculate_ssim=psnr_ssim.calculate_ssim,
    )


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a module (training tests): on two cores shared with other jobs, two OpenMP
    threads spin against each other and a training step runs 10-50x slower than on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def clean_registry():
    """In-process tests register models; put the registry back as it was afterwards."""
    from sr_bench.models import registry

    saved, plugins = dict(registry._registered), dict(registry._plugins)
    yield
    registry._registered.clear()
    registry._registered.update(saved)
    registry._plugins.clear()
    registry._plugins.update(plugins)
    registry.release_of.cache_clear()
    registry._read_plugin_card.cache_clear()
