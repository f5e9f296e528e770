"""The one schema of a result row. Per-image rows are the single source of truth; every summary derives from them.

A row has the fixed ``COLUMNS`` (psnr, ssim and lpips among them; docs/results.md renders them) plus one float64
column per plugin metric the run measured, named after the metric and placed after ``lpips``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa

# name, arrow type, meaning
COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("run_id", pa.string(), "the run this row belongs to"),
    ("model", pa.string(), "model name as given to --models (name or name=checkpoint -> name)"),
    ("dataset", pa.string(), "canonical dataset name (Set5, B100, demo, or an ad-hoc folder's name)"),
    ("image", pa.string(), "image file stem"),
    ("scale", pa.float64(), "scale factor as a float (for plotting)"),
    ("scale_text", pa.string(), "the exact scale as written (1.4, 3, 4/3)"),
    ("protocol", pa.string(), "protocol name (matlab, metasr, ...; docs/protocols.md)"),
    ("protocol_fingerprint", pa.string(), "sha256 prefix of every rule of the protocol"),
    ("strategy", pa.string(), "how the model reached this scale (native, ceil-then-down, ...)"),
    ("untrained", pa.bool_(), "random weights (--allow-untrained): not a real result"),
    ("checkpoint_sha256", pa.string(), "sha256 of the loaded checkpoint file, empty for weight-free models"),
    ("psnr", pa.float64(), "PSNR in dB on the protocol's luma, peak 255 (inf for an exact SR)"),
    ("ssim", pa.float64(), "SSIM (Wang et al.) on the protocol's luma"),
    ("lpips", pa.float64(), "LPIPS AlexNet v0.1 (empty when not computed)"),
    ("seconds", pa.float64(), "wall time of the model's forward pass for this image"),
    ("hr_height", pa.int32(), "HR height as compared (after the protocol's crop)"),
    ("hr_width", pa.int32(), "HR width as compared"),
    ("lr_height", pa.int32(), "LR height fed to the model"),
    ("lr_width", pa.int32(), "LR width fed to the model"),
    ("error", pa.string(), "empty for a measured row; otherwise why this image has no numbers"),
    ("device", pa.string(), "device the model ran on"),
    ("metric_weights", pa.string(), "JSON: provenance of metric weights (e.g. lpips backbone sha256) and of "
     "each plugin metric (`<name>_plugin`: entry point, package, version)"),
    ("package_versions", pa.string(), "JSON: python, sr_bench, torch, numpy, pillow, ... versions"),
    ("created", pa.string(), "UTC time the row was measured (ISO 8601)"),
    ("release", pa.string(), "the model card's release whose sha256 the checkpoint has (LapSRN_x2.mat), 'unreleased' "
                             "for any other file, empty without weights"),
    ("error_kind", pa.string(), "empty for a measured row; data (unreadable image, too small for the scale), model "
                                "(the model raised or returned a wrong size), metric (a metric raised) or worker (the "
                                "image took its Ray workers down); empty in rows of runs made before this column"),
    ("tile", pa.int32(), "LR tile size the model's networks ran on (--tile, or an out-of-memory retry; "
                         "docs/tiling.md); empty: the whole image"),
    ("tile_overlap", pa.int32(), "LR pixels of context on each side of a tile; empty: the whole image"),
    ("tile_reason", pa.string(), "why the forward ran tiled: '--tile', or '--max-memory (...)' / 'out of memory (...)' "
                                 "with the error of the attempt it retried; empty: the whole image"),
    ("peak_memory", pa.int64(), "bytes: CUDA peak allocated during the forward; CPU peak RSS of the process during it "
                                "(Linux; freed heap released first); empty for interpolation models without --profile"),
    ("parameters", pa.int64(), "--profile: trainable parameters of the networks serving this scale "
                               "(as the cards count)"),
    ("flops", pa.int64(), "--profile: FLOPs of the forward (torch FlopCounterMode: matmuls and convolutions, 2 per "
                          "multiply-add)"),
    ("metric_errors", pa.string(), "JSON {metric column: error} of the metrics that raised on this image while the "
                                   "others were measured (their columns empty, the others kept); empty when none did "
                                   "(when every metric raised, `error` says so instead)"),
]

SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in COLUMNS])
# The built-in metrics' fixed columns. A run's metric columns, plugin metrics included, are ``metric_columns(rows)``.
METRIC_COLUMNS = ("psnr", "ssim", "lpips")
_FIXED = frozenset(n for n, _, _ in COLUMNS) - set(METRIC_COLUMNS)
# what summaries add beside the metric columns (report.tables.summarize, report.paper.with_paper): no metric may
# take these names, so that a summary's metric columns are found the same way as a row frame's
_SUMMARY = frozenset({"n_images", "source", "paper_source", "params", "gflops", "flops_per_second", "mfu"})
_PREFIXES = ("paper_", "n_")  # report.paper: paper_<metric>; report.tables.summarize: n_<metric>, a mean's images
_DERIVED_SUFFIX = "_ci95"  # report.tables.with_ci
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_metric_name(name: str) -> str | None:
    """Why ``name`` cannot be a metric column, or None when it can."""
    if not _NAME.fullmatch(name):
        return "a metric column name is lower-case letters, digits and _, starting with a letter"
    if (name in _FIXED or name in _SUMMARY or name.startswith(_PREFIXES)
            or name.endswith(_DERIVED_SUFFIX)):
        return f"{name!r} is a column sr_bench already writes (rows or summaries)"
    return None


def row_schema(metrics: Iterable[str] = ()) -> pa.Schema:
    """``SCHEMA`` plus a float64 column for each metric in ``metrics`` that is not built in, after ``lpips``."""
    extra = [m for m in dict.fromkeys(metrics) if m not in SCHEMA.names]
    for m in extra:
        why = check_metric_name(m)
        if why:
            raise ValueError(f"metric column {m!r}: {why}")
    return extended_schema([pa.field(m, pa.float64()) for m in extra])


def extended_schema(extra: Iterable[pa.Field]) -> pa.Schema:
    """``SCHEMA`` with ``extra`` fields (not fixed columns) after ``lpips``, where metric columns go."""
    at = SCHEMA.get_field_index(METRIC_COLUMNS[-1]) + 1
    fields = list(SCHEMA)
    return pa.schema(fields[:at] + list(extra) + fields[at:])


def metric_columns(frame) -> tuple[str, ...]:
    """The metric columns of a frame of rows (or of a summary of rows), in column order: psnr, ssim, lpips and
    every float column that is not one sr_bench writes for another purpose (a plugin metric's column)."""
    return tuple(c for c in frame.columns if c in METRIC_COLUMNS
                 or (check_metric_name(str(c)) is None and pd.api.types.is_float_dtype(frame[c])))


def columns_markdown() -> str:
    """The Markdown table of ``COLUMNS`` that docs/results.md holds."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{n}` | {t} | {meaning} |" for n, t, meaning in COLUMNS]
    return "\n".join(lines)
