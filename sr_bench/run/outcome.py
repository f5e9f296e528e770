"""What a finished run says about its failures: the summary line and the exit status of ``srbench run``.

Rows record why an evaluation failed (``error``) and what failed (``error_kind``): ``data`` means the image cannot be
measured (unreadable, too small for the scale) and is expected in a large grid; ``model``, ``metric`` and ``worker``
mean code failed and the table is missing numbers it should have, so the run exits non-zero. So does one metric that
raised on an evaluation whose other metrics were measured: the row keeps those, and ``metric_errors`` says which failed.
"""

from __future__ import annotations

import json

CODE_ERRORS = ("model", "metric", "worker")  # error kinds that mean code failed, not that an image is unusable


def failure_summary(rows) -> str:
    """'N of M evaluations failed: 2 data (e.g. ...), 1 model (e.g. ...)', and 'metric X failed on K evaluations
    whose other metrics were kept (e.g. ...)', or '' when nothing failed."""
    errors = rows[rows["error"].fillna("") != ""]
    partial = _partial_metric_failures(rows)
    if not len(errors):
        return partial
    kinds = errors["error_kind"].fillna("").replace("", "unclassified")
    order = sorted(kinds.unique(), key=lambda k: (k not in CODE_ERRORS, k))
    parts = []
    for kind in order:
        first = errors[kinds == kind].iloc[0]
        parts.append(f"{int((kinds == kind).sum())} {kind} (e.g. {first['dataset']}/{first['image']} "
                     f"x{first['scale_text']} {first['model']}: {first['error']})")
    text = f"{len(errors)} of {len(rows)} evaluations failed: {'; '.join(parts)}; see the 'error' column"
    return text + (f"\n{partial}" if partial else "")


def _partial_metric_failures(rows) -> str:
    """One line per metric that raised on evaluations whose other metrics were measured (``metric_errors``)."""
    if "metric_errors" not in rows:
        return ""
    ok = rows[(rows["error"].fillna("") == "") & (rows["metric_errors"].fillna("") != "")]
    failed: dict[str, list] = {}
    for r in ok.itertuples():
        for name, why in json.loads(r.metric_errors).items():
            failed.setdefault(name, []).append((r, why))
    return "\n".join(f"metric {name} failed on {len(hits)} of {len(rows)} evaluations, whose other metrics were kept "
                     f"(e.g. {hits[0][0].dataset}/{hits[0][0].image} x{hits[0][0].scale_text} {hits[0][0].model}: "
                     f"{hits[0][1]}); see the 'metric_errors' column" for name, hits in failed.items())


def exit_status(rows) -> int:
    """1 when code failed on some evaluation (a model, a metric, a worker, also one metric of an otherwise measured
    evaluation) or nothing was measured; else 0."""
    errors = rows["error"].fillna("") != ""
    kinds = set(rows.loc[errors, "error_kind"].fillna(""))
    partial = "metric_errors" in rows and bool((rows["metric_errors"].fillna("") != "").any())
    return int(bool(kinds & set(CODE_ERRORS)) or partial or bool(errors.all()))
