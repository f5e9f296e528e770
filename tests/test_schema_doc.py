"""The row-schema doc cannot drift: docs/results.md holds the table ``columns_markdown`` renders from ``COLUMNS``."""

from __future__ import annotations

import re
from pathlib import Path

import sr_bench.store.schema as schema

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"


def test_results_doc_lists_every_column_as_the_schema_defines_it():
    assert "docs/results.md" in schema.__doc__  # where the schema module sends readers
    text = DOC.read_text()
    block = re.search(r"<!-- generated from COLUMNS.*?-->\n(.*?)\n<!-- end of generated columns -->", text, re.S)
    assert block, "docs/results.md lost its generated column table"
    fix = ('regenerate it: .venv/bin/python -c "from sr_bench.store.schema import columns_markdown; '
           'print(columns_markdown())" and paste it between the markers')
    assert block.group(1) == schema.columns_markdown(), fix


def test_readme_points_to_the_results_doc():
    assert "(docs/results.md)" in (REPO / "README.md").read_text()
