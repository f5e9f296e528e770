"""The tables SR papers print, built from per-image rows and model cards and rendered by ``report/formats``: the
``paper`` layout (methods x datasets, one block per scale) and the ``scales`` layout (one table per dataset and metric,
methods x scales). Cells, ranks, marks and notes follow docs/paper-tables.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sr_bench.errors import UserError
from sr_bench.metrics import metric_info
from sr_bench.models.cards import card_for
from sr_bench.report.compare import bootstrap_ci, half_width
from sr_bench.report.reported import ENSEMBLE_SUFFIX, CardLookup, ReportedModel, measured_card, reported_model, year_of
from sr_bench.report.tables import INCOMPLETE_MARK as INCOMPLETE
from sr_bench.report.tables import UNVERIFIED_MARK as UNVERIFIED
from sr_bench.report.tables import UNVERIFIED_MEANING, coverage_text, dataset_sizes, memory_text, summarize
from sr_bench.scales import parse_scale
from sr_bench.store.schema import metric_columns

LAYOUTS = ("long", "paper", "scales")
ORDERS = ("given", "year")
RANKS = ("comparable", "measured")
BEST, SECOND = "best", "second"
DEFAULT_METRICS = ("psnr", "ssim")
BASELINE = "bicubic"  # always the first row: the reference every paper prints first


@dataclass(frozen=True)
class Cell:
    value: float | None
    decimals: int
    half_width: float | None = None  # --ci: half-width of the 95% bootstrap interval of the mean
    mark: str = ""  # BEST, SECOND or ""
    not_significant: bool = False  # best, but not significantly better than the second (paired bootstrap)
    incomplete: bool = False  # a mean over fewer images than the dataset has: marked, never ranked
    printed: str = ""  # a reported value as its source prints it
    verified: bool = True  # False: a reported value the card has not checked against the paper

    def text(self) -> str:
        if self.value is None or math.isnan(self.value):
            return "–"
        if self.printed:
            return self.printed
        if math.isinf(self.value):
            return "inf" if self.value > 0 else "-inf"
        return f"{self.value:.{self.decimals}f}"

    def marks_text(self) -> str:
        """The marks printed right after the value: ``*`` (incomplete), ``?`` (not verified)."""
        if self.value is None or math.isnan(self.value):
            return ""
        return (INCOMPLETE if self.incomplete else "") + ("" if self.verified else UNVERIFIED)

    def ci_text(self) -> str:
        return "" if self.half_width is None or math.isnan(self.half_width) else f"±{self.half_width:.{self.decimals}f}"


@dataclass(frozen=True)
class Column:
    group: str  # the group head: a dataset in the paper layout, "" in the scales layout
    metric: str
    label: str  # the sub-head: "PSNR", or a scale "×1.5"
    dataset: str
    scale_text: str


@dataclass(frozen=True)
class Method:
    key: str  # the model name in the run, or the --reported text
    label: str
    reported: bool
    card_name: str | None
    untrained: bool = False
    other_protocol: bool = False  # a reported row under another protocol than the run's: shown apart, not ranked


@dataclass
class Row:
    method: Method
    cells: list[Cell]  # one per column of the block
    notes: tuple[int, ...] = ()  # footnote numbers (a reported row's sources)
    cost: tuple[str, ...] = ()  # one per Table.cost_heads


@dataclass
class Block:
    label: str  # "×2" in the paper layout; "" or a scale range in the scales layout
    columns: list[Column]
    rows: list[Row]
    others: list[Row] = field(default_factory=list)  # reported under another protocol: after the rows, never ranked


@dataclass
class Table:
    layout: str
    caption: str
    blocks: list[Block]
    grouped: bool  # columns carry group heads (paper layout)
    joined: bool  # the metrics of one group share a cell: 32.35/0.9019
    cost_heads: tuple[str, ...] = ()
    footnotes: list[str] = field(default_factory=list)  # numbered sources, [1] first
    symbols: list[str] = field(default_factory=list)  # what †, ‡ and the marks mean
    block_head: str = "Scale"
    others_head: str = ""  # the heading of the rows reported under another protocol


# ----------------------------------------------------------------------------------------------- the inputs ----
@dataclass
class _Run:
    """What every layout needs from a run: the summary, the per-image values, the protocol, the models' configs."""

    rows: pd.DataFrame  # error-free rows
    summary: pd.DataFrame
    protocol: str
    fingerprint: str
    configs: dict[str, dict]
    datasets: list[str]
    scales: list[str]  # scale texts, ascending
    all_rows: pd.DataFrame = None  # error rows included
    totals: dict[str, int] = field(default_factory=dict)  # images per dataset
    reported: dict[str, ReportedModel] = field(default_factory=dict)  # by the --reported text
    methods: list[Method] = field(default_factory=list)  # the table's rows, in order


