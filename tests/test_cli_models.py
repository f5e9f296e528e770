"""`srbench models NAME`: the whole card (the place the "needs weights" error sends users), --bibtex, and errors."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib

from click.testing import CliRunner

from sr_bench.cli import cli
from sr_bench.models.cards import card_for, cards_dir, model_cards


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
    assert "registry/" not in out.output  # a folder of the source tree, which an installed wheel does not have
    card = _invoke("models", "rcan").stdout
    assert "RCAN_BIX2.pt" in card and "models_ECCV2018RCAN.zip" in card


def test_bibtex_and_unknown_names():
    out = _invoke("models", "*lapsrn*", "--bibtex")
    assert out.exit_code == 0
    # one entry per matching card, each once, and nothing of the cards the glob does not match: citation keys read
    # from the output against those read from the card files themselves
    keys = re.findall(r"^@\w+\{\s*([^,\s]+)\s*,", out.stdout, flags=re.M)
    files = {p.stem: tomllib.loads(p.read_text()) for p in cards_dir().glob("*.toml")}
    expected = {re.search(r"@\w+\{\s*([^,\s]+)", c["paper"]["bibtex"]).group(1) for n, c in files.items()
                if fnmatch.fnmatch(n, "*lapsrn*") and c.get("paper", {}).get("bibtex")}
    assert len(expected) == 2 and sorted(keys) == sorted(expected)
    rcan = re.search(r"@\w+\{\s*([^,\s]+)", files["rcan"]["paper"]["bibtex"]).group(1)
    assert rcan not in out.stdout
    bad = _invoke("models", "rcna")
    assert bad.exit_code == 2 and "did you mean 'rcan'" in bad.output
    none = _invoke("models", "zz*")
    assert none.exit_code == 2 and "no model matches 'zz*'" in none.output


def test_the_card_view_says_how_many_weight_files_the_model_takes():
    # per scale where each release serves one scale (RCAN_BIX2.pt ...), one file where a release serves every scale
    # (MS-LapSRN's D5R8 runs x2, x4 and x8; LIIF's any scale), and a range model without releases takes one file
    per_scale = f"one file per scale; several scales: PATH_x2{os.pathsep}PATH_x4"
    for name, files in (("rcan", per_scale), ("lapsrn", per_scale), ("dbdn", per_scale),
                        ("mslapsrn", "one file for every scale"), ("liif", "one file for every scale"),
                        ("srcnn", "one file for every scale")):
        line = next(x for x in _invoke("models", name).stdout.splitlines() if x.strip().startswith("weights:"))
        assert line.strip().startswith(f"weights: --models {name}=PATH ({files}"), (name, line)


def test_a_plugin_card_declares_one_file_for_all_scales(tmp_path, clean_registry):
    plugin = tmp_path / "carnm.py"
    plugin.write_text("from sr_bench import register_model, Upscaler, ScaleSupport\n\n"
                      "@register_model('carn-m')\nclass CarnM(Upscaler):\n"
                      "    def __init__(self, checkpoint=None):\n"
                      "        super().__init__(name='carn-m', scales=ScaleSupport.integers(2, 3, 4))\n")
    card = ('name = "carn-m"\n[scales]\nintegers = [2, 3, 4]\n[[weights]]\nfile = "carn_m.pth"\n'
            'scale = "2,3,4"\n')
    (tmp_path / "carn-m.toml").write_text(card)
    out = _invoke("models", "carn-m", "--plugin", str(plugin))
    assert out.exit_code == 0, out.output
    assert "weights: --models carn-m=PATH (one file for every scale)" in out.stdout
    (tmp_path / "carn-m.toml").write_text('weights_files = "one"\n' + card.replace('scale = "2,3,4"', 'scale = 2'))
    from sr_bench.models import registry

    registry._read_plugin_card.cache_clear()
    assert "(one file for every scale)" in _invoke("models", "carn-m").stdout  # stated outright, it wins


def test_messages_name_the_file_that_fixes_it(tmp_path):
    from fractions import Fraction

    from sr_bench.models import create_model

    # LapSRN holding x2 only: the release that reaches the scale, not the largest one
    model = create_model("lapsrn", allow_untrained=True, scale=2)
    for scale, release in ((4, "LapSRN_x4.mat"), (3, "LapSRN_x4.mat"), (5, "LapSRN_x8.mat")):
        assert f"add {release}," in model.scale_problem(Fraction(scale)), scale
    # a MatConvNet file given to a PyTorch model says so (torch.load alone says "Unsupported operand 76")
    mat = tmp_path / "LapSRN_x2.mat"
    mat.write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(100))
    out = _invoke("run", "--models", f"rcan={mat}", "--datasets", "demo", "--scales", "2", "--no-progress")
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert "is a MATLAB .mat file (MatConvNet), where model 'rcan' takes a PyTorch state_dict" in out.output
