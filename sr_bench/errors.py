"""User-facing errors: one line that names the thing and the fix."""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """Bad input from the user (names, specs, files). The CLI prints the message verbatim, without a traceback;
    any other exception is a bug."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    lowered = {c.lower(): c for c in sorted(set(choices))}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """An error for an unknown name that suggests the closest known ones."""
    choices = sorted(set(choices))
    near = closest(name, choices)
    hint = f"did you mean {', '.join(repr(c) for c in near)}?" if near else f"known: {', '.join(choices)}"
    return UserError(f"unknown {kind} {name!r}; {hint}")