def _load(rows: pd.DataFrame, manifest: dict, metrics: tuple[str, ...], reported: tuple[str, ...], order: str,
          cards: CardLookup | None) -> _Run:
    for m in metrics:
        metric_info(m)  # an unknown name fails with a suggestion
        if m not in rows or rows[m].isna().all():
            measured = [c for c in metric_columns(rows) if rows[c].notna().any()]
            raise UserError(f"metric {m!r} was not measured in this run; pick from: {', '.join(measured) or 'none'}")
    ok = rows[rows["error"].fillna("") == ""]
    summary = summarize(rows, manifest)
    protocol = manifest.get("protocol", {}).get("name") or str(rows["protocol"].iloc[0])
    fingerprint = manifest.get("protocol", {}).get("fingerprint") or str(rows["protocol_fingerprint"].iloc[0])
    configs = {m["name"]: m.get("config") or {} for m in manifest.get("models", [])}
    scales = sorted(pd.unique(rows["scale_text"]), key=parse_scale)
    run = _Run(rows=ok, summary=summary, protocol=protocol, fingerprint=fingerprint, configs=configs,
               datasets=list(pd.unique(summary["dataset"])), scales=scales, all_rows=rows,
               totals=dataset_sizes(rows, manifest))
    reps = [reported_model(r, protocol, cards or card_for) for r in reported]
    run.reported, run.methods = {r.name: r for r in reps}, _methods(run, reps, order)
    return run


def _measured_label(model: str, config: dict) -> tuple[str, str | None]:
    card, ensemble = measured_card(model)
    if card is None:
        return model, None
    label = card.get("display_name", card["name"]) + (ENSEMBLE_SUFFIX if ensemble else "")
    variant = config.get("variant")
    if variant and (variant in card.get("variants", {}) or variant in card.get("variant_params", {})):
        label += f" ({variant})"
    return label, card["name"]


def method_label(model: str, config: dict) -> str:
    """The name a table, a plot and a report give a measured model: its card's display name and variant."""
    return _measured_label(model, config)[0]


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {option} {value!r}; pick one of: {', '.join(choices)}")


def _methods(run: _Run, reported: list[ReportedModel], order: str) -> list[Method]:
    check_choice("--order", order, ORDERS)
    measured = []
    for model in pd.unique(run.summary["model"]):
        label, card_name = _measured_label(model, run.configs.get(model, {}))
        untrained = bool(run.summary.loc[run.summary["model"] == model, "untrained"].any())
        measured.append(Method(model, label, False, card_name, untrained))
    given: list[Method] = []
    later = list(reported)
    for m in measured:  # a reported row of a measured model's card sits right below the measured row
        given.append(m)
        for r in [r for r in later if r.card["name"] == m.card_name and not r.ensemble
                  and not m.key.endswith(ENSEMBLE_SUFFIX)]:
            given.append(Method(r.name, r.label, True, r.card["name"]))
            later.remove(r)
    given += [Method(r.name, r.label, True, r.card["name"]) for r in later]
    if order == "year":
        years = {m: year_of(card_for(m.card_name) if m.card_name else None) for m in given}
        given.sort(key=lambda m: (years[m] is None, years[m] or 0))  # stable: given order within a year
    return sorted(given, key=lambda m: m.card_name != BASELINE)  # bicubic first, the rest unchanged


