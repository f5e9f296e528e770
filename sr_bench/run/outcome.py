"""What a finished run says about its failures: the summary line and the exit status of ``srbench run`` (README,
"Run folder"; a ``data`` error is expected in a large grid, the other kinds mean code failed)."""

from __future__ import annotations

import json

CODE_ERRORS = ("model", "metric", "worker")  # error kinds that mean code failed, not that an image is unusable


def failure_summary(rows) -> str:
    """'N of M evaluations failed: 2 data (e.g. ...), 1 model (e.g. ...)', and per metric that raised on evaluations
    whose other metrics were measured (``metric_errors``) 'metric X failed on K evaluations whose other metrics were
    kept (e.g. ...)', or '' when nothing failed."""
    errors = rows[rows["error"].fillna("") != ""]
    kinds = errors["error_kind"].fillna("").replace("", "unclassified")
    parts = []
    for kind in sorted(kinds.unique(), key=lambda k: (k not in CODE_ERRORS, k)):
        first = errors[kinds == kind].iloc[0]
        parts.append(f"{int((kinds == kind).sum())} {kind} (e.g. {first['dataset']}/{first['image']} "
                     f"x{first['scale_text']} {first['model']}: {first['error']})")
    lines = ([f"{len(errors)} of {len(rows)} evaluations failed: {'; '.join(parts)}; see the 'error' column"]
             if parts else [])
    partial = (rows[(rows["error"].fillna("") == "") & (rows["metric_errors"].fillna("") != "")]
               if "metric_errors" in rows else rows.iloc[0:0])
    failed: dict[str, list] = {}
    for r in partial.itertuples():
        for name, why in json.loads(r.metric_errors).items():
            failed.setdefault(name, []).append((r, why))
    lines += [f"metric {name} failed on {len(hits)} of {len(rows)} evaluations, whose other metrics were kept "
              f"(e.g. {hits[0][0].dataset}/{hits[0][0].image} x{hits[0][0].scale_text} {hits[0][0].model}: "
              f"{hits[0][1]}); see the 'metric_errors' column" for name, hits in failed.items()]
    return "\n".join(lines)


def exit_status(rows) -> int:
    """1 when code failed on some evaluation (the kinds above, or one metric beside measured ones) or nothing was
    measured; else 0."""
    errors = rows["error"].fillna("") != ""
    kinds = set(rows.loc[errors, "error_kind"].fillna(""))
    partial = "metric_errors" in rows and bool((rows["metric_errors"].fillna("") != "").any())
    return int(bool(kinds & set(CODE_ERRORS)) or partial or bool(errors.all()))
