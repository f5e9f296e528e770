"""fetch(): download from a real local HTTP server (127.0.0.1 only), verify, install atomically, leave no debris."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sr_bench.data.cli import datasets as datasets_cli
from sr_bench.data.fetch import fetch
from sr_bench.errors import UserError
from sr_bench.imaging.io import pixel_sha256, read_image

pytestmark = pytest.mark.network

NAMES = ("a.png", "b.png", "c.png")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SRBENCH_DATA", "SRBENCH_CARDS", "SRBENCH_MIRROR"):
        monkeypatch.delenv(var, raising=False)


class Server:
    """Serves registered bodies; a route can claim a longer Content-Length than it sends (a cut-off download)."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        self.hits: list[str] = []
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, claimed = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(claimed if claimed is not None else len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def add(self, path: str, body: bytes, claimed: int | None = None) -> str:
        self.routes[path] = (body, claimed)
        return self.base + path


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def images(seed=3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.integers(0, 256, (7, 9, 3), dtype=np.uint8) for n in NAMES}


def png(arr: np.ndarray, level: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_card(tmp_path: Path, url: str, archive_sha256: str | None = None) -> Path:
    """The card for images(): byte hashes of the default PNG encoding, pixel hashes of the arrays."""
    cards = tmp_path / "cards"
    cards.mkdir(exist_ok=True)
    text = f'name = "Tiny"\nfolder = "Tiny"\n\n[download]\nurl = "{url}"\nformat = "zip"\n'
    if archive_sha256:
        text += f'sha256 = "{archive_sha256}"\n'
    for name, arr in images().items():
        data = png(arr)
        text += (f'\n[[files]]\nname = "{name}"\nwidth = 9\nheight = 7\nmode = "RGB"\nbytes = {len(data)}\n'
                 f'sha256 = "{hashlib.sha256(data).hexdigest()}"\npixel_sha256 = "{pixel_sha256(arr)}"\n')
    (cards / "tiny.toml").write_text(text)
    return cards


def good_members(prefix="snapshot-1234/Tiny/", level=6) -> dict[str, bytes]:
    return {prefix + n: png(a, level) for n, a in images().items()}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


def assert_clean(root: Path):
    assert sorted(p.name for p in root.iterdir()) == [], "fetch left files behind"


def test_fetch_installs_verified_files_atomically(tmp_path, root, server):
    members = good_members()
    # A same-named decoy (like a gray copy elsewhere in a repository snapshot) must not be picked.
    members["snapshot-1234/Gray/a.png"] = png(np.zeros((7, 9, 3), np.uint8))
    url = server.add("/tiny.zip", zip_of(members))
    cards = write_card(tmp_path, url)

    result = fetch("tiny", data_root=root, cards_dir=cards, progress=False)
    assert result.status == "fetched" and result.path == root / "Tiny"
    assert sorted(p.name for p in root.iterdir()) == ["Tiny"]  # no temp folder or archive left
    assert sorted(p.name for p in (root / "Tiny").iterdir()) == list(NAMES)
    for name, arr in images().items():
        assert np.array_equal(read_image(root / "Tiny" / name), arr)

    again = fetch("tiny", data_root=root, cards_dir=cards, progress=False)
    assert again.status == "already present" and server.hits == ["/tiny.zip"]


def test_lossless_reencoding_verifies_by_pixels(tmp_path, root, server):
    url = server.add("/tiny.zip", zip_of(good_members(level=0)))
    result = fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False)
    assert result.status == "fetched" and result.reencoded == 3


def test_truncated_download_leaves_nothing(tmp_path, root, server):
    body = zip_of(good_members())
    url = server.add("/tiny.zip", body[: len(body) // 2], claimed=len(body))
    with pytest.raises(UserError, match="truncated"):
        fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False)
    assert_clean(root)


def test_root_created_by_a_failed_fetch_is_removed(tmp_path, server):
    url = server.add("/tiny.zip", b"short", claimed=1000)
    with pytest.raises(UserError, match="truncated"):
        fetch("tiny", data_root=tmp_path / "new-root", cards_dir=write_card(tmp_path, url), progress=False)
    assert not (tmp_path / "new-root").exists()


def test_corrupted_archive_is_refused(tmp_path, root, server):
    body = bytearray(zip_of(good_members()))
    for i in range(100, 160):  # inside the first member's compressed data
        body[i] ^= 0x5A
    url = server.add("/tiny.zip", bytes(body))
    with pytest.raises(UserError, match="corrupt|did not verify") as e:
        fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False)
    assert "\n" not in str(e.value)
    assert_clean(root)


def test_archive_sha256_is_enforced_for_the_mirror(tmp_path, root, server, monkeypatch):
    good = zip_of(good_members())
    server.add("/mirror/tiny.zip", good[:-1] + bytes([good[-1] ^ 1]))
    cards = write_card(tmp_path, "https://example.invalid/tiny.zip", hashlib.sha256(good).hexdigest())
    monkeypatch.setenv("SRBENCH_MIRROR", server.base + "/mirror/")
    with pytest.raises(UserError, match="sha256"):
        fetch("tiny", data_root=root, cards_dir=cards, progress=False)
    assert_clean(root)
    server.add("/mirror/tiny.zip", good)
    assert fetch("tiny", data_root=root, cards_dir=cards, progress=False).status == "fetched"
    assert server.hits == ["/mirror/tiny.zip", "/mirror/tiny.zip"]  # never the card's own (unreachable) URL


def test_wrong_image_content_is_refused(tmp_path, root, server):
    members = good_members()
    wrong = images()["b.png"].copy()
    wrong[3, 3] = 255 - wrong[3, 3]
    members["snapshot-1234/Tiny/b.png"] = png(wrong)
    url = server.add("/tiny.zip", zip_of(members))
    with pytest.raises(UserError, match=r"1 of 3 Tiny files .* did not verify \(b.png: pixels differ"):
        fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False)
    assert_clean(root)


