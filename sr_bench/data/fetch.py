"""``srbench datasets fetch``: download a card's archive, verify every file, and install it in one rename.

All work happens in a hidden temporary folder inside the data root (same file system, so the final ``rename`` is
atomic) that is removed on any failure: ``<root>/<folder>`` appears complete and verified, or not at all. The card's
archive sha256 is enforced for its URL and ``SRBENCH_MIRROR``; an archive given with ``url`` may be packaged
differently, so there a mismatch is only reported (every file is verified anyway).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm import tqdm

import sr_bench
from sr_bench.data.archive import extract_named
from sr_bench.data.cards import DatasetCard, all_names, find_card, load_cards
from sr_bench.data.roots import dataset_folder, resolve_root
from sr_bench.data.verify import OK_REENCODED, OK_UNHASHED, FileCheck, check_file, verify_folder
from sr_bench.errors import UserError, unknown
from sr_bench.hashing import file_sha256

TEMP_PREFIX = ".srbench-fetch-"
CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchResult:
    card: DatasetCard
    path: Path
    status: str  # "fetched" | "replaced" | "already present"
    url: str | None = None
    reencoded: int = 0
    unhashed: int = 0  # files the card has no hash for: checked present and intact only
    archive_checked: bool = False  # the card's archive sha256 matched the download

    def message(self) -> str:
        if self.status == "already present":
            return f"{self.card.name} is already present and verified in {self.path}; nothing to do"
        extra = f" ({self.reencoded} re-encoded, same pixels)" if self.reencoded else ""
        if self.unhashed:
            archive = ("the archive matched the card's published sha256" if self.archive_checked else
                       "the archive's sha256 was not checked against the card")
            return (f"{self.card.name}: {len(self.card.files)} files present and intact ({self.unhashed} without a "
                    f"published hash; {archive}) and {self.status} into {self.path}")
        return f"{self.card.name}: {len(self.card.files)} files verified{extra} and {self.status} into {self.path}"


def archive_url(card: DatasetCard, url: str | None = None) -> tuple[str, bool]:
    """The URL to download and whether the card's archive sha256 applies to it; a local path given as ``url`` (an
    archive downloaded by hand) becomes a ``file://`` URL."""
    if url:
        if "://" not in url and Path(url).expanduser().is_file():
            return Path(url).expanduser().resolve().as_uri(), False
        return url, False
    mirror = os.environ.get("SRBENCH_MIRROR")
    if mirror:
        if not card.download.archive_name:
            raise UserError(f"card {card.path} names no archive file for SRBENCH_MIRROR; pass --url URL")
        return f"{mirror.rstrip('/')}/{card.download.archive_name}", True
    if not card.download.url:
        raise UserError(f"card {card.path} has no download url; pass --url URL (a zip or tar holding the files)")
    return card.download.url, True


def fetch(name: str, data_root: str | Path | None = None, url: str | None = None, force: bool = False,
          cards_dir: str | Path | None = None, progress: bool = True,
          say: Callable[[str], None] | None = None) -> FetchResult:
    """Download, verify and install dataset ``name`` under the data root (see the module docstring)."""
    say = say or (lambda _msg: None)
    card = find_card(name, cards_dir)
    if card is None:
        raise unknown("dataset", name, all_names(load_cards(cards_dir)))
    dest = dataset_folder(resolve_root(data_root), card.folder)  # an existing `set5/` counts as `Set5/`
    root = dest.parent  # the work folder goes beside dest, on its file system, so the final rename is atomic

    if dest.exists() and not _empty_dir(dest):  # an empty folder holds nothing worth protecting
        if not dest.is_dir():
            raise UserError(f"{dest} exists and is not a folder; move it away and fetch again")
        report = verify_folder(card, dest)
        if report.ok:
            return FetchResult(card, dest, "already present")
        if not force:
            raise UserError(f"{dest} exists but does not verify ({len(report.problems)} file(s) differ, e.g. "
                            f"{_describe(report.problems[0])}); move it away, or pass --force to replace it")

    source, enforce_archive_hash = archive_url(card, url)
    created_root = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{card.key}-", dir=root))
    except OSError as e:
        raise UserError(f"cannot write to the data root {root} ({e.strerror}); pick another with --data-root") from None
    try:
        archive = work / _archive_name(source)
        say(f"downloading {source}")
        download(source, archive, progress=progress)
        archive_checked = _check_archive_hash(card, archive, source, enforce_archive_hash, say)

        found = extract_named(archive, {f.name for f in card.files}, work / "extracted")
        archive.unlink()
        staged = work / "staged" / card.folder
        staged.mkdir(parents=True)
        reencoded, unhashed = _stage_verified(card, found, staged, source)

        status = _install(staged, dest, work)
        return FetchResult(card, dest, status, source, reencoded, unhashed, archive_checked)
    except BaseException:
        if created_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(staged: Path, dest: Path, work: Path) -> str:
    """Rename the complete folder into place; an existing one (only with force) is swapped out, then deleted."""
    try:
        if _empty_dir(dest):
            dest.rmdir()
        if not dest.exists():
            os.rename(staged, dest)
            return "fetched"
        old = work / "old"
        os.rename(dest, old)
        try:
            os.rename(staged, dest)
        except OSError:
            os.rename(old, dest)
            raise
        return "replaced"
    except OSError as e:
        raise UserError(f"could not move the verified files into {dest} ({e.strerror}); is another fetch running? "
                        "try again") from None


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _archive_name(url: str) -> str:
    # Named after the URL so messages point at what the user asked for; odd names (query strings) get a plain one.
    name = PurePosixPath(urlparse(url).path).name
    return name if re.fullmatch(r"[\w.+-]{1,120}", name) else "archive"