# -------------------------------------------------------------------------------------------------- ranking ----
def dense_ranks(values: list[float | None], decimals: list[int], higher_is_better: bool) -> list[int]:
    """1 for the best printed value, 2 for the next distinct one, ...; 0 where not ranked (None)."""
    ranked = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    ranks = [0] * len(values)
    if not ranked:
        return ranks
    d = min(decimals[i] for i, _ in ranked)
    printed = {i: round(float(f"{v:.{d}f}"), d) if math.isfinite(v) else v for i, v in ranked}
    distinct = sorted(set(printed.values()), reverse=higher_is_better)
    for i, v in printed.items():
        ranks[i] = distinct.index(v) + 1
    return ranks


def rank_marks(values: list[float | None], decimals: list[int], higher_is_better: bool) -> list[str]:
    """BEST / SECOND / "" per value (None: not ranked), by the module's rule (dense ranks at printed precision; no
    marks with fewer than two ranked values, no second with fewer than three)."""
    n = sum(v is not None and not math.isnan(v) for v in values)
    if n < 2:
        return [""] * len(values)
    names = {1: BEST, 2: SECOND if n >= 3 else ""}
    return [names.get(r, "") for r in dense_ranks(values, decimals, higher_is_better)]


def _per_image(run: _Run, model: str, dataset: str, scale: str, metric: str) -> pd.Series:
    r = run.rows
    part = r[(r["model"] == model) & (r["dataset"] == dataset) & (r["scale_text"] == scale)]
    return part.set_index("image")[metric].dropna()


def significantly_better(best: pd.Series, other: pd.Series, higher_is_better: bool) -> bool:
    """Whether the paired 95% bootstrap interval of (best - other), over the images both have, excludes 0."""
    both = pd.concat([best, other], axis=1, join="inner").dropna()
    d = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(np.float64)
    d = d[np.isfinite(d)] * (1.0 if higher_is_better else -1.0)
    if d.size < 2:
        return False
    lo, _ = bootstrap_ci(d)
    return lo > 0