def test_missing_file_and_http_error(tmp_path, root, server):
    members = good_members()
    del members["snapshot-1234/Tiny/c.png"]
    url = server.add("/tiny.zip", zip_of(members))
    with pytest.raises(UserError, match="c.png: missing"):
        fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False)
    with pytest.raises(UserError, match="HTTP 404"):
        fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, server.base + "/nope.zip"), progress=False)
    assert_clean(root)


def test_not_an_archive(tmp_path, root, server):
    url = server.add("/tiny.zip", b"<html>login page</html>")
    with pytest.raises(UserError, match="not a zip or tar archive"):
        fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False)
    assert_clean(root)


def test_tar_gz_from_url_option_and_traversal_guard(tmp_path, root, server):
    cards = write_card(tmp_path, "https://example.invalid/tiny.zip")

    def tar_of(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    evil = server.add("/evil.tar.gz", tar_of({**good_members(), "../../escape.png": b"x"}))
    with pytest.raises(UserError, match="unsafe path"):
        fetch("tiny", data_root=root, cards_dir=cards, url=evil, progress=False)
    assert_clean(root)
    assert not (tmp_path / "escape.png").exists()

    url = server.add("/tiny.tar.gz", tar_of(good_members(prefix="")))
    assert fetch("tiny", data_root=root, cards_dir=cards, url=url, progress=False).status == "fetched"


def test_existing_wrong_folder_needs_force(tmp_path, root, server):
    url = server.add("/tiny.zip", zip_of(good_members()))
    cards = write_card(tmp_path, url)
    (root / "Tiny").mkdir()
    (root / "Tiny" / "a.png").write_bytes(b"old junk")
    with pytest.raises(UserError, match="does not verify.*--force"):
        fetch("tiny", data_root=root, cards_dir=cards, progress=False)
    assert server.hits == []  # refused before downloading
    result = fetch("tiny", data_root=root, cards_dir=cards, force=True, progress=False)
    assert result.status == "replaced"
    assert sorted(p.name for p in root.iterdir()) == ["Tiny"]
    assert sorted(p.name for p in (root / "Tiny").iterdir()) == list(NAMES)


def test_cli_fetch_reports_errors_with_exit_2(tmp_path, root, server, monkeypatch):
    url = server.add("/tiny.zip", zip_of(good_members()))
    monkeypatch.setenv("SRBENCH_CARDS", str(write_card(tmp_path, url)))
    runner = CliRunner()
    out = runner.invoke(datasets_cli, ["fetch", "tiny", "--data-root", str(root), "--no-progress"])
    assert out.exit_code == 0 and "3 files verified" in out.output
    out = runner.invoke(datasets_cli, ["fetch", "tiny", "--data-root", str(root), "--no-progress"])
    assert out.exit_code == 0 and "already present" in out.output
    out = runner.invoke(datasets_cli, ["fetch", "tiny", "--data-root", str(tmp_path / "r2"), "--no-progress",
                                       "--url", server.base + "/missing.zip"])
    assert out.exit_code == 2 and out.stderr.splitlines()[-1].startswith("error: download of")
    assert "HTTP 404" in out.stderr and "Traceback" not in out.output


def test_empty_existing_folder_is_filled_without_force(tmp_path, root, server):
    url = server.add("/tiny.zip", zip_of(good_members()))
    (root / "Tiny").mkdir()
    assert fetch("tiny", data_root=root, cards_dir=write_card(tmp_path, url), progress=False).status == "fetched"
    assert sorted(p.name for p in (root / "Tiny").iterdir()) == list(NAMES)


def test_default_fetch_goes_to_the_user_cache_and_is_found_from_anywhere(tmp_path, server, monkeypatch):
    from sr_bench.data import resolve_dataset

    url = server.add("/tiny.zip", zip_of(good_members()))
    cards = write_card(tmp_path, url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SRBENCH_CACHE", raising=False)  # it would win over XDG (sr_bench.cache)
    (tmp_path / "project" / "datasets").mkdir(parents=True)  # a ./datasets without Tiny does not catch the download
    monkeypatch.chdir(tmp_path / "project")
    result = fetch("tiny", cards_dir=cards, progress=False)
    cache = tmp_path / "xdg" / "sr_bench" / "datasets"
    assert result.status == "fetched" and result.path == cache / "Tiny"
    assert sorted(p.name for p in (cache / "Tiny").iterdir()) == list(NAMES)
    assert list((tmp_path / "project" / "datasets").iterdir()) == []
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resolve_dataset("tiny", cards_dir=cards).folder == cache / "Tiny"
