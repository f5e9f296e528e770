"""The protocol lists a user reads (`srbench run --help`, README, docs/protocols.md) name exactly the registered
protocols, so adding or renaming one without its documentation fails here."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from sr_bench.cli import cli
from sr_bench.protocols import PROTOCOLS

REPO = Path(__file__).resolve().parents[1]
NAME = r"`([a-z][a-z0-9-]*)`"  # a backticked protocol-like word (`--protocol auto` and paths do not match)


def test_run_help_lists_the_registry():
    out = CliRunner().invoke(cli, ["run", "--help"])
    assert out.exit_code == 0
    listed = re.search(r"--protocol TEXT (.*?) \(", " ".join(out.output.split()))
    assert listed, "srbench run --help lost its --protocol list"
    assert [n.strip() for n in listed.group(1).split("|")] == [*PROTOCOLS, "auto"]


def test_readme_protocol_bullet_names_the_registry():
    readme = (REPO / "README.md").read_text()
    bullet = re.search(r"^- \*\*Protocol\*\*(.*?)^- ", readme, flags=re.S | re.M)
    assert bullet, "README lost its Protocol bullet"
    assert set(re.findall(NAME, bullet.group(1))) - {"auto"} == set(PROTOCOLS)


def test_protocols_doc_lists_and_describes_each_registered_protocol():
    doc = (REPO / "docs" / "protocols.md").read_text()
    intro = re.search(r"sr_bench has these protocols: (.*?);", " ".join(doc.split()))
    assert intro, "docs/protocols.md lost its list of protocols"
    assert set(re.findall(NAME, intro.group(1))) == set(PROTOCOLS)
    table_header = next(line for line in doc.splitlines() if line.startswith("| rule |"))
    described = set(re.findall(NAME, table_header)) | set(re.findall(rf"^## {NAME}$", doc, flags=re.M))
    assert described == set(PROTOCOLS)
