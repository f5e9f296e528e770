"""One cache root for every cache (``sr_bench.cache``): ``SRBENCH_CACHE``, else ``XDG_CACHE_HOME/sr_bench``, else
``~/.cache/sr_bench``; each variable moves the datasets, the LPIPS weights and the compiled kernels together."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_bench import cache, native
from sr_bench.data.roots import resolve_root, user_cache
from sr_bench.hashing import file_sha256
from sr_bench.metrics import lpips


def _caches() -> dict[str, Path]:
    return {"datasets": user_cache(), "lpips": lpips.cache_dir(), "native": native.cache_dir()}


@pytest.mark.parametrize("own, xdg, expected", [
    ("own", "xdg", "own"),  # SRBENCH_CACHE wins
    ("", "xdg", "xdg/sr_bench"),
    ("", "relative/xdg", "home/.cache/sr_bench"),  # the XDG spec ignores a relative value
    ("", "", "home/.cache/sr_bench"),
])
def test_each_variable_moves_every_cache(tmp_path, monkeypatch, own, xdg, expected):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in ((cache.ENV, own), ("XDG_CACHE_HOME", xdg)):
        if value:
            monkeypatch.setenv(name, str(tmp_path / value) if not value.startswith("relative") else value)
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SRBENCH_DATA", raising=False)
    root = tmp_path / expected
    assert _caches() == {"datasets": root / "datasets", "lpips": root / "lpips", "native": root / "native"}
    assert resolve_root().path == root / "datasets"  # where `datasets fetch` installs


def test_file_sha256_matches_a_published_digest(tmp_path):
    # FIPS 180-2 example "abc", and a file longer than one read block
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    (tmp_path / "big").write_bytes(b"a" * 1_000_000 * 3)
    (tmp_path / "million").write_bytes(b"a" * 1_000_000)
    assert file_sha256(tmp_path / "million") == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    assert file_sha256(tmp_path / "big") != file_sha256(tmp_path / "million")
