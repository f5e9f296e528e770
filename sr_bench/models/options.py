"""``--model-opt KEY=VALUE``: the one place option values get their types (``srbench run`` and ``srbench train``).

| written                     | arrives as                     |
|-----------------------------|--------------------------------|
| ``true`` / ``false``        | ``True`` / ``False`` (any case) |
| ``none`` / ``null``         | ``None`` (any case)            |
| ``23``, ``-1``              | ``int``                        |
| ``0.5``, ``1e-4``, ``-2.``  | ``float``                      |
| ``2,3,4``, ``a,b``          | ``list`` of the values above (``[2, 3, 4]``, ``['a', 'b']``) |
| ``[2,3,4]``, ``[2]``, ``[]`` | the same ``list`` (brackets: a one-item or empty list too) |
| ``"2,3"``, ``'true'``       | the ``str`` inside the quotes  |
| anything else               | the ``str`` as written         |

Keys: ``KEY`` goes to every model that takes it, ``NAME.KEY`` to model NAME only (``models/building.py``). A bracket
that does not close, or a list inside a list, is an error rather than a string. Values are parsed once, here; run.json
stores the parsed values, so ``--resume`` and ``compare --visual`` give a model the same options. ``option_text``
writes a value back in this syntax (``srbench train``'s printed run command).
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
    """One ``--model-opt`` value by the table above."""
    t = text.strip()
    quoted = len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'"
    if not quoted and (t.startswith("[") or t.endswith("]")):
        if not (t.startswith("[") and t.endswith("]")) or "[" in t[1:-1] or "]" in t[1:-1]:
            raise UserError(f"bad --model-opt value {text!r}: write a list as [2,3,4] (one pair of brackets, no "
                            f"nested lists), or quote it ('[2') to pass the text")
        inner = t[1:-1].strip()
        return _items(inner, text) if inner else []
    if "," in t and not quoted:
        return _items(t, text)
    return _scalar(t)


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
