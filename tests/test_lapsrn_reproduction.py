"""The official LapSRN / MS-LapSRN MatConvNet weights through the whole runner reproduce the published PSNRs.

Runs in CI, where ../shared (datasets + weights/lapsrn-official) is beside the repo; skipped with the reason otherwise.
About 2.5 minutes on 2 CPU cores (MS-LapSRN-D5R8 at x2/x3/x4 and LapSRN x2/x4 on Set5 + Set14, plus D5R8 on Set5
under `matlab`).

Protocol. The published numbers (MS-LapSRN TPAMI table) come from the authors' own evaluation
(``evaluate_MSLapSRN_dataset.m`` + ``utils/evaluate_SR.m``), which differs from the suite's ``matlab`` protocol in two
roundings: its LR is ``imresize`` of the double HR, never rounded to uint8, and its Y is ``rgb2ycbcr`` of the uint8 SR
in double, not rounded. Under ``matlab`` the same weights measure 0.03-0.13 dB lower (Set5 D5R8: -0.11 / -0.05 / -0.04
dB at x2/x3/x4 against TPAMI), so the 0.05 dB check runs under the ``lapsrn-matlab`` protocol
(sr_bench/protocols/lapsrn.py), where every D5R8 cell lands within 0.003 dB. ``matlab`` is exercised on Set5 and its
gap checked.

LapSRN on Set14: the released LapSRN_x2/x4.mat give 32.987 / 28.091 on ../shared Set14, 0.09-0.10 dB under the
TPAMI (and CVPR) rows 33.08 / 28.19, while D5R8 and bicubic reproduce the TPAMI Set14 values on the same images to
0.003 dB, and the CSFM paper's re-evaluation of the released models prints 32.99 / 28.09. The gap is one image:
Set14 `bridge` is a grey PNG here (and for the D5R8 rows); if it is stored as a 3-channel copy, evaluate_SR.m takes
the Y of rgb2ycbcr, which maps grey to 16 + 219/255 * grey, so every error shrinks by 219/255 and that image's PSNR
rises by 20 log10(255/219) = 1.32 dB, the 14-image mean by 0.094 dB. The published LapSRN Set14 rows are reproduced
exactly that way: the same weights on a 3-channel copy of `bridge` (written to a temp folder by the test, nothing
committed) replace the grey `bridge` rows, and the Set14 means land on 33.08 / 28.19. The grey-file means are checked
against the CSFM re-evaluation.
"""

from __future__ import annotations

import math
import os
import time
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import need_shared
from sr_bench.models.cards import card_for
from sr_bench.report.tables import summarize
from sr_bench.run.runner import run

pytestmark = pytest.mark.calibration

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = Path(os.environ.get("SRBENCH_DATA", SHARED / "datasets"))
WEIGHTS = SHARED / "weights" / "lapsrn-official"
LAPSRN = "lapsrn=" + os.pathsep.join(str(WEIGHTS / f) for f in ("LapSRN_x2.mat", "LapSRN_x4.mat"))
TOL = 0.05  # dB


def _need():
    missing = [str(p) for p in (DATA / "Set5", DATA / "Set14", WEIGHTS) if not p.is_dir()]
    if missing:
        need_shared(*missing)


def published(card: str, source: str, variant: str | None = None) -> dict[tuple[str, int], float]:
    blocks = [b for b in card_for(card)["published"] if source in b["source"] and b.get("variant") == variant]
    assert len(blocks) == 1, (card, source, variant)
    return {(r[0], int(Fraction(r[1]))): float(r[2]) for r in blocks[0]["rows"]}


