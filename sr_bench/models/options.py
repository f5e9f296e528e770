"""``--model-opt KEY=VALUE``: the one place option values get their types (``srbench run`` and ``srbench train``;
the syntax: README, "Options"). ``option_text`` writes a value back in it (``srbench train``'s printed run command).
"""

from __future__ import annotations

import re

from sr_bench.errors import UserError

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _scalar(text: str):
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    if t.lower() in _WORDS:
        return _WORDS[t.lower()]
    if _INT.fullmatch(t):
        return int(t)
    if _FLOAT.fullmatch(t):
        return float(t)
    return t


def parse_value(text: str):
    """One ``--model-opt`` value, typed."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":  # quoted: the text inside, whatever it holds
        return t[1:-1]
    if t.startswith("[") or t.endswith("]"):
        if not (t.startswith("[") and t.endswith("]")) or "[" in t[1:-1] or "]" in t[1:-1]:
            raise UserError(f"bad --model-opt value {text!r}: write a list as [2,3,4] (one pair of brackets, no "
                            f"nested lists), or quote it ('[2') to pass the text")
        inner = t[1:-1].strip()
        return _items(inner, text) if inner else []
    return _items(t, text) if "," in t else _scalar(t)


def _items(t: str, text: str) -> list:
    items = [p.strip() for p in t.split(",")]
    if any(not p for p in items):
        raise UserError(f"bad --model-opt value {text!r}: an empty item between commas; write e.g. 2,3,4")
    return [_scalar(p) for p in items]


def parse_model_opts(pairs) -> dict:
    """``("k=v", ...)`` -> ``{"k": parsed v}``; a repeated key is an error."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"bad --model-opt {pair!r}: write KEY=VALUE, e.g. num_block=23")
        if key in out:
            raise UserError(f"--model-opt {key} is given twice; give each option once")
        out[key] = parse_value(value)
    return out


def option_text(value) -> str:
    """``value`` written so that ``parse_value`` gives it back."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(option_text(v) for v in value) + "]"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    return text if parse_value(text) == text else f"'{text}'"
