"""Result storage: the row schema and Parquet run folders."""

from sr_bench.store.parquet import load_rows, read_manifest, resolve_run, write_manifest, write_shard
from sr_bench.store.schema import COLUMNS, METRIC_COLUMNS, SCHEMA, metric_columns, row_schema

__all__ = ["COLUMNS", "METRIC_COLUMNS", "SCHEMA", "load_rows", "metric_columns", "read_manifest", "resolve_run",
           "row_schema", "write_manifest", "write_shard"]