def _means(result) -> dict[tuple[str, int], float]:
    assert (result.rows["error"] == "").all(), result.rows[result.rows["error"] != ""][["image", "error"]]
    return {(r.dataset, int(Fraction(r.scale_text))): r.psnr for r in summarize(result.rows).itertuples()}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Mean PSNR per (model, protocol) -> {(dataset, scale): psnr}; also the per-image rows under ("rows", model)."""
    _need()
    out = tmp_path_factory.mktemp("lapsrn")
    d5r8 = f"mslapsrn={WEIGHTS / 'MSLapSRN_D5R8.mat'}"
    runs = {
        ("d5r8", "lapsrn-matlab"): (d5r8, ["set5", "set14"], [2, 3, 4]),
        ("lapsrn", "lapsrn-matlab"): (LAPSRN, ["set5", "set14"], [2, 4]),
        ("d5r8", "matlab"): (d5r8, ["set5"], [2, 3, 4]),
    }
    means, seconds = {}, {}
    for (model, protocol), (spec, datasets, scales) in runs.items():
        start = time.perf_counter()
        result = run(models=[spec], datasets=datasets, scales=[Fraction(s) for s in scales], protocol=protocol,
                     metrics=["psnr"], out=out / f"{model}-{protocol}", data_root=str(DATA), progress=False)
        seconds[(model, protocol)] = time.perf_counter() - start
        assert result.protocol.name == protocol
        means[(model, protocol)] = _means(result)
        means[("rows", model, protocol)] = result.rows
    print("seconds per run:", {f"{m}/{p}": round(s, 1) for (m, p), s in seconds.items()})
    return means


def _check(got: dict, ref: dict, cells: list[tuple[str, int]], what: str) -> None:
    deviations = {cell: got[cell] - ref[cell] for cell in cells}
    print(what, {f"{d} x{s}": f"{got[(d, s)]:.3f} ({v:+.3f})" for (d, s), v in deviations.items()})
    bad = {cell: round(v, 3) for cell, v in deviations.items() if abs(v) > TOL}
    assert not bad, f"{what}: cells off by more than {TOL} dB: {bad}"


def test_mslapsrn_d5r8_reproduces_the_tpami_table(measured):
    ref = published("mslapsrn", "TPAMI", "D5R8")
    cells = [(d, s) for d in ("Set5", "Set14") for s in (2, 3, 4)]
    _check(measured[("d5r8", "lapsrn-matlab")], ref, cells, "MS-LapSRN-D5R8 vs TPAMI")


def test_lapsrn_set5_reproduces_the_tpami_table(measured):
    ref = published("lapsrn", "TPAMI")
    _check(measured[("lapsrn", "lapsrn-matlab")], ref, [("Set5", 2), ("Set5", 4)], "LapSRN Set5 vs TPAMI")


def test_lapsrn_set14_reproduces_the_csfm_reevaluation_of_the_released_models(measured):
    ref = published("lapsrn", "CSFM")
    _check(measured[("lapsrn", "lapsrn-matlab")], ref, [("Set14", 2), ("Set14", 4)], "LapSRN Set14 vs CSFM")


def test_lapsrn_set14_tpami_rows_are_the_released_weights_with_a_3_channel_bridge(measured, tmp_path):
    """The TPAMI/CVPR LapSRN Set14 rows: the same weights, with `bridge` read from a 3-channel copy (see module doc)."""
    import numpy as np
    from PIL import Image

    grey = np.asarray(Image.open(DATA / "Set14" / "bridge.png"))
    assert grey.ndim == 2, "../shared Set14/bridge.png is expected to be a grey PNG"
    folder = tmp_path / "bridge-rgb"
    folder.mkdir()
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(folder / "bridge.png")
    rgb = run(models=[LAPSRN], datasets=[str(folder)], scales=[Fraction(2), Fraction(4)], protocol="lapsrn-matlab",
              metrics=["psnr"], out=tmp_path / "out", progress=False).rows
    rows = measured[("rows", "lapsrn", "lapsrn-matlab")]
    set14 = rows[rows["dataset"] == "Set14"]
    got = {}
    for s in (2, 4):
        at = set14[set14["scale_text"] == str(s)]
        assert len(at) == 14 and (at["image"] == "bridge").sum() == 1, at["image"].tolist()
        bridge_grey = float(at.loc[at["image"] == "bridge", "psnr"].iloc[0])
        bridge_rgb = float(rgb.loc[rgb["scale_text"] == str(s), "psnr"].iloc[0])
        # the predicted lift is exact up to the 8-bit rounding of the SR, which the range compression does not
        # commute with
        assert abs((bridge_rgb - bridge_grey) - 20 * math.log10(255 / 219)) < 0.02, (s, bridge_grey, bridge_rgb)
        got[("Set14", s)] = (float(at["psnr"].sum()) - bridge_grey + bridge_rgb) / 14
    _check(got, published("lapsrn", "TPAMI"), [("Set14", 2), ("Set14", 4)], "LapSRN Set14 (3-channel bridge) vs TPAMI")


def test_matlab_protocol_costs_only_its_two_roundings(measured):
    """Under ``matlab`` (LR rounded to uint8, Y rounded) the same weights score lower, by less than 0.15 dB."""
    authors, matlab = measured[("d5r8", "lapsrn-matlab")], measured[("d5r8", "matlab")]
    ref = published("mslapsrn", "TPAMI", "D5R8")
    gaps = {s: authors[("Set5", s)] - matlab[("Set5", s)] for s in (2, 3, 4)}
    print("D5R8 Set5 under matlab:", {f"x{s}": f"{matlab[('Set5', s)]:.3f} "
                                      f"({matlab[('Set5', s)] - ref[('Set5', s)]:+.3f} vs TPAMI)" for s in (2, 3, 4)},
          "gap to lapsrn-matlab:", gaps)
    assert all(0.0 < g < 0.15 for g in gaps.values()), gaps
