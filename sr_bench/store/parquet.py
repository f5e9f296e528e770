"""Run folders: ``run.json`` (the manifest) + ``rows/*.parquet`` shards, each written atomically.

A shard holds the rows of a few images (all their scales and models), so an interrupted run loses at most those; a
resumed run reads the rows back to know what is done.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sr_bench.errors import UserError, closest
from sr_bench.store.atomic import atomic_write, atomic_write_text
from sr_bench.store.schema import SCHEMA, extended_schema, row_schema


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", part)


def write_shard(run_dir: Path, rows: list[dict], dataset: str) -> Path:
    """Rows as one atomic shard. A key that is not a fixed column is a plugin metric's value: it gets a float64
    column (``row_schema``), never dropped; a fixed column a row lacks is stored empty."""
    extra = dict.fromkeys(k for r in rows for k in r if k not in SCHEMA.names)
    schema = row_schema(extra)
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    # rows read back through pandas hold NaN where an integer column is empty; stored empty, not as a float
    rows = [{**r, **{k: None for k in ints if isinstance(r.get(k), float) and r[k] != r[k]}} for r in rows]
    table = pa.Table.from_pylist(rows, schema=schema)
    # unique per write; load_rows de-duplicates by (model, dataset, image, scale) anyway
    first = rows[0]["image"] if rows else "empty"
    path = run_dir / "rows" / f"{_safe(dataset)}__{_safe(first)}__{uuid.uuid4().hex[:8]}.parquet"
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def write_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write_text(run_dir / "run.json", json.dumps(manifest, indent=2, default=str))


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def load_rows(run_dir: Path) -> pd.DataFrame:
    shards = sorted((run_dir / "rows").glob("*.parquet"))
    if not shards:
        raise UserError(f"run {str(run_dir)!r} has no result rows yet; run `srbench run` first")
    tables = [pq.read_table(p) for p in shards]
    # shards of other sr_bench versions or metric sets: every column of any shard, empty where a shard lacks it
    extra: dict[str, pa.Field] = {}
    for f in (f for t in tables for f in t.schema if f.name not in SCHEMA.names):
        extra.setdefault(f.name, f)
    schema = extended_schema(extra.values())
    df = pa.concat_tables([_conform(t, schema) for t in tables]).to_pandas()
    if any(name.startswith("pyiqa_") for name in extra) and (run_dir / "run.json").is_file():
        from sr_bench.metrics import remember_infos  # tables of these columns then read where pyiqa is not installed

        remember_infos(read_manifest(run_dir).get("metric_info"))
    # a re-measured (model, dataset, image, scale) keeps its newest row
    return (df.sort_values("created").drop_duplicates(["model", "dataset", "image", "scale_text"], keep="last")
            .reset_index(drop=True))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.table([table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
                     for f in schema], schema=schema)


def resolve_run(spec: str, results_dir: Path) -> Path:
    """A run folder from a path, a run id under ``results_dir``, or ``latest``."""
    p = Path(spec)
    if (p / "run.json").is_file():
        return p
    if spec == "latest":
        runs = sorted(results_dir.glob("*/run.json"), key=lambda f: f.stat().st_mtime)
        if not runs:
            raise UserError(f"no runs under {str(results_dir)!r}; run `srbench run` first")
        return runs[-1].parent
    cand = results_dir / spec
    if (cand / "run.json").is_file():
        return cand
    known = [r.parent.name for r in results_dir.glob("*/run.json")]
    near = closest(spec, known)
    hint = f"did you mean {', '.join(near)}?" if near else "give a run folder, a run id under results/, or 'latest'"
    raise UserError(f"run {spec!r} not found; {hint}")
