"""Paired comparison of two models on the same images (``srbench compare``; the README says what is paired, dropped
and refused): statistics per (dataset, scale, metric), and their CSV and Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sr_bench.errors import UserError
from sr_bench.metrics import metric_info
from sr_bench.store.schema import metric_columns

PAIR_KEYS = ["dataset", "image", "scale_text"]
ALL_SCALES = "all"
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
LEVEL = 0.95
ZERO_METHOD = "wilcox"  # scipy.stats.wilcoxon: zero differences are dropped before ranking
MIN_WILCOXON = 6  # fewer non-zero differences: no two-sided p below 0.05 is possible (2/2^5 = 0.0625), so NaN
_CHUNK = 2_000_000  # bootstrap index elements drawn at a time (bounds memory for large n)

COLUMNS = ["dataset", "scale", "metric", "higher_is_better", "n", "mean_a", "mean_b", "diff", "ci_low", "ci_high",
           "wins", "ties", "losses", "p_wilcoxon", "excluded"]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a model's rows, and what tables call it."""

    model: str
    run: str  # the run id the rows come from
    label: str  # the model name, with the run id when both sides have the same name
    untrained: bool = False


@dataclass
class Pairing:
    """Rows of A and B matched on (dataset, image, scale_text); columns ``<metric>_a`` / ``<metric>_b``."""

    pairs: pd.DataFrame
    a: Side
    b: Side
    metrics: tuple[str, ...]
    protocol: str
    fingerprint: str
    one_side_only: int  # (dataset, image, scale) keys measured for one model only
    with_error: int  # keys where at least one side has an error row

    @property
    def dropped(self) -> int:
        return self.one_side_only + self.with_error


