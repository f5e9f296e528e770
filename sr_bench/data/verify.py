"""Checking files on disk against a card: bytes first, decoded pixels when the bytes differ. A byte mismatch alone is
not an error: re-saving a PNG losslessly (other compression, stripped metadata) changes the file but not the pixels,
which are all a benchmark reads. Extra files are listed but pass, since only the card's files are ever read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sr_bench.data.cards import CardFile, DatasetCard, all_names, find_card, load_cards
from sr_bench.data.resolve import image_files
from sr_bench.data.roots import dataset_folder, resolve_root
from sr_bench.errors import UserError, unknown
from sr_bench.hashing import file_sha256
from sr_bench.imaging.io import ImageReadError, pixel_sha256, read_image

OK = "ok"
OK_REENCODED = "ok (re-encoded)"
OK_UNHASHED = "ok (no published hash)"  # present, and its image structure is intact (PNG/JPEG checksums, no decode)
MISSING = "missing"
PIXELS_DIFFER = "pixels differ"
BYTES_DIFFER = "bytes differ"  # the card has no pixel hash to fall back on
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class FileCheck:
    name: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (OK, OK_REENCODED, OK_UNHASHED)


@dataclass
class VerifyReport:
    card: DatasetCard
    folder: Path
    checks: list[FileCheck] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    folder_missing: bool = False

    @property
    def ok(self) -> bool:
        return not self.folder_missing and all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[FileCheck]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str:
        if self.folder_missing:
            return f"{self.card.name}: folder {self.folder} not found"
        n, bad = len(self.checks), len(self.problems)
        reenc = sum(c.status == OK_REENCODED for c in self.checks)
        parts = [f"{n - bad}/{n} ok"] + ([f"{reenc} re-encoded"] if reenc else []) + (
            [f"{bad} differ"] if bad else []) + ([f"{len(self.extra)} extra file(s)"] if self.extra else [])
        text = f"{self.card.name}: {', '.join(parts)} ({self.folder})"
        if any(c.status == OK_UNHASHED for c in self.checks):
            text += ("\n  checks made: file names, count and each file's integrity (PNG/JPEG checksums); no published "
                     "source gives per-file hashes for this card, so the contents are not checked (`datasets fetch` "
                     "checks the archive's published sha256 when downloading from the card's URL)")
        return text


def check_file(path: Path, expected: CardFile) -> FileCheck:
    """One file against its card entry."""
    if not path.is_file():
        return FileCheck(expected.name, MISSING)
    if not expected.sha256 and not expected.pixel_sha256:
        return _check_unhashed(path, expected)
    try:
        if file_sha256(path) == expected.sha256:
            return FileCheck(expected.name, OK)
    except OSError as e:
        return FileCheck(expected.name, UNREADABLE, f"cannot read {path}: {e.strerror}")
    size = path.stat().st_size
    size_note = f"{size} bytes, card says {expected.bytes}" if expected.bytes is not None else f"{size} bytes"
    if not expected.pixel_sha256:
        return FileCheck(expected.name, BYTES_DIFFER, f"sha256 differs ({size_note}); the card has no pixel hash")
    try:
        arr = read_image(path)
    except ImageReadError as e:
        return FileCheck(expected.name, UNREADABLE, str(e))
    if pixel_sha256(arr) == expected.pixel_sha256:
        return FileCheck(expected.name, OK_REENCODED, f"bytes differ ({size_note}), decoded pixels identical")
    h, w, c = arr.shape
    got = f"decoded {w}x{h} with {c} channel(s)"
    if expected.width is not None and (expected.width, expected.height) != (w, h):
        return FileCheck(expected.name, PIXELS_DIFFER, f"{got}, card says {expected.width}x{expected.height}")
    if expected.mode and (c == 1) != (expected.mode in ("L", "1", "I;16", "I")):
        return FileCheck(expected.name, PIXELS_DIFFER, f"{got}, card says mode {expected.mode}")
    return FileCheck(expected.name, PIXELS_DIFFER, f"{got}: same size, different pixel values")


def _check_unhashed(path: Path, expected: CardFile) -> FileCheck:
    """A file the card lists without a hash: present and structurally intact (Pillow's ``verify``: the PNG chunk
    CRCs, the JPEG markers) is all that can be checked."""
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as e:  # Pillow raises many types on damaged files
        return FileCheck(expected.name, UNREADABLE, f"damaged or not an image ({type(e).__name__}: {e})")
    return FileCheck(expected.name, OK_UNHASHED)


def verify_folder(card: DatasetCard, folder: Path) -> VerifyReport:
    if not folder.is_dir():
        return VerifyReport(card, folder, [FileCheck(f.name, MISSING) for f in card.files], folder_missing=True)
    listed = {f.name for f in card.files}
    return VerifyReport(card, folder, [check_file(folder / f.name, f) for f in card.files],
                        [p.name for p in image_files(folder) if p.name not in listed])


def verify(dataset_name: str, data_root: str | Path | None = None,
           cards_dir: str | Path | None = None) -> VerifyReport:
    """Check the dataset's folder under the data root against its card (see the module docstring)."""
    card = find_card(dataset_name, cards_dir)
    if card is None:
        if dataset_name.strip().lower() == "demo" or Path(dataset_name).expanduser().is_dir():
            raise UserError(f"only card datasets can be verified, not {dataset_name!r}; see `srbench datasets list`")
        raise unknown("dataset", dataset_name, all_names(load_cards(cards_dir)))
    return verify_folder(card, dataset_folder(resolve_root(data_root), card.folder))