def _check_archive_hash(card, archive: Path, source: str, enforce: bool, say) -> bool:
    """Whether the archive matched the card's sha256 (False: the card has none, or --url gave another archive)."""
    want = card.download.sha256
    if not want:
        return False
    got = file_sha256(archive)
    if got == want:
        return True
    if enforce:
        raise UserError(f"archive from {source} has sha256 {got[:12]}..., card says {want[:12]}... "
                        "(corrupt or changed download); try again or pass --url")
    say(f"note: this archive's sha256 differs from the card's ({card.download.archive_name}); verifying each file")
    return False


def _stage_verified(card: DatasetCard, found: dict[str, list[Path]], staged: Path, source: str) -> tuple[int, int]:
    """Move one verified copy of every card file into ``staged``; all must verify or nothing is kept."""
    failures: list[FileCheck] = []
    chosen: list[tuple[Path, FileCheck]] = []
    for f in card.files:
        candidates = found.get(f.name, [])
        if not candidates:
            failures.append(FileCheck(f.name, "missing", "not in the archive"))
            continue
        # A repository snapshot can hold the same name twice (e.g. a colour and a gray copy): take the one that fits.
        checks = [(p, check_file(p, f)) for p in candidates]
        good = [(p, c) for p, c in checks if c.ok]
        if good:
            chosen.append(good[0])
        else:
            failures.append(checks[0][1])
    if failures:
        shown = "; ".join(_describe(c) for c in failures[:3]) + ("; ..." if len(failures) > 3 else "")
        raise UserError(f"{len(failures)} of {len(card.files)} {card.name} files from {source} did not verify "
                        f"({shown}); nothing was installed")
    for path, _ in chosen:
        os.replace(path, staged / path.name)
    return sum(c.status == OK_REENCODED for _, c in chosen), sum(c.status == OK_UNHASHED for _, c in chosen)


def _describe(check: FileCheck) -> str:
    return f"{check.name}: {check.status}" + (f", {check.detail}" if check.detail else "")


def download(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> None:
    """Write the body at ``url`` to ``dest``. A short body (fewer bytes than Content-Length,
    which urllib does not flag by itself) or any network error is a UserError."""
    request = urllib.request.Request(url, headers={"User-Agent": f"sr_bench/{sr_bench.__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise UserError(f"download of {url} failed: HTTP {e.code} {e.reason}; check the URL or pass --url") from None
    except urllib.error.URLError as e:
        raise UserError(f"cannot reach {url} ({e.reason}); check the network or pass --url / SRBENCH_MIRROR") from None
    except (ValueError, OSError, http.client.HTTPException) as e:
        raise UserError(f"cannot download {url} ({e}); check the URL") from None
    received = 0
    with response:
        length_header = response.headers.get("Content-Length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        bar = tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, file=sys.stderr,
                   disable=not progress or None, leave=False)
        try:
            with open(dest, "wb") as out, bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise UserError(f"download of {url} was interrupted after {received} bytes ({e}); try again") from None
    if expected is not None and received != expected:
        raise UserError(f"download of {url} is truncated: got {received} of {expected} bytes; try again")
    if received == 0:
        raise UserError(f"download of {url} is empty; check the URL")
