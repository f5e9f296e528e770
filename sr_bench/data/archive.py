"""Pulling named files out of a zip or tar archive without trusting its member paths."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from sr_bench.errors import UserError


def extract_named(archive: Path, wanted: set[str], dest: Path) -> dict[str, list[Path]]:
    """Extract every regular-file member whose base name is in ``wanted`` into ``dest``, keeping the archive's
    sub-folders; returns base name -> extracted paths (a name can occur in several sub-folders). The format is
    detected from the content (zip, or tar with any compression), not from the URL. An archive with an unsafe member
    path (absolute, drive letter, ``..``) is refused as a whole; links and devices are never extracted. Only wanted
    members are written, so a large repository snapshot costs no more disk than the dataset.
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = [(i.filename, i) for i in zf.infolist() if not i.is_dir()]
                return _extract(members, zf.open, wanted, archive, dest)
        if _is_tar(archive):
            with tarfile.open(archive, "r:*") as tf:
                members = [(m.name, m) for m in tf.getmembers() if m.isfile()]
                return _extract(members, tf.extractfile, wanted, archive, dest)
        raise UserError(f"downloaded file {archive.name} is not a zip or tar archive (corrupt, or a wrong URL)")
    except NotImplementedError as e:
        raise UserError(f"archive {archive.name} uses an unsupported compression ({e}); repack it as zip or "
                        "tar.gz") from None
    except (OSError, zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, ValueError) as e:
        if isinstance(e, OSError) and e.errno is not None:  # the disk, not the archive (gzip's bad CRCs: no errno)
            raise UserError(f"cannot write extracted files under {dest}: {e.strerror}; free space or pick "
                            "another --data-root") from None
        raise UserError(f"archive {archive.name} is corrupt ({type(e).__name__}: {e}); download it again") from None


def safe_parts(member: str) -> tuple[str, ...] | None:
    """The member's path parts if extracting it stays inside the destination, else None."""
    p = PurePosixPath(member.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        return None
    parts = tuple(x for x in p.parts if x not in ("", "."))
    return parts or None


def _extract(members, open_member, wanted: set[str], archive: Path, dest: Path) -> dict[str, list[Path]]:
    chosen = []
    for name, info in members:
        parts = safe_parts(name)
        if parts is None:
            raise UserError(f"archive {archive.name} contains an unsafe path {name!r}; refusing to extract it")
        if parts[-1] in wanted:
            chosen.append((parts, info))
    found: dict[str, list[Path]] = {}
    for parts, info in chosen:  # only after every path was checked: an unsafe archive writes nothing
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_member(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        found.setdefault(parts[-1], []).append(target)
    return found


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError, EOFError, zlib.error):
        return False
