"""x8 geometric self-ensemble (``NAME+``): exactness on an equivariant model, the group property on a model that is
not equivariant, the runner's rows, and the gain on official MS-LapSRN weights."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import need_shared
from sr_bench.errors import UserError
from sr_bench.models import create_model
from sr_bench.models.ensemble import TRANSFORMS, forward_transform, inverse_transform
from sr_bench.run.runner import run

SHARED = Path(os.environ.get("SRBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = Path(os.environ.get("SRBENCH_DATA", SHARED / "datasets"))
D5R8 = SHARED / "weights" / "lapsrn-official" / "MSLapSRN_D5R8.mat"


def test_transforms_are_the_8_distinct_dihedral_maps_and_invert():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    outs = [forward_transform(x, r, f) for r, f in TRANSFORMS]
    assert len({tuple(o.flatten().tolist()) + tuple(o.shape) for o in outs}) == 8
    for (r, f), o in zip(TRANSFORMS, outs, strict=True):
        assert torch.equal(inverse_transform(o, r, f), x)


@pytest.mark.parametrize("scale,size", [(Fraction(2), (22, 30)), (Fraction(3), (33, 45))])
def test_bicubic_plus_equals_bicubic_where_matlab_bicubic_is_flip_symmetric(scale, size):
    """At an integer upscale MATLAB's bicubic kernel positions are mirror-symmetric, so bicubic commutes with every
    flip and rotation and its ensemble must return it to float64 rounding; a wrong inverse would not."""
    lr = torch.rand(2, 3, 11, 15, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    plain = create_model("bicubic").super_resolve(lr, scale, size)
    plus = create_model("bicubic+").super_resolve(lr, scale, size)
    assert plus.shape == plain.shape == (2, 3, *size)
    assert (plus - plain).abs().max().item() < 1e-12


@pytest.mark.parametrize("scale,size", [(Fraction(2), (20, 26)), (Fraction(5, 2), (25, 32))])
def test_ensemble_is_equivariant_even_when_the_network_is_not(scale, size):
    """E(T x) = T E(x) for every dihedral T holds for any inner model (averaging over the group), including a
    decimal scale through ceil-then-down; a random EDSR-baseline is far from equivariant, so E differs from f."""
    torch.manual_seed(0)
    plus = create_model("edsr-baseline+", allow_untrained=True)
    lr = torch.rand(1, 3, 10, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = plus.super_resolve(lr, scale, size)
        single = plus.inner.super_resolve(lr, scale, size)
        assert base.shape == (1, 3, *size)
        assert (base - single).abs().max().item() > 1e-3
        for rot, flip in TRANSFORMS[1:]:
            t_size = (size[1], size[0]) if rot % 2 else size
            moved = plus.super_resolve(forward_transform(lr, rot, flip), scale, t_size)
            err = (inverse_transform(moved, rot, flip) - base).abs().max().item()
            assert err < 1e-5, (rot, flip, err)  # float32 network, summed in another order


def test_runner_rows_carry_the_plus_name_and_the_inner_strategy(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)).save(folder / "a.png")
    result = run(models=["edsr-baseline+"], datasets=[str(folder)], scales=[Fraction(2), Fraction(5, 2)],
                 protocol="metasr", metrics=["psnr"], out=tmp_path / "out", allow_untrained=True, progress=False)
    rows = result.rows.sort_values("scale")
    assert rows["model"].tolist() == ["edsr-baseline+"] * 2
    assert rows["strategy"].tolist() == ["native", "ceil-then-down"]
    assert rows["untrained"].all() and (rows["error"] == "").all()


def test_unknown_base_name_suggests_the_closest():
    with pytest.raises(UserError, match="rcan"):
        create_model("rcann+")


@pytest.mark.calibration
def test_self_ensemble_gains_on_official_mslapsrn_weights(tmp_path):
    """EDSR+/RCAN+ report 0.05-0.2 dB from the x8 ensemble on Set5 x4; a correct ensemble of a trained model improves
    every Set5 image, a wrong inverse transform would average misaligned images and lose several dB."""
    if not (DATA / "Set5").is_dir() or not D5R8.is_file():
        need_shared(DATA / "Set5", D5R8)
    spec = f"={D5R8}"
    result = run(models=["mslapsrn" + spec, "mslapsrn+" + spec], datasets=["set5"], scales=[Fraction(4)],
                 protocol="lapsrn-matlab", metrics=["psnr"], out=tmp_path / "out", data_root=str(DATA), progress=False)
    table = result.rows.pivot(index="image", columns="model", values="psnr")
    gain = table["mslapsrn+"] - table["mslapsrn"]
    print("x8 self-ensemble gain per Set5 image (dB):", gain.round(3).to_dict(), "mean", round(gain.mean(), 3))
    assert (gain > 0).all(), gain
    assert 0.02 < gain.mean() < 0.5, gain.mean()
    assert result.rows["checkpoint_sha256"].nunique() == 1
