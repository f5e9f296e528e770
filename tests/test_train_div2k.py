"""DIV2K without DIV2K: a synthetic folder laid out like DIV2K_train_HR (0001.png ... 0800.png, small noise images),
zipped and served by a real HTTP server on 127.0.0.1, fetched and verified through the built-in ``div2k`` card (which
has no per-file hashes, only the archive's published sha256), then trained on with ``--data div2k``; and the image
bank that keeps at most ``--cache-mb`` of decoded images."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sr_bench.cli import cli
from sr_bench.data import resolve_dataset
from sr_bench.data.cards import find_card
from sr_bench.train.patches import ImageBank, load_images, step_batch
from test_data_fetch import Server, png, zip_of

pytestmark = pytest.mark.network


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SRBENCH_DATA", "SRBENCH_CARDS", "SRBENCH_MIRROR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def archive() -> bytes:
    """DIV2K_train_HR.zip's layout: DIV2K_train_HR/0001.png ... 0800.png (here 20..27 x 24 noise, RGB)."""
    rng = np.random.default_rng(0)
    return zip_of({f"DIV2K_train_HR/{i:04d}.png": png(rng.integers(0, 256, (20 + i % 8, 24, 3), dtype=np.uint8), 1)
                   for i in range(1, 801)})


def test_the_card_lists_the_files_and_the_published_archive_hash():
    train_card, valid_card = find_card("div2k"), find_card("div2k-valid")
    assert [f.name for f in train_card.files] == [f"{i:04d}.png" for i in range(1, 801)]
    assert [f.name for f in valid_card.files] == [f"{i:04d}.png" for i in range(801, 901)]
    assert all(f.sha256 == "" and f.pixel_sha256 is None for f in train_card.files + valid_card.files)
    # TensorFlow Datasets' url_checksums/div2k.txt
    assert train_card.download.sha256 == "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335"
    assert train_card.download.archive_name == "DIV2K_train_HR.zip" and train_card.folder == "DIV2K_train_HR"


def test_fetch_verify_and_train_on_a_div2k_layout(server, archive, tmp_path):
    root = tmp_path / "root"
    url = server.add("/DIV2K_train_HR.zip", archive)
    r = CliRunner().invoke(cli, ["datasets", "fetch", "div2k", "--url", url, "--data-root", str(root),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "note: this archive's sha256 differs from the card's" in r.output  # an --url archive: reported only
    assert ("DIV2K: 800 files present and intact (800 without a published hash; the archive's sha256 was not "
            "checked against the card)") in r.output
    assert len(list((root / "DIV2K_train_HR").iterdir())) == 800

    v = CliRunner().invoke(cli, ["datasets", "verify", "div2k", "--data-root", str(root)])
    assert v.exit_code == 0 and "DIV2K: 800/800 ok" in v.output, v.output
    assert "checks made: file names, count and each file's integrity" in v.output
    assert "contents are not checked" in v.output and len(v.output.splitlines()) == 2

    out = tmp_path / "w.pt"
    t = CliRunner().invoke(cli, ["train", "edsr-baseline", "--scale", "2", "--data", "div2k", "--data-root",
                                 str(root), "--steps", "2", "--batch", "2", "--patch", "8", "--device", "cpu",
                                 "--no-progress", "--out", str(out)])
    assert t.exit_code == 0, t.output
    record = json.loads((tmp_path / "w.pt.json").read_text())
    assert record["data"]["names"] == ["DIV2K"] and record["data"]["images"] == record["data"]["used"] == 800

    (root / "DIV2K_train_HR" / "0005.png").write_bytes((root / "DIV2K_train_HR" / "0005.png").read_bytes()[:60])
    (root / "DIV2K_train_HR" / "0700.png").unlink()
    bad = CliRunner().invoke(cli, ["datasets", "verify", "div2k", "--data-root", str(root)])
    assert bad.exit_code == 1 and "DIV2K: 798/800 ok, 2 differ" in bad.output, bad.output
    assert "0005.png: unreadable - damaged or not an image" in bad.output and "0700.png: missing" in bad.output


def test_the_card_url_and_mirror_enforce_the_published_archive_hash(server, archive, tmp_path, monkeypatch):
    server.add("/mirror/DIV2K_train_HR.zip", archive)  # not the real archive: its sha256 differs from the card's
    monkeypatch.setenv("SRBENCH_MIRROR", server.base + "/mirror")
    root = tmp_path / "root"
    r = CliRunner().invoke(cli, ["datasets", "fetch", "div2k", "--data-root", str(root), "--no-progress"])
    got = hashlib.sha256(archive).hexdigest()[:12]
    assert r.exit_code == 2 and f"has sha256 {got}..., card says 9d0b9c463f6e..." in r.output, r.output
    assert not (root / "DIV2K_train_HR").exists()


def test_the_image_bank_bounds_its_cache_and_gives_the_same_batches(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i:04d}.png").write_bytes(png(rng.integers(0, 256, (30 + i, 28, 3), dtype=np.uint8)))
    items = resolve_dataset(str(folder)).items
    every = load_images(items)
    one = 3 * 41 * 28  # the largest image's bytes
    bank = ImageBank(items, cache_bytes=3 * one)  # room for 3 of the 12 images
    assert bank.sizes == [tuple(im.shape[-2:]) for im in every] and bank.decodes == 0  # sizes from the headers
    sizes, pool = bank.sizes, list(range(12))
    for step in range(20):
        a = step_batch(bank, sizes, pool, [Fraction(2)], 6, 3, step, 0, 4)
        b = step_batch(every, sizes, pool, [Fraction(2)], 6, 3, step, 0, 4)
        assert a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
        assert len(bank._cache) <= 3 and bank._held <= bank.cache_bytes
    assert bank.decodes > 12  # images were dropped and decoded again
