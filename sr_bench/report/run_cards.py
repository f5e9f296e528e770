"""What a run was compared with: the published values of the model cards its views use, stored in the run folder
(``published.json``, with each card's ``[[published]]`` sha256) on first use, so that an edited card never changes an
existing run's tables (docs/paper-tables.md, "Reported rows")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sr_bench.models.cards import card_for
from sr_bench.store.atomic import atomic_write_text

STORE = "published.json"
_KEPT = ("name", "display_name", "paper", "published")  # what the tables read from a card


def published_sha256(card: dict) -> str:
    """The hash of a card's ``[[published]]`` blocks (canonical JSON): what a stored copy is compared by."""
    text = json.dumps(card.get("published", []), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class RunCards:
    """A card lookup (``name -> card dict | None``) for one run: the stored copy when the run has one, else the
    installed card, stored on first use. ``notes`` say where the installed card differs from the stored copy."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / STORE
        try:
            self.stored: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except (OSError, ValueError):
            self.stored = {}  # unreadable: rebuilt from the installed cards (the file is ours, not the rows)
        self.notes: list[str] = []

    def __call__(self, name: str) -> dict | None:
        installed = card_for(name)
        entry = self.stored.get(name) or (self.stored.get(installed["name"]) if installed else None)
        if entry is None:
            if installed is None:
                return None
            entry = {"published_sha256": published_sha256(installed), "card": {k: installed[k] for k in _KEPT
                                                                               if k in installed}}
            self.stored[installed["name"]] = entry
            self._write()
            return installed
        if installed is not None and published_sha256(installed) != entry["published_sha256"]:
            note = (f"the installed card of {entry['card']['name']!r} has other published values than the copy stored "
                    f"with this run ({self.path.name}, sha256 {entry['published_sha256'][:12]}); the tables use the "
                    f"stored copy (delete {self.path} to compare with the installed card)")
            if note not in self.notes:
                self.notes.append(note)
        return {**(installed or {}), **entry["card"]}

    def _write(self) -> None:
        try:
            atomic_write_text(self.path, json.dumps(self.stored, indent=1, sort_keys=True, default=str) + "\n")
        except OSError:  # a read-only run folder: the tables still work, from the installed cards
            pass
