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

from sr_bench.errors import UserError
from sr_bench.store.atomic import atomic_write
from sr_bench.store.schema import SCHEMA


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", part)


def shard_name(dataset: str, first_image: str) -> str:
    # unique per write; load_rows de-duplicates by (model, dataset, image, scale) anyway
    return f"{_safe(dataset)}__{_safe(first_image)}__{uuid.uuid4().hex[:8]}.parquet"


def write_shard(run_dir: Path, rows: list[dict], dataset: str) -> Path:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    path = run_dir / "rows" / shard_name(dataset, rows[0]["image"] if rows else "empty")
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def write_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write(run_dir / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2, default=str)))


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def load_rows(run_dir: Path) -> pd.DataFrame:
    shards = sorted((run_dir / "rows").glob("*.parquet"))
    if not shards:
        raise UserError(f"run {str(run_dir)!r} has no result rows yet; run `srbench run` first")
    tables = [pq.read_table(p, schema=SCHEMA) for p in shards]
    df = pa.concat_tables(tables).to_pandas()
    # a re-measured (model, dataset, image, scale) keeps its newest row
    return df.sort_values("created").drop_duplicates(["model", "dataset", "image", "scale_text"], keep="last").reset_index(drop=True)


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
    from sr_bench.errors import closest

    near = closest(spec, known)
    hint = f"did you mean {', '.join(near)}?" if near else "give a run folder, a run id under results/, or 'latest'"
    raise UserError(f"run {spec!r} not found; {hint}")