# ---------------------------------------------------------------------------------------------- the builder ----
class _Builder:
    def __init__(self, run: _Run, metrics: tuple[str, ...], rank: str, ci: bool, cost: bool):
        check_choice("--rank", rank, RANKS)
        self.run, self.metrics = run, metrics
        self.rank, self.ci, self.cost = rank, ci, cost
        self.footnotes: list[str] = []
        self.incomplete: list[str] = []  # one line per incomplete (method, dataset, scale)
        self.any_not_significant = False
        self.any_unverified = False
        self.means = {(r.model, r.dataset, r.scale_text): r for r in run.summary.itertuples()}

    def _note(self, text: str) -> int:
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1

    def cell(self, method: Method, col: Column) -> Cell:
        info = metric_info(col.metric)
        if method.reported:
            rep = self.run.reported[method.key]
            table = rep.other if method.other_protocol else rep.cells
            v = table.get((col.dataset.lower(), col.scale_text)).get(col.metric)
            if v is None:
                return Cell(None, info.decimals)
            self.any_unverified |= not v.verified
            return Cell(v.value, min(v.decimals, info.decimals), printed=v.printed(info.decimals),
                        verified=v.verified)
        s = self.means.get((method.key, col.dataset, col.scale_text))
        value = getattr(s, col.metric) if s is not None else None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return Cell(None, info.decimals)
        per_image = _per_image(self.run, method.key, col.dataset, col.scale_text, col.metric)
        n = len(per_image)
        total = self.run.totals.get(col.dataset, n)
        if n < total:
            line = f"{INCOMPLETE} {method.label}, {col.dataset} ×{col.scale_text}: " + coverage_text(
                self.run.all_rows, method.key, col.dataset, col.scale_text, n, total)
            if line not in self.incomplete:
                self.incomplete.append(line)
        return Cell(float(value), info.decimals, half_width(per_image) if self.ci else None, incomplete=n < total)

    def block(self, label: str, columns: list[Column], cost_columns: list[Column] | None = None) -> Block:
        """One block of rows; ``cost_columns`` (default ``columns``): the cells the cost columns summarise."""
        rows, others = [], []
        for method in self.run.methods:
            variants = [method, replace(method, other_protocol=True)] if method.reported else [method]
            for m in variants:
                cells = [self.cell(m, c) for c in columns]
                if m.reported and all(c.value is None for c in cells):
                    continue  # the card has nothing for this block
                notes = self._reported_notes(m, columns) if m.reported else ()
                row = Row(m, cells, notes, self._cost(m, cost_columns or columns) if self.cost else ())
                (others if m.other_protocol else rows).append(row)
        self._rank(rows, columns)
        return Block(label, columns, rows, others)

    def _reported_notes(self, method: Method, columns: list[Column]) -> tuple[int, ...]:
        rep = self.run.reported[method.key]
        table = rep.other if method.other_protocol else rep.cells
        keys = [(c.dataset.lower(), c.scale_text) for c in columns]
        out = []
        for v in table.sources_for(keys):
            text = f"as reported in: {v.source}"
            if v.protocol != self.run.protocol:
                text += f" (measured there under protocol {v.protocol}; this run: {self.run.protocol})"
            if not v.verified:
                text += "; not verified against the paper"
            dropped = table.dropped.get(v.source)
            if dropped and any(c.metric in dropped for c in columns):
                text += (f"; its {'/'.join(sorted(m.upper() for m in dropped))} is left out: computed another way "
                         "(the card's compare list)")
            out.append(self._note(text))
        for source, cells in table.disagree.items():
            shown = [text for key, text in cells if key in keys]
            if shown:
                out.append(self._note(f"{source} prints other values for the same cells: {', '.join(shown)}"))
        return tuple(out)

    def _ranked(self, row: Row, cell: Cell) -> bool:
        never = cell.incomplete or row.method.other_protocol
        return not never and (not row.method.reported or self.rank == "comparable")

    def _rank(self, rows: list[Row], columns: list[Column]) -> None:
        for j, col in enumerate(columns):
            info = metric_info(col.metric)
            values = [r.cells[j].value if self._ranked(r, r.cells[j]) else None for r in rows]
            decimals = [r.cells[j].decimals for r in rows]
            marks = rank_marks(values, decimals, info.higher_is_better)
            for r, mark in zip(rows, marks, strict=True):
                if mark:
                    r.cells[j] = replace(r.cells[j], mark=mark)
            ranks = dense_ranks(values, decimals, info.higher_is_better)
            best = [i for i, m in enumerate(marks) if m == BEST]
            runners_up = [i for i, k in enumerate(ranks) if k == 2]  # the second best, marked or not
            if not self.ci or len(best) != 1 or not runners_up or rows[best[0]].method.reported:
                continue
            b = rows[best[0]].method.key
            per = lambda k, col=col: _per_image(self.run, k, col.dataset, col.scale_text, col.metric)  # noqa: E731
            if any(not rows[i].method.reported and not significantly_better(per(b), per(rows[i].method.key),
                                                                                info.higher_is_better)
                   for i in runners_up):
                rows[best[0]].cells[j] = replace(rows[best[0]].cells[j], not_significant=True)
                self.any_not_significant = True

    def _cost(self, method: Method, columns: list[Column]) -> tuple[str, ...]:
        scales = sorted({c.scale_text for c in columns}, key=parse_scale)
        params = params_text(method.card_name, self.run.configs.get(method.key, {}), scales)
        if method.reported:
            return (params, *["–"] * (len(cost_heads(self.run.rows)) - 1))
        r = self.run.rows
        datasets = {c.dataset for c in columns}
        part = r[(r["model"] == method.key) & r["scale_text"].isin(scales) & r["dataset"].isin(datasets)]
        if params == "–" and part.get("parameters", pd.Series(dtype=float)).notna().any():
            params = _span(part["parameters"].dropna())  # measured by --profile where the card has none
        seconds = part["seconds"].dropna()
        cells = [params, f"{seconds.mean():.3f}" if len(seconds) else "–"]
        for col, text in _MEASURED_COST:
            if col in r and r[col].notna().any():
                values = part[col].dropna()
                cells.append(text(values) if len(values) else "–")
        return tuple(cells)


