"""Dataset cards: one TOML file per dataset, edited in the repo's ``datasets/*.toml`` (a wheel carries a copy;
``SRBENCH_CARDS`` overrides the folder). A card says what a dataset *is* (the exact files, their byte and pixel
hashes, citation, provenance, where to download it); the images live under a data root (``roots``).
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from sr_bench.builtin_cards import builtin_cards_dir
from sr_bench.errors import UserError


@dataclass(frozen=True)
class CardFile:
    name: str
    sha256: str  # "" when no published source gives it
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    bytes: int | None = None
    pixel_sha256: str | None = None
    note: str = ""

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem


@dataclass(frozen=True)
class Download:
    url: str | None = None
    format: str | None = None
    sha256: str | None = None
    filename: str | None = None

    @property
    def archive_name(self) -> str | None:
        """The archive's file name, which is also its name on a mirror (``SRBENCH_MIRROR``)."""
        if self.filename or not self.url:
            return self.filename or None
        return PurePosixPath(urlparse(self.url).path).name or None


@dataclass(frozen=True)
class DatasetCard:
    name: str
    folder: str
    files: tuple[CardFile, ...]
    path: Path
    aliases: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    source: dict = field(default_factory=dict)
    download: Download = field(default_factory=Download)

    @property
    def key(self) -> str:
        """The short name used in commands (the card's file stem, e.g. ``set5``)."""
        return self.path.stem.lower()

    def names(self) -> set[str]:
        """Every lower-cased name this card answers to."""
        return {self.name.lower(), self.folder.lower(), self.key, *(a.lower() for a in self.aliases)}


def cards_dir(override: str | Path | None = None) -> Path:
    """The folder of dataset cards: the argument, else ``SRBENCH_CARDS``, else the built-in cards (builtin_cards)."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("SRBENCH_CARDS")
    return Path(env).expanduser() if env else builtin_cards_dir("datasets")


def load_cards(folder: str | Path | None = None) -> list[DatasetCard]:
    """All cards in the cards folder, sorted by name; a malformed card is a UserError naming it."""
    d = cards_dir(folder)
    if not d.is_dir():
        return []
    files = sorted(d.glob("*.toml"))
    # Keyed on modification stamps so an edited card is re-read while a run reads each card once.
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return list(_load(stamp))


def find_card(name: str, folder: str | Path | None = None) -> DatasetCard | None:
    """The card whose name, folder, file stem or alias equals ``name`` (case-insensitive)."""
    wanted = name.strip().lower()
    return next((card for card in load_cards(folder) if wanted in card.names()), None)


def all_names(cards: list[DatasetCard]) -> list[str]:
    """Canonical names and aliases, for "did you mean" suggestions."""
    out: dict[str, str] = {}
    for c in cards:
        for n in (c.name, *c.aliases):
            out.setdefault(n.lower(), n)  # one spelling per name, the canonical one first
    return sorted(out.values(), key=str.lower)


@functools.lru_cache(maxsize=8)
def _load(stamp: tuple[tuple[str, int, int], ...]) -> tuple[DatasetCard, ...]:
    cards = [_parse(Path(p)) for p, _, _ in stamp]
    seen: dict[str, Path] = {}
    for card in cards:
        for n in card.names():
            if n in seen and seen[n] != card.path:
                raise UserError(f"dataset cards {seen[n]} and {card.path} both answer to {n!r}; rename one alias")
            seen[n] = card.path
    return tuple(sorted(cards, key=lambda c: c.name.lower()))


def _parse(path: Path) -> DatasetCard:
    def bad(problem: str) -> UserError:
        return UserError(f"dataset card {path}: {problem}; fix or remove the card")

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise bad(f"not valid TOML ({e})") from None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad("missing 'name'")
    folder = raw.get("folder", name)
    if not _plain_name(folder):
        raise bad(f"'folder' must be a single folder name, not {folder!r}")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise bad("'aliases' must be a list of strings")
    entries = raw.get("files")
    if not isinstance(entries, list) or not entries:
        raise bad("no [[files]] entries")
    files = []
    for i, entry in enumerate(entries):
        # sha256 = "" when no published source gives the file's hash (DIV2K): verify then checks what it can
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(
                entry.get("sha256"), str):
            raise bad(f"[[files]] entry {i + 1} needs 'name' and 'sha256' (\"\" when no source publishes it)")
        if not _plain_name(entry["name"]):
            raise bad(f"file name {entry['name']!r} must be a plain file name")
        known = {k: entry[k] for k in ("width", "height", "mode", "bytes", "pixel_sha256", "note") if k in entry}
        files.append(CardFile(name=entry["name"], sha256=entry["sha256"].lower(), **known))
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise bad("two files share a name stem; image names must be unique")
    dl = raw.get("download", {})
    if not isinstance(dl, dict):
        raise bad("'download' must be a table")
    download = Download(url=dl.get("url"), format=dl.get("format"),
                        sha256=dl["sha256"].lower() if dl.get("sha256") else None, filename=dl.get("filename"))
    source = raw.get("source", {})
    return DatasetCard(
        name=name.strip(), folder=folder, files=tuple(sorted(files, key=lambda f: f.name)), path=path,
        aliases=tuple(aliases), description=str(raw.get("description", "")), citation=str(raw.get("citation", "")),
        source=source if isinstance(source, dict) else {"text": str(source)}, download=download,
    )


def _plain_name(s: object) -> bool:
    return isinstance(s, str) and bool(s) and s not in (".", "..") and "/" not in s and "\\" not in s
