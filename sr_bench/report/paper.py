"""Published numbers next to measured ones: the ``[[published]]`` blocks of the model cards (registry/*.toml, or a
plugin's NAME.toml beside its module; a run's ``--plugin`` files are loaded again from run.json to find them).

A block is shown for a model only when it was measured the same way: the block's ``protocol`` is the run's protocol,
its ``variant`` (if any) is the model's variant as recorded in run.json, and ``self_ensemble`` blocks go with ``NAME+``
models only; a block's ``compare`` list (e.g. ``["psnr"]``) drops published metrics measured another way. Where a card holds several matching blocks (e.g. a paper table and a later re-evaluation), the first,
the paper's own table, is used. Nothing here computes a measured value: those come from the per-image rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pandas as pd

from sr_bench.models.cards import card_for
from sr_bench.scales import scale_text

ENSEMBLE_SUFFIX = "+"


@dataclass(frozen=True)
class Published:
    source: str
    values: dict[tuple[str, str], dict[str, float]]  # (dataset lower-case, scale text) -> {"psnr": .., "ssim": ..}


def _card_and_ensemble(model: str) -> tuple[dict | None, bool]:
    card = card_for(model)
    if card is not None:
        return card, False
    if model.endswith(ENSEMBLE_SUFFIX):
        return card_for(model[: -len(ENSEMBLE_SUFFIX)]), True
    return None, False


def published_for(model: str, config: dict | None, protocol: str) -> Published | None:
    """The first published block that matches ``model`` (with its ``config``) under ``protocol``, or None."""
    card, ensemble = _card_and_ensemble(model)
    if not card:
        return None
    variant = (config or {}).get("variant")
    for block in card.get("published", []):
        if block.get("protocol") != protocol or bool(block.get("self_ensemble", False)) != ensemble:
            continue
        if "variant" in block and block["variant"] != variant:
            continue
        values = {}
        for row in block["rows"]:
            dataset, scale = str(row[0]).lower(), scale_text(Fraction(str(row[1])))
            cell = {"psnr": float(row[2]), **({"ssim": float(row[3])} if len(row) > 3 else {})}
            # a block whose SSIM is another implementation (MATLAB's built-in ssim) lists what is comparable
            values[(dataset, scale)] = {m: v for m, v in cell.items() if m in block.get("compare", cell)}
        return Published(source=block["source"], values=values)
    return None


def with_paper(summary: pd.DataFrame, configs: dict[str, dict], protocol: str, metrics: tuple[str, ...]
               ) -> tuple[pd.DataFrame, list[str]]:
    """``summary`` plus ``paper_<metric>`` and ``source`` (a footnote number) columns; returns the footnotes too."""
    out = summary.copy()
    sources: list[str] = []
    found = {m: published_for(m, configs.get(m), protocol) for m in out["model"].unique()}
    for metric in metrics:
        out[f"paper_{metric}"] = float("nan")
    out["source"] = 0
    for i, r in out.iterrows():
        pub = found.get(r["model"])
        cell = pub.values.get((str(r["dataset"]).lower(), r["scale_text"])) if pub else None
        if not cell:
            continue
        if pub.source not in sources:
            sources.append(pub.source)
        out.at[i, "source"] = sources.index(pub.source) + 1
        for metric in metrics:
            if metric in cell:
                out.at[i, f"paper_{metric}"] = cell[metric]
    return out, sources


def _load_run_plugins(manifest: dict) -> None:
    """The run's ``--plugin`` files, so that their models' cards are found (files since moved are skipped: their
    models then have no published values)."""
    from pathlib import Path

    from sr_bench.models.registry import load_plugin

    for path in (manifest.get("request") or {}).get("plugins") or []:
        if Path(path).is_file():
            load_plugin(path)


def with_paper_for_run(summary: pd.DataFrame, rows: pd.DataFrame, manifest: dict, metrics: tuple[str, ...]
                       ) -> tuple[pd.DataFrame, list[str]]:
    """``with_paper`` with the models' configs and the protocol read from a run's run.json (``manifest``)."""
    _load_run_plugins(manifest)
    configs = {m["name"]: m.get("config") or {} for m in manifest.get("models", [])}
    protocol = manifest.get("protocol", {}).get("name") or str(rows["protocol"].iloc[0])
    return with_paper(summary, configs, protocol, metrics)
