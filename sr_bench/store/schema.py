"""The one schema of a result row. Per-image rows are the single source of truth; every summary derives from them."""

from __future__ import annotations

import pyarrow as pa

# name, arrow type, meaning (the meanings are rendered into docs/results.md by hand; keep them in sync)
COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("run_id", pa.string(), "the run this row belongs to"),
    ("model", pa.string(), "model name as given to --models (name or name=checkpoint -> name)"),
    ("dataset", pa.string(), "canonical dataset name (Set5, B100, demo, or an ad-hoc folder's name)"),
    ("image", pa.string(), "image file stem"),
    ("scale", pa.float64(), "scale factor as a float (for plotting)"),
    ("scale_text", pa.string(), "the exact scale as written (1.4, 3, 4/3)"),
    ("protocol", pa.string(), "protocol name (matlab, metasr, liif)"),
    ("protocol_fingerprint", pa.string(), "sha256 prefix of every rule of the protocol"),
    ("strategy", pa.string(), "how the model reached this scale (native, ceil-then-down, ...)"),
    ("untrained", pa.bool_(), "random weights (--allow-untrained): not a real result"),
    ("checkpoint_sha256", pa.string(), "sha256 of the loaded checkpoint file, empty for weight-free models"),
    ("psnr", pa.float64(), "dB"),
    ("ssim", pa.float64(), "Wang SSIM"),
    ("lpips", pa.float64(), "LPIPS AlexNet v0.1 (empty when not computed)"),
    ("seconds", pa.float64(), "wall time of the model's forward pass for this image"),
    ("hr_height", pa.int32(), "HR height as compared (after the protocol's crop)"),
    ("hr_width", pa.int32(), "HR width as compared"),
    ("lr_height", pa.int32(), "LR height fed to the model"),
    ("lr_width", pa.int32(), "LR width fed to the model"),
    ("error", pa.string(), "empty for a measured row; otherwise why this image has no numbers"),
    ("device", pa.string(), "device the model ran on"),
    ("metric_weights", pa.string(), "JSON: provenance of metric weights (e.g. lpips backbone sha256)"),
    ("package_versions", pa.string(), "JSON: python, sr_bench, torch, numpy, pillow, ... versions"),
    ("created", pa.string(), "UTC time the row was measured (ISO 8601)"),
    ("release", pa.string(), "the model card's release whose sha256 the checkpoint has (LapSRN_x2.mat), 'unreleased' "
                             "for any other file, empty without weights"),
]

SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in COLUMNS])
METRIC_COLUMNS = ("psnr", "ssim", "lpips")
