"""verify(): bytes, then decoded pixels; the shared datasets against the repo's cards; `srbench datasets` CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sr_bench.data.cli import datasets as datasets_cli
from sr_bench.data.verify import verify
from sr_bench.errors import UserError
from sr_bench.imaging.io import pixel_sha256, read_image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SRBENCH_DATA") or REPO.parent / "shared" / "datasets")
needs_shared = pytest.mark.skipif(not all((SHARED_DATA / n).is_dir() for n in ("Set5", "Set14", "B100", "Urban100")),
                                  reason=f"shared datasets (Set5, Set14, B100, Urban100) not found at {SHARED_DATA}")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SRBENCH_DATA", "SRBENCH_CARDS", "SRBENCH_MIRROR"):
        monkeypatch.delenv(var, raising=False)


def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """A card 'Tiny' with one RGB and one gray PNG under a data root; returns (cards dir, dataset folder)."""
    cards, folder = tmp_path / "cards", tmp_path / "root" / "Tiny"
    cards.mkdir()
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(folder / "c.png")
    Image.fromarray(rng.integers(0, 256, (5, 4), dtype=np.uint8)).save(folder / "g.png")
    text = 'name = "Tiny"\n'
    for name, (w, h, mode) in {"c.png": (8, 6, "RGB"), "g.png": (4, 5, "L")}.items():
        data = (folder / name).read_bytes()
        text += (f'\n[[files]]\nname = "{name}"\nwidth = {w}\nheight = {h}\nmode = "{mode}"\nbytes = {len(data)}\n'
                 f'sha256 = "{hashlib.sha256(data).hexdigest()}"\n'
                 f'pixel_sha256 = "{pixel_sha256(read_image(folder / name))}"\n')
    (cards / "tiny.toml").write_text(text)
    return cards, folder


def run(tmp_path, cards, *names):
    return verify(*names, data_root=tmp_path / "root", cards_dir=cards)


def test_intact_dataset_verifies(tmp_path):
    cards, _ = tiny(tmp_path)
    report = run(tmp_path, cards, "tiny")
    assert report.ok and [c.status for c in report.checks] == ["ok", "ok"]
    assert report.summary().startswith("Tiny: 2/2 ok")


def test_lossless_reencode_is_ok_but_noted(tmp_path):
    cards, folder = tiny(tmp_path)
    arr = read_image(folder / "c.png")
    Image.fromarray(arr).save(folder / "c.png", compress_level=0)
    report = run(tmp_path, cards, "tiny")
    assert report.ok
    assert report.checks[0].status == "ok (re-encoded)" and "pixels identical" in report.checks[0].detail


def test_changed_pixels_missing_unreadable_and_extra(tmp_path):
    cards, folder = tiny(tmp_path)
    arr = read_image(folder / "c.png")
    arr[0, 0, 0] ^= 1
    Image.fromarray(arr).save(folder / "c.png")
    (folder / "g.png").unlink()
    Image.new("RGB", (2, 2)).save(folder / "extra.png")
    report = run(tmp_path, cards, "tiny")
    assert not report.ok
    assert [(c.name, c.status) for c in report.checks] == [("c.png", "pixels differ"), ("g.png", "missing")]
    assert "same size, different pixel values" in report.checks[0].detail
    assert report.extra == ["extra.png"]

    (folder / "c.png").write_bytes(b"garbage")
    assert run(tmp_path, cards, "tiny").checks[0].status == "unreadable"


def test_gray_saved_as_rgb_is_a_difference(tmp_path):
    cards, folder = tiny(tmp_path)
    g = read_image(folder / "g.png")[..., 0]
    Image.fromarray(np.dstack([g, g, g])).save(folder / "g.png")
    check = run(tmp_path, cards, "tiny").checks[1]
    assert check.status == "pixels differ" and "card says mode L" in check.detail


def test_missing_folder_and_bad_names(tmp_path):
    cards, folder = tiny(tmp_path)
    report = verify("tiny", data_root=tmp_path / "nowhere", cards_dir=cards)
    assert report.folder_missing and not report.ok
    with pytest.raises(UserError, match="unknown dataset 'tiy'; did you mean 'Tiny'"):
        verify("tiy", cards_dir=cards)
    with pytest.raises(UserError, match="only card datasets"):
        verify("demo", cards_dir=cards)


@needs_shared
def test_shared_datasets_match_the_repo_cards():
    for name, n in (("set5", 5), ("set14", 14), ("b100", 100), ("urban100", 100)):
        report = verify(name, data_root=SHARED_DATA)
        assert report.ok, report.summary() + "; " + "; ".join(f"{c.name}: {c.status}" for c in report.problems)
        assert len(report.checks) == n and all(c.status == "ok" for c in report.checks) and not report.extra


@needs_shared
def test_card_script_reproduces_the_committed_cards(tmp_path):
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_dataset_cards.py"), "--shared", str(SHARED_DATA),
                    "--out", str(tmp_path), "--only", "set5,set14"], check=True, capture_output=True)
    for key in ("set5", "set14"):
        assert (tmp_path / f"{key}.toml").read_text() == (REPO / "datasets" / f"{key}.toml").read_text()


def test_cli_list_and_verify_exit_codes(tmp_path, monkeypatch):
    cards, folder = tiny(tmp_path)
    monkeypatch.setenv("SRBENCH_CARDS", str(cards))
    runner = CliRunner()
    root = str(tmp_path / "root")

    out = runner.invoke(datasets_cli, ["list", "--data-root", root])
    assert out.exit_code == 0 and "Tiny" in out.output and "demo" in out.output and "yes" in out.output

    out = runner.invoke(datasets_cli, ["verify", "tiny", "--data-root", root])
    assert out.exit_code == 0 and "Tiny: 2/2 ok" in out.output
    out = runner.invoke(datasets_cli, ["verify", "--data-root", root])  # no name: every present dataset
    assert out.exit_code == 0 and "Tiny: 2/2 ok" in out.output

    (folder / "g.png").unlink()
    out = runner.invoke(datasets_cli, ["verify", "tiny", "--data-root", root])
    assert out.exit_code == 1 and "g.png: missing" in out.output

    out = runner.invoke(datasets_cli, ["verify", "tinny", "--data-root", root])
    assert out.exit_code == 2 and "error: unknown dataset 'tinny'" in out.output and "Traceback" not in out.output

    out = runner.invoke(datasets_cli, ["fetch", "--help"])
    assert out.exit_code == 0 and "--url" in out.output and "--force" in out.output
