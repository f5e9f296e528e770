"""sr_bench: benchmark single-image super-resolution at integer and decimal scales."""

__version__ = "0.1.0"
