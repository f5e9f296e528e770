"""What a finished run says about its failures: the summary line and the exit status of ``srbench run``.

Rows record why an evaluation failed (``error``) and what failed (``error_kind``): ``data`` means the image cannot be
measured (unreadable, too small for the scale) and is expected in a large grid; ``model``, ``metric`` and ``worker``
mean code failed and the table is missing numbers it should have, so the run exits non-zero.
"""

from __future__ import annotations

CODE_ERRORS = ("model", "metric", "worker")  # error kinds that mean code failed, not that an image is unusable


def failure_summary(rows) -> str:
    """'N of M evaluations failed: 2 data (e.g. ...), 1 model (e.g. ...)', or '' when none did."""
    errors = rows[rows["error"].fillna("") != ""]
    if not len(errors):
        return ""
    kinds = errors["error_kind"].fillna("").replace("", "unclassified")
    order = sorted(kinds.unique(), key=lambda k: (k not in CODE_ERRORS, k))
    parts = []
    for kind in order:
        first = errors[kinds == kind].iloc[0]
        parts.append(f"{int((kinds == kind).sum())} {kind} (e.g. {first['dataset']}/{first['image']} "
                     f"x{first['scale_text']} {first['model']}: {first['error']})")
    return f"{len(errors)} of {len(rows)} evaluations failed: {'; '.join(parts)}; see the 'error' column"


def exit_status(rows) -> int:
    """1 when code failed on some evaluation (a model, a metric, a worker) or nothing was measured; else 0."""
    errors = rows["error"].fillna("") != ""
    kinds = set(rows.loc[errors, "error_kind"].fillna(""))
    return int(bool(kinds & set(CODE_ERRORS)) or bool(errors.all()))
