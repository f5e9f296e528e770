"""`srbench models NAME`: the whole card (the place the "needs weights" error sends users), --bibtex, and errors."""

from __future__ import annotations

from click.testing import CliRunner

from sr_bench.cli import cli
from sr_bench.models.cards import card_for, model_cards


def _invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_card_view_lists_every_release_parameter_count_and_published_table():
    for name in sorted({c["name"] for c in model_cards().values()}):
        card = card_for(name)
        out = _invoke("models", name)
        assert out.exit_code == 0, out.output
        for w in card.get("weights", []):
            assert w["file"] in out.stdout and (not w.get("url") or w["url"] in out.stdout), (name, w["file"])
        for k, v in card.get("params", {}).items():
            assert f"{k} {v:,}" in out.stdout, (name, k)
        for block in card.get("published", []):
            assert block["source"] in out.stdout, (name, block["source"])
        if card.get("weights_note"):
            assert card["weights_note"] in out.stdout


def test_needs_weights_error_points_at_a_card_that_shows_the_releases():
    out = _invoke("run", "--models", "rcan", "--datasets", "demo", "--scales", "2", "--no-progress")
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert "srbench models rcan" in out.output and "--allow-untrained" in out.output and "srbench train" in out.output
    card = _invoke("models", "rcan").stdout
    assert "RCAN_BIX2.pt" in card and "models_ECCV2018RCAN.zip" in card


def test_bibtex_and_unknown_names():
    out = _invoke("models", "*lapsrn*", "--bibtex")
    assert out.exit_code == 0
    assert out.stdout.count("@") == 2 and card_for("mslapsrn")["paper"]["bibtex"] in out.stdout
    bad = _invoke("models", "rcna")
    assert bad.exit_code == 2 and "did you mean 'rcan'" in bad.output
    none = _invoke("models", "zz*")
    assert none.exit_code == 2 and "no model matches 'zz*'" in none.output
