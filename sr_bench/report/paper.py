"""Published numbers next to measured ones (``table --paper``, the reports, ``plot --paper``), read by
``report.reported`` (the same merge as ``--reported``) for the run's protocol and each model's variant and
self-ensemble, from the copy stored with the run (``report.run_cards``); measured values come from the rows only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sr_bench.metrics import metric_info
from sr_bench.models.cards import card_for
from sr_bench.report.reported import CardLookup, published_for
from sr_bench.report.tables import UNVERIFIED_MARK as UNVERIFIED
from sr_bench.report.tables import summarize

__all__ = ["published_for", "with_paper", "with_paper_for_run"]


def with_paper(summary: pd.DataFrame, configs: dict[str, dict], protocol: str, metrics: tuple[str, ...],
               cards: CardLookup = card_for) -> tuple[pd.DataFrame, list[str]]:
    """``summary`` plus ``paper_<metric>`` (the value), ``paper_<metric>_text`` (as the card prints it, ``?`` when
    not verified) and ``source`` (a footnote number) columns; returns the footnotes too."""
    out = summary.copy()
    sources: list[str] = []
    found = {m: published_for(m, configs.get(m), protocol, cards) for m in out["model"].unique()}
    for metric in metrics:
        out[f"paper_{metric}"] = float("nan")
        out[f"paper_{metric}_text"] = ""
    out["source"] = 0
    for i, r in out.iterrows():
        pub = found.get(r["model"])
        cell = pub.get((str(r["dataset"]).lower(), r["scale_text"])) if pub else {}
        used = [v for m, v in cell.items() if m in metrics]
        if not used:
            continue
        text = used[0].source + ("" if used[0].verified else " (not verified against the paper)")
        if text not in sources:
            sources.append(text)
        out.at[i, "source"] = sources.index(text) + 1
        for metric in metrics:
            v = cell.get(metric)
            if v is not None:
                out.at[i, f"paper_{metric}"] = v.value
                out.at[i, f"paper_{metric}_text"] = v.printed(metric_info(metric).decimals) + (
                    "" if v.verified else UNVERIFIED)
    return out, sources


def load_run_plugins(manifest: dict) -> None:
    """The run's ``--plugin`` files, so that their models' cards are found (files since moved are skipped: their
    models then have no published values unless the run stored them)."""
    from sr_bench.models.registry import load_plugin

    for path in (manifest.get("request") or {}).get("plugins") or []:
        if Path(path).is_file():
            load_plugin(path)


def with_paper_for_run(rows: pd.DataFrame, manifest: dict, metrics: tuple[str, ...], cards: CardLookup | None = None
                       ) -> tuple[pd.DataFrame, list[str]]:
    """``with_paper`` of the run's summary, with the models' configs and the protocol its run.json records."""
    load_run_plugins(manifest)
    configs = {m["name"]: m.get("config") or {} for m in manifest.get("models", [])}
    protocol = manifest.get("protocol", {}).get("name") or str(rows["protocol"].iloc[0])
    return with_paper(summarize(rows, manifest), configs, protocol, metrics, cards or card_for)