# ----------------------------------------------------------------------------------------------- statistics ----
def bootstrap_ci(diff, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile-method paired bootstrap interval of ``mean(diff)``: resample b (0-based, in order) draws ``n``
    uniforms ``u`` from ``np.random.default_rng(seed).random`` and takes the pairs ``floor(u * n)``; the interval is
    the (1-LEVEL)/2 and (1+LEVEL)/2 percentiles (numpy's linear rule) of the resample means. (NaN, NaN) without pairs.
    """
    d = np.asarray(diff, dtype=np.float64)
    n = d.size
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, _CHUNK // n)
    for start in range(0, n_resamples, chunk):
        k = min(chunk, n_resamples - start)
        idx = np.minimum((rng.random((k, n)) * n).astype(np.intp), n - 1)
        means[start:start + k] = d[idx].mean(axis=1)
    tail = (1.0 - LEVEL) / 2.0
    lo, hi = np.percentile(means, [100.0 * tail, 100.0 * (1.0 - tail)])
    return float(lo), float(hi)


def half_width(values, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> float:
    """Half the width of the 95% percentile-bootstrap interval of the mean of ``values`` (non-finite values left
    out; NaN below two values): the ``±`` of ``srbench table --ci``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan
    lo, hi = bootstrap_ci(v, n_resamples, seed)
    return (hi - lo) / 2.0


def wilcoxon_p(diff) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``diff`` (scipy, ``zero_method='wilcox'``: zero differences are
    dropped; ``method='auto'``: exact for small samples, else the normal approximation). NaN when fewer than
    ``MIN_WILCOXON`` differences are non-zero (all zero included)."""
    from scipy.stats import wilcoxon

    d = np.asarray(diff, dtype=np.float64)
    if np.count_nonzero(d) < MIN_WILCOXON:
        return math.nan
    return float(wilcoxon(d, zero_method=ZERO_METHOD, alternative="two-sided", method="auto").pvalue)


def paired_stats(a, b, higher_is_better: bool, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> dict:
    """Every statistic of one cell: n, means, B - A with its bootstrap interval, B's wins/ties/losses (ties by exact
    equality) in the metric's direction, the Wilcoxon p; pairs with a non-finite value on either side are left out
    (``excluded``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = b - a
    lo, hi = bootstrap_ci(d, n_resamples, seed)
    higher, ties, lower = int(np.sum(b > a)), int(np.sum(b == a)), int(np.sum(b < a))
    wins, losses = (higher, lower) if higher_is_better else (lower, higher)
    mean_a, mean_b, diff = (float(x.mean()) if d.size else math.nan for x in (a, b, d))
    return {"n": int(d.size), "mean_a": mean_a, "mean_b": mean_b, "diff": diff, "ci_low": lo, "ci_high": hi,
            "wins": wins, "ties": ties, "losses": losses, "p_wilcoxon": wilcoxon_p(d), "excluded": int((~ok).sum())}


# ---------------------------------------------------------------------------------------------------- pairing ----
def check_same_protocol(rows_a: pd.DataFrame, rows_b: pd.DataFrame, a: Side, b: Side) -> tuple[str, str]:
    """The one (protocol, fingerprint) both sides were measured under, or a UserError naming both."""
    pa_, pb_ = (sorted(set(zip(r["protocol"], r["protocol_fingerprint"], strict=True))) for r in (rows_a, rows_b))
    if len(pa_) == 1 and pa_ == pb_:
        return pa_[0]
    text = lambda ps: " + ".join(f"{p} ({f})" for p, f in ps)  # noqa: E731
    if {p for p, _ in pa_} == {p for p, _ in pb_}:
        fix = ("the protocol's rules changed between the sr_bench versions that made them; rerun the older run with "
               "this sr_bench")
    else:
        fix = (f"rerun {b.model} (run {b.run}) with --protocol {pa_[0][0]}, or {a.model} (run {a.run}) with "
               f"--protocol {pb_[0][0]}")
    raise UserError(f"cannot compare: {a.label} was measured under protocol {text(pa_)} and {b.label} under "
                    f"{text(pb_)}; numbers from different protocols are not comparable; {fix}")


def pair_rows(rows_a: pd.DataFrame, rows_b: pd.DataFrame, a: Side, b: Side,
              metrics: tuple[str, ...] | None = None) -> Pairing:
    """Pair ``a.model``'s rows in ``rows_a`` with ``b.model``'s in ``rows_b`` on (dataset, image, scale_text); keys
    without an error-free row on both sides are counted (``one_side_only``, ``with_error``). ``metrics``: default
    every metric column with a value on both sides."""
    # a re-measured key keeps its newest row, as sr_bench.store.load_rows does (for frames read some other way)
    ra, rb = (r[r["model"] == s.model].sort_values("created").drop_duplicates(PAIR_KEYS, keep="last")
              for r, s in ((rows_a, a), (rows_b, b)))
    for side, r in ((a, ra), (b, rb)):
        if r.empty:
            raise UserError(f"run {side.run} has no rows for model {side.model!r}")
    protocol, fingerprint = check_same_protocol(ra, rb, a, b)
    ok_a, ok_b = (r[r["error"].fillna("") == ""] for r in (ra, rb))
    measured = lambda m: m in ok_a and m in ok_b and ok_a[m].notna().any() and ok_b[m].notna().any()  # noqa: E731
    if metrics is None:
        metrics = tuple(m for m in metric_columns(ok_a) if measured(m))
    else:
        for m in metrics:
            metric_info(m)  # an unknown name fails with a suggestion
            if not measured(m):
                raise UserError(f"metric {m!r} was not measured for both {a.label} and {b.label}")
    if not metrics:
        raise UserError(f"no metric was measured for both {a.label} and {b.label}")
    keep = [*PAIR_KEYS, "scale", *metrics]
    pairs = ok_a[keep].merge(ok_b[keep].drop(columns="scale"), on=PAIR_KEYS, suffixes=("_a", "_b"), validate="1:1")
    keys = lambda r: set(zip(*(r[k] for k in PAIR_KEYS), strict=True))  # noqa: E731
    all_a, all_b = keys(ra), keys(rb)
    paired = keys(pairs)
    errored = (all_a - keys(ok_a)) | (all_b - keys(ok_b))
    unpaired = (all_a | all_b) - paired
    with_error = len(unpaired & errored)
    order = {d: i for i, d in enumerate(pd.unique(pd.concat([ra["dataset"], rb["dataset"]])))}
    pairs = (pairs.assign(_d=pairs["dataset"].map(order)).sort_values(["_d", "scale", "image"])
             .drop(columns="_d").reset_index(drop=True))
    return Pairing(pairs=pairs, a=a, b=b, metrics=tuple(metrics), protocol=protocol, fingerprint=fingerprint,
                   one_side_only=len(unpaired) - with_error, with_error=with_error)


def compare_table(pairing: Pairing, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """One row per (dataset, scale, metric) in ``COLUMNS``; scale is the scale text, or ``"all"`` for the per-image
    means over a dataset's scales (one image's differences at several scales are not independent), for a dataset
    paired at two or more scales. Each cell's bootstrap starts from a fresh generator seeded with ``seed``, so a
    cell's interval does not depend on what else is compared."""
    out = []
    p = pairing.pairs
    for dataset, part in p.groupby("dataset", sort=False):
        scales = list(pd.unique(part["scale_text"]))
        for metric in pairing.metrics:
            hib = metric_info(metric).higher_is_better
            for s in scales:
                cell = part[part["scale_text"] == s]
                out.append({"dataset": dataset, "scale": s, "metric": metric, "higher_is_better": hib,
                            **paired_stats(cell[f"{metric}_a"], cell[f"{metric}_b"], hib, n_resamples, seed)})
            if len(scales) > 1:
                a_col, b_col = f"{metric}_a", f"{metric}_b"
                finite = part[np.isfinite(part[a_col]) & np.isfinite(part[b_col])]
                per_image = finite.groupby("image", sort=False)[[a_col, b_col]].mean()
                row = paired_stats(per_image[a_col], per_image[b_col], hib, n_resamples, seed)
                row["excluded"] = len(part) - len(finite)
                out.append({"dataset": dataset, "scale": ALL_SCALES, "metric": metric, "higher_is_better": hib, **row})
    return pd.DataFrame(out, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------- rendering ----
def to_csv(table: pd.DataFrame, pairing: Pairing) -> str:
    """``COLUMNS`` (``diff`` is B - A, ``wins``/``losses`` are B's) plus ``model_a``, ``run_a``, ``model_b``,
    ``run_b``, ``protocol_fingerprint``; full float precision."""
    df = table.assign(model_a=pairing.a.model, run_a=pairing.a.run, model_b=pairing.b.model, run_b=pairing.b.run,
                      protocol_fingerprint=pairing.fingerprint)
    return df.to_csv(index=False, float_format="%.10g")


def _num(v: float, decimals: int, signed: bool = False) -> str:
    if v is None or math.isnan(v):
        return "–"
    return f"{v:+.{decimals}f}" if signed else f"{v:.{decimals}f}"


def stat_texts(r, decimals: int) -> list[str]:
    """n, mean A, mean B, B - A, its 95% CI (one digit finer than the means), W/T/L and p of one ``compare_table``
    row."""
    d = decimals + 1
    ci = "–" if math.isnan(r["ci_low"]) else f"[{_num(r['ci_low'], d, True)}, {_num(r['ci_high'], d, True)}]"
    return [str(r["n"]), _num(r["mean_a"], decimals), _num(r["mean_b"], decimals), _num(r["diff"], d, True), ci,
            f"{r['wins']}/{r['ties']}/{r['losses']}", "–" if math.isnan(r["p_wilcoxon"]) else f"{r['p_wilcoxon']:.2g}"]


def _better(r, a: str, b: str, name: str) -> str:
    if r["n"] == 0 or math.isnan(r["diff"]):
        return "–"
    if r["diff"] == 0:
        return "neither (equal means)"
    b_higher = r["diff"] > 0
    side = b if b_higher == bool(r["higher_is_better"]) else a
    higher = b_higher if side == b else not b_higher
    text = f"{side} ({'higher' if higher else 'lower'} {name})"
    if not (r["ci_low"] > 0 or r["ci_high"] < 0):
        text += ", CI includes 0"
    return text


def to_markdown(table: pd.DataFrame, pairing: Pairing, n_resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> str:
    """A heading line, one table per metric (headers from the metric's metadata), and what the columns mean."""
    a, b = pairing.a, pairing.b
    la, lb = (s.label + (" (untrained)" if s.untrained else "") for s in (a, b))
    runs = f"run {a.run}" if a.run == b.run else f"runs {a.run} (A) and {b.run} (B)"
    dropped = (f"{pairing.dropped} dropped as unpaired ({pairing.one_side_only} measured for one model only, "
               f"{pairing.with_error} with an error row)" if pairing.dropped else "none dropped as unpaired")
    lines = [f"A = {la}, B = {lb} ({runs}); protocol {pairing.protocol} ({pairing.fingerprint}); "
             f"{len(pairing.pairs)} paired (dataset, image, scale) rows: only the images both models measured "
             f"without an error are compared (their means can differ from the tables' means over each model's own "
             f"images), {dropped}."]
    for metric in pairing.metrics:
        info = metric_info(metric)
        name = info.name.upper()
        part = table[table["metric"] == metric]
        direction = "higher is better" if info.higher_is_better else "lower is better"
        unit = f"{info.unit}; " if info.unit else ""
        lines += ["", f"### {name} {'↑' if info.higher_is_better else '↓'} ({unit}{direction})", "",
                  f"| dataset | scale | n | A {la} | B {lb} | B − A | 95% CI of B − A | B wins/ties/losses | "
                  f"p (Wilcoxon) | better |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for _, r in part.iterrows():
            scale = "all (per-image mean)" if r["scale"] == ALL_SCALES else f"x{r['scale']}"
            cells = [r["dataset"], scale, *stat_texts(r, info.decimals), _better(r, a.label, b.label, name)]
            lines.append("| " + " | ".join(cells) + " |")
        excluded = int(part.loc[part["scale"] != ALL_SCALES, "excluded"].sum())
        if excluded:
            lines += ["", f"{excluded} pair(s) with a missing or non-finite {name} "
                          "(e.g. an exact SR's infinite PSNR) left out."]
    lines += ["", f"B − A: mean over the pairs of B's value minus A's. 95% CI: paired bootstrap of that mean "
              f"({n_resamples:,} resamples of the pairs, percentile method, seed {seed}); an interval that excludes 0 "
              f"says the sign of the difference holds up when the images are resampled. p: two-sided Wilcoxon "
              f"signed-rank test (scipy, zero_method='{ZERO_METHOD}': zero differences dropped), – with fewer than "
              f"{MIN_WILCOXON} non-zero differences. Wins/ties/losses: images where B is better than, exactly equal "
              f"to, worse than A in the metric's direction."
              + (" 'all': each image counts once, its values averaged over its paired scales first."
                 if (table["scale"] == ALL_SCALES).any() else "")]
    return "\n".join(lines)