# measured cost columns a run's rows may hold (--profile; peak memory): (row column, text of its values)
_MEASURED_COST = (("flops", lambda v: f"{v.mean() / 1e9:.1f}"), ("peak_memory", lambda v: memory_text(v.max())))


def cost_heads(rows: pd.DataFrame) -> tuple[str, ...]:
    """``Params``, ``s/image``, then ``GFLOPs`` (mean per image) and ``Peak mem`` (largest) when the rows have them."""
    heads = ["Params", "s/image"]
    heads += [h for (col, _), h in zip(_MEASURED_COST, ("GFLOPs", "Peak mem"), strict=True)
              if col in rows and rows[col].notna().any()]
    return tuple(heads)


def _span(counts) -> str:
    lo, hi = int(min(counts)), int(max(counts))
    return _count(lo) if lo == hi else f"{_count(lo)}–{_count(hi)}"


def params_text(card_name: str | None, config: dict, scales: list[str]) -> str:
    """Trainable parameters from a model's card (per scale, per variant: ``[params]``, ``[variant_params]``) for the
    networks serving ``scales``, or "–" when the card does not say (no card, or a scale it has no count for)."""
    card = card_for(card_name) if card_name else None
    if not card:
        return "–"
    variant = config.get("variant")
    table = card.get("variant_params", {}).get(variant) or card.get("params", {})
    if "all" in table:
        return _count(table["all"])
    found = [table[f"x{s}"] for s in scales if f"x{s}" in table]
    return _span(found) if found and len(found) == len(scales) else "–"


def with_cost(summary: pd.DataFrame, rows: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The long layout's cost columns: ``params`` (card text, see ``params_text``; the rows' measured count where
    the card has none), ``seconds`` (mean model seconds per image of the error-free rows) and, when the rows have
    them, ``gflops`` (mean FLOPs per image / 1e9, ``--profile``) and ``peak_memory`` (largest, bytes)."""
    configs = {m["name"]: m.get("config") or {} for m in manifest.get("models", [])}
    ok = rows[rows["error"].fillna("") == ""]
    groups = ok.groupby(["model", "dataset", "scale_text"])
    seconds = groups["seconds"].mean()
    out = summary.copy()
    keys = [(r.model, r.dataset, r.scale_text) for r in out.itertuples()]
    params = [params_text(_measured_label(r.model, configs.get(r.model, {}))[1], configs.get(r.model, {}),
                          [r.scale_text]) for r in out.itertuples()]
    if "parameters" in ok and ok["parameters"].notna().any():
        measured = groups["parameters"].max()
        params = [p if p != "–" or pd.isna(measured.get(k)) else _count(int(measured[k]))
                  for p, k in zip(params, keys, strict=True)]
    out["params"] = params
    out["seconds"] = [seconds.get(k, math.nan) for k in keys]
    if "flops" in ok and ok["flops"].notna().any():
        from sr_bench.run.peaks import utilisation_by

        flops = groups["flops"].mean()
        out["gflops"] = [flops.get(k, math.nan) / 1e9 for k in keys]
        # achieved FLOP/s (summed FLOPs / summed seconds) and the fraction of the GPU's listed peak (run/peaks.py)
        util = utilisation_by(ok, ["model", "dataset", "scale_text"])
        out["flops_per_second"] = [(util.get(k, (None, None))[0] or math.nan) for k in keys]
        out["mfu"] = [(util.get(k, (None, None))[1] or math.nan) for k in keys]
    if "peak_memory" in ok and ok["peak_memory"].notna().any():
        peak = groups["peak_memory"].max()
        out["peak_memory"] = [peak.get(k, math.nan) for k in keys]
    return out


def _count(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.0f}K" if n >= 1e3 else str(n)


def _caption(builder: _Builder, what: str, blocks: list[Block]) -> str:
    run, metrics = builder.run, builder.metrics
    names = " / ".join(metric_info(m).name.upper() + (f" ({metric_info(m).unit})" if metric_info(m).unit else "")
                       for m in metrics)
    text = f"{names}{what}: means over images, protocol {run.protocol} ({run.fingerprint})."
    marks = {c.mark for b in blocks for r in b.rows for c in r.cells}
    if not marks - {""}:  # nothing ranked (one method): no legend
        return text
    among = ("the measured rows and the rows reported under this run's protocol" if builder.rank == "comparable"
             else "the measured rows only")
    second = " and the second best underlined" if SECOND in marks else ""
    text += f" Per scale and column, the best value is bold{second}, ranked among {among}"
    if any(c.incomplete for b in blocks for r in b.rows for c in r.cells):
        text += f" (not a mean over fewer images than the dataset has, marked {INCOMPLETE})"
    text += "; no second best is marked where fewer than three rows are ranked."
    if any(b.others for b in blocks):
        text += " Rows reported under another protocol are listed apart and not ranked."
    return text


def _symbols(builder: _Builder, blocks: list[Block]) -> list[str]:
    out = []
    if any(r.method.reported for b in blocks for r in [*b.rows, *b.others]):
        out.append("† reported, not measured here: copied from the paper named in the note")
    if builder.any_not_significant:
        out.append("‡ best, but not significantly better than the second best: the 95% paired-bootstrap interval of "
                   "the difference over the same images includes 0 (10,000 resamples, seed 0)")
    if builder.ci:
        out.append("± half-width of the 95% bootstrap interval of the mean over images (10,000 resamples, seed 0)")
    if builder.any_unverified:
        out.append(UNVERIFIED_MEANING)
    if builder.incomplete:
        out.append(f"{INCOMPLETE} mean over fewer images than the dataset has (never ranked):")
        out += builder.incomplete
    return out


def _table(builder: _Builder, layout: str, what: str, blocks: list[Block], **kw) -> Table:
    others = "under another protocol (not ranked)" if any(b.others for b in blocks) else ""  # notes name each one
    return Table(layout, _caption(builder, what, blocks), blocks, footnotes=builder.footnotes, others_head=others,
                 cost_heads=cost_heads(builder.run.rows) if builder.cost else (), symbols=_symbols(builder, blocks),
                 **kw)


# ------------------------------------------------------------------------------------------------- layouts ----
def paper_layout(rows: pd.DataFrame, manifest: dict, metrics: tuple[str, ...] = DEFAULT_METRICS,
                 reported: tuple[str, ...] = (), rank: str = "comparable", ci: bool = False, cost: bool = False,
                 order: str = "given", joined: bool = True, cards: CardLookup | None = None) -> Table:
    """Methods x (dataset, metric), one block per scale."""
    run = _load(rows, manifest, metrics, reported, order, cards)
    builder = _Builder(run, metrics, rank, ci, cost)
    blocks = []
    for s in run.scales:
        columns = [Column(d, m, metric_info(m).name.upper(), d, s) for d in run.datasets for m in metrics]
        blocks.append(builder.block(f"×{s}", columns))
    return _table(builder, "paper", "", blocks, grouped=True, joined=joined)


def scales_layout(rows: pd.DataFrame, manifest: dict, metrics: tuple[str, ...] = ("psnr",),
                  reported: tuple[str, ...] = (), rank: str = "comparable", ci: bool = False, cost: bool = False,
                  order: str = "given", max_columns: int = 10, cards: CardLookup | None = None) -> list[Table]:
    """One table per (dataset, metric): methods x scales, ``max_columns`` scales per block."""
    if max_columns < 1:
        raise UserError(f"--max-columns must be >= 1, got {max_columns}")
    run = _load(rows, manifest, metrics, reported, order, cards)
    tables = []
    for d in run.datasets:
        for m in metrics:
            builder = _Builder(run, (m,), rank, ci, cost)
            every = [Column("", m, f"×{s}", d, s) for s in run.scales]
            blocks = []
            for start in range(0, len(every), max_columns):
                columns = every[start:start + max_columns]
                label = "" if len(every) <= max_columns else f"×{columns[0].scale_text}–×{columns[-1].scale_text}"
                blocks.append(builder.block(label, columns, cost_columns=every))
            tables.append(_table(builder, "scales", f" on {d}", blocks, grouped=False, joined=False,
                                 block_head="Scales"))
    return tables

