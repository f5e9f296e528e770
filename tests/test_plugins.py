"""Third-party models: the README's two plugins, pip-installed into a temporary location and found through the
``sr_bench.models`` entry-point group (the learned one reproduces the built-in LapSRN from the same weights); the
``--plugin file.py`` route; and the rules a plugin meets: declared scales, typed options, one-line errors, cards,
name collisions."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, need_data, need_shared
from sr_bench.cli import cli
from sr_bench.errors import UserError
from sr_bench.models import load_plugin, registry
from sr_bench.models.options import option_text, parse_model_opts, parse_value

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = SHARED / "weights" / "lapsrn-official"


def _readme_plugin_files() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"<!-- plugin-file: (\S+) -->\s*```\w*\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4, "README lost its plugin example (two modules, a card, pyproject.toml)"
    return dict(blocks)


def _images(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(d / "a.png")
    return d


def _srbench(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "sr_bench.cli", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The README's package, written verbatim and pip-installed (no deps) into a fresh target folder."""
    tmp = tmp_path_factory.mktemp("plugin")
    pkg = tmp / "my-sr"
    for name, body in _readme_plugin_files().items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    target = tmp / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target",
                          str(target), str(pkg)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert (list(target.glob("my_sr-0.1*.dist-info/entry_points.txt"))
            and (target / "my_sr" / "my-lapsrn.toml").is_file())
    return {**os.environ, "PYTHONPATH": str(target)}



def test_entry_point_plugins_from_readme(installed, tmp_path):
    listed = _srbench(["models"], installed, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "| sharp-bicubic |" in listed.stdout
    assert re.search(r"\| my-lapsrn \| - \| x2,4,8 \| x2 407,441, x4 814,242 \| y, progressive \|", listed.stdout)
    card = _srbench(["models", "my-lapsrn"], installed, tmp_path)  # the card beside my_sr/lapsrn.py
    assert card.returncode == 0, card.stderr
    assert "LapSRN (plugin) (my-lapsrn)" in card.stdout and "Deep Laplacian Pyramid Networks" in card.stdout
    assert "[lapsrn-matlab] MS-LapSRN TPAMI table, LapSRN rows (PSNR): 4 cells" in card.stdout
    out = tmp_path / "run"
    ran = _srbench(["run", "--models", "sharp-bicubic,bicubic", "--datasets", str(_images(tmp_path)), "--scales",
                    "2,2.5", "--metrics", "psnr", "--model-opt", "amount=0.8", "--out", str(out), "--no-progress"],
                   installed, tmp_path)
    assert ran.returncode == 0, ran.stderr
    rows = pd.read_parquet(out / "rows")
    mine = rows[rows.model == "sharp-bicubic"]
    assert len(mine) == 2 and (mine.error == "").all() and mine.psnr.between(5, 60).all()
    assert (mine.release == "").all() and (mine.checkpoint_sha256 == "").all()
    assert json.loads((out / "run.json").read_text())["models"][0]["config"] == {}
    # the learned plugin without weights: the built-ins' one-line "needs weights" error
    bare = _srbench(["run", "--models", "my-lapsrn", "--datasets", str(_images(tmp_path / "c")), "--scales", "2"],
                    installed, tmp_path)
    assert bare.returncode == 2
    assert "model 'my-lapsrn' needs weights: --models my-lapsrn=PATH/TO/lapsrn_x2.pth" in _one_line_error(bare.stderr)
    # without the install the name is unknown, with a suggestion
    gone = _srbench(["run", "--models", "sharp-bicubic", "--datasets", str(_images(tmp_path / "b"))],
                    {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, tmp_path)
    assert gone.returncode == 2 and "unknown model 'sharp-bicubic'" in gone.stderr


def _lapsrn_state_dicts(tmp_path) -> dict[int, Path]:
    """The official LapSRN_x2/x4.mat weights (read by the built-in MatConvNet importer) saved as plain state_dicts:
    the file the README's plugin loads."""
    from sr_bench.models import create_model

    out = {}
    for k in (2, 4):
        net = create_model("lapsrn", checkpoint=str(WEIGHTS / f"LapSRN_x{k}.mat")).nets[k]
        out[k] = tmp_path / f"lapsrn_x{k}.pth"
        torch.save({key: v.contiguous().clone() for key, v in net.state_dict().items()}, out[k])
    return out


def test_readme_lapsrn_plugin_reproduces_the_builtin_on_set5(installed, tmp_path):
    data = need_data("Set5")
    mats = {k: WEIGHTS / f"LapSRN_x{k}.mat" for k in (2, 4)}
    if not all(m.is_file() for m in mats.values()):
        need_shared(WEIGHTS)
    pths = _lapsrn_state_dicts(tmp_path)
    env = {**installed, "SRBENCH_DATA": str(data)}
    out = tmp_path / "run"
    builtin = "lapsrn=" + os.pathsep.join(str(mats[k]) for k in (2, 4))
    plugin = "my-lapsrn=" + os.pathsep.join(str(pths[k]) for k in (2, 4))
    ran = _srbench(["run", "--models", f"{builtin},{plugin}", "--datasets", "set5", "--scales", "2,4", "--protocol",
                    "lapsrn-matlab", "--metrics", "psnr,ssim", "--out", str(out), "--no-progress"], env, tmp_path)
    assert ran.returncode == 0, ran.stderr
    rows = pd.read_parquet(out / "rows").set_index(["model", "image", "scale_text"]).sort_index()
    assert (rows.error == "").all() and len(rows) == 2 * 5 * 2
    ours, theirs = rows.loc["my-lapsrn"], rows.loc["lapsrn"]
    # the same weights through the README's network and LumaUpscaler: the built-in's numbers, image by image
    assert (ours.psnr - theirs.psnr).abs().max() <= 1e-6 and (ours.ssim - theirs.ssim).abs().max() <= 1e-6
    # and the built-in is the published LapSRN (TPAMI table: Set5 37.52 / 31.54, within its 2 decimals)
    means = theirs.groupby("scale_text").psnr.mean()
    assert abs(means["2"] - 37.52) < 0.01 and abs(means["4"] - 31.54) < 0.01
    # each scale's rows carry that scale's file: the official ones named after the card's release
    from sr_bench.hashing import file_sha256

    for k in (2, 4):
        assert (theirs.xs(str(k), level="scale_text").checkpoint_sha256 == file_sha256(mats[k])).all()
        assert (theirs.xs(str(k), level="scale_text").release == f"LapSRN_x{k}.mat").all()
        assert (ours.xs(str(k), level="scale_text").checkpoint_sha256 == file_sha256(pths[k])).all()
        assert (ours.xs(str(k), level="scale_text").release == "unreleased").all()
    models = {m["name"]: m for m in json.loads((out / "run.json").read_text())["models"]}
    assert models["lapsrn"]["release"] == "LapSRN_x2.mat+LapSRN_x4.mat"
    assert models["my-lapsrn"]["release"] == "unreleased"
    # --paper takes the plugin's published values from its card
    table = _srbench(["table", str(out), "--paper", "--format", "csv"], env, tmp_path)
    assert table.returncode == 0, table.stderr
    csv = table.stdout
    assert re.search(r"my-lapsrn,Set5,2,.*37\.52", csv) and re.search(r"my-lapsrn,Set5,4,.*31\.54", csv), csv
    # x3 is not declared (scales x2, x4 and no strategy): refused before any image is read
    refused = _srbench(["run", "--models", plugin, "--datasets", "set5", "--scales", "2,3", "--out",
                        str(tmp_path / "x3")], env, tmp_path)
    assert refused.returncode == 2
    assert "model 'my-lapsrn' cannot run x3: it declares scales x2,4 and no decimal-scale strategy" in \
        _one_line_error(refused.stderr)
    assert not (tmp_path / "x3").exists()


def test_plugin_file_with_register_model(tmp_path):
    code = _readme_plugin_files()["my_sr/__init__.py"]
    code = code.replace("from sr_bench import ScaleSupport, Upscaler",
                        "from sr_bench import ScaleSupport, Upscaler, register_model")
    code = code.replace("class SharpBicubic", '@register_model("sharp-file")\nclass SharpBicubic')
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(code)
    out = tmp_path / "run"
    ran = _srbench(["run", "--plugin", str(plugin), "--models", "sharp-file", "--datasets", str(_images(tmp_path)),
                    "--scales", "3", "--metrics", "psnr,ssim", "--out", str(out), "--no-progress"], dict(os.environ),
                   tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (pd.read_parquet(out / "rows").error == "").all()
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    bad = _srbench(["models", "--plugin", str(broken)], dict(os.environ), tmp_path)
    assert bad.returncode == 2 and "failed to import" in bad.stderr and "Traceback" not in bad.stderr


def test_a_plugin_file_loads_twice_in_one_process(tmp_path, clean_registry):
    """Two runs in one script (or compare --visual after a run) load the same --plugin again: same models, no error."""
    from sr_bench.models import load_plugin

    path = tmp_path / "twice.py"
    path.write_text(
        "from sr_bench.models import register_model\n"
        "from sr_bench.models.bicubic import Bicubic\n\n"
        "@register_model('twice-bicubic')\n"
        "def make(**kw):\n"
        "    return Bicubic()\n"
    )
    assert load_plugin(path) == ["twice-bicubic"]
    assert load_plugin(path) == ["twice-bicubic"]


# ----------------------------------------------------------------------------------------- --model-opt typing ----
OPTION_TABLE = [
    ("true", True), ("False", False), ("TRUE", True), ("none", None), ("null", None), ("None", None),
    ("23", 23), ("-1", -1), ("+4", 4), ("0.5", 0.5), ("1e-4", 1e-4), ("-2.", -2.0), (".25", 0.25),
    ("2,3,4", [2, 3, 4]), ("a, b", ["a", "b"]), ("1.5,true,x", [1.5, True, "x"]), ("'2,3'", "2,3"),
    ('"true"', "true"), ("dbdn-espcnn", "dbdn-espcnn"), ("path/to/file.yml", "path/to/file.yml"),
    ("0x10", "0x10"), ("inf", "inf"), ("", ""), ("3/2", "3/2"),
    ("[1,2]", [1, 2]), ("[2]", [2]), ("[]", []), ("[a, 0.5]", ["a", 0.5]), ("'[1,2]'", "[1,2]"),
]


@pytest.mark.parametrize("text,value", OPTION_TABLE)
def test_model_opt_values_are_typed_by_one_table(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)
    if isinstance(value, list):
        assert [type(v) for v in got] == [type(v) for v in value]
    assert parse_value(option_text(value)) == value  # what `srbench train` prints parses back


def test_model_opt_errors():
    with pytest.raises(UserError, match="write KEY=VALUE"):
        parse_model_opts(["flag"])
    with pytest.raises(UserError, match="empty item between commas"):
        parse_model_opts(["s=2,,3"])
    with pytest.raises(UserError, match="given twice"):
        parse_model_opts(["a=1", "a=2"])
    for text in ("k=[1,2", "k=1,2]", "k=[[1],2]"):  # a list or an error, never the strings '[1' and '2]'
        with pytest.raises(UserError, match=re.escape("write a list as [2,3,4]")):
            parse_model_opts([text])


PROBE = '''
from fractions import Fraction
import torch.nn.functional as F
from sr_bench import ScaleSupport, Upscaler, register_model

@register_model("probe")
class Probe(Upscaler):
    def __init__(self, flag=True, n=0, x=0.0, items=(), label="", nothing="unset", strategy=None):
        kinds = {k: type(v).__name__ for k, v in dict(flag=flag, n=n, x=x, items=items, label=label,
                                                        nothing=nothing).items()}
        super().__init__(name="probe", scales=ScaleSupport.integers(2), learned=False, strategy=strategy or "native",
                         config={"got": repr((flag, n, x, items, label, nothing)), "kinds": kinds})

    def super_resolve(self, lr, scale, size):
        return F.interpolate(lr, size=size, mode="bilinear", align_corners=False)
'''


def test_a_plugin_receives_typed_options_and_resume_gives_the_same(tmp_path, clean_registry):
    plugin = tmp_path / "probe.py"
    plugin.write_text(PROBE)
    out = tmp_path / "run"
    args = ["run", "--plugin", str(plugin), "--models", "probe", "--datasets", str(_images(tmp_path)), "--scales",
            "2", "--metrics", "psnr", "--out", str(out), "--no-progress"]
    opts = ["flag=false", "n=3", "x=1e-3", "items=2,3", "label='7'", "nothing=none"]
    r = CliRunner().invoke(cli, [*args, *[a for o in opts for a in ("--model-opt", o)]])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "run.json").read_text())
    config = manifest["models"][0]["config"]
    assert config["got"] == repr((False, 3, 0.001, [2, 3], "7", None))
    assert manifest["request"]["model_opts"] == {"flag": False, "n": 3, "x": 0.001, "items": [2, 3], "label": "7",
                                                 "nothing": None}
    # --resume rebuilds the model from run.json: the same typed values
    (out / "run.json").write_text(json.dumps({**manifest, "models": []}))
    for shard in (out / "rows").glob("*.parquet"):
        shard.unlink()
    again = CliRunner().invoke(cli, ["run", "--resume", str(out), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "run.json").read_text())["models"][0]["config"]["got"] == config["got"]


# -------------------------------------------------------------------------------------------- declared scales ----
def test_undeclared_scales_are_refused_before_any_image_is_read(tmp_path, clean_registry):
    plugin = tmp_path / "probe.py"
    plugin.write_text(PROBE)
    images = _images(tmp_path)
    (images / "broken.png").write_bytes(b"not a png")  # reading it would give an error row, not a refusal
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--plugin", str(plugin), "--models", "probe", "--datasets", str(images),
                                 "--scales", "2,2.5", "--out", str(out), "--no-progress"])
    assert r.exit_code == 2
    assert _one_line_error(r.output) == ("error: model 'probe' cannot run x2.5: it declares scales x2 and no "
                                         "decimal-scale strategy; drop that scale from --scales (or declare it in "
                                         "the model's ScaleSupport)")
    assert not out.exists()
    # a built-in that cannot reach a scale is refused the same way, before the run (it used to fill error rows)
    b = CliRunner().invoke(cli, ["run", "--models", "edsr-baseline", "--allow-untrained", "--model-opt", "scale=2",
                                 "--datasets", str(images), "--scales", "3", "--out", str(out), "--no-progress"])
    assert b.exit_code == 2 and not out.exists()
    assert _one_line_error(b.output).startswith("error: model 'edsr-baseline' cannot run x3: it holds x2 only")
    # a model that declares a strategy takes the other scales through it, and the rows name it
    ok = CliRunner().invoke(cli, ["run", "--plugin", str(plugin), "--models", "probe", "--datasets", str(images),
                                  "--scales", "2,2.5", "--model-opt", "strategy=bilinear", "--metrics", "psnr",
                                  "--out", str(out), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    rows = pd.read_parquet(out / "rows").set_index(["image", "scale_text"])
    assert rows.loc[("a", "2"), "strategy"] == "native" and rows.loc[("a", "2.5"), "strategy"] == "bilinear"
    assert rows.loc[("broken", "2"), "error"] != ""


def test_scale_support_forms():
    from sr_bench import ScaleSupport

    s = ScaleSupport.integers(2, 3, 4)
    assert s == ScaleSupport(integers=frozenset({2, 3, 4})) == ScaleSupport.integers([4, 3, 2])
    assert s.integers == {2, 3, 4} and s.low is None and s.native(Fraction(3)) and not s.native(Fraction(5, 2))
    r = ScaleSupport.range("1.5", 4)
    assert (r.low, r.high) == (Fraction(3, 2), Fraction(4)) and r.native(Fraction(4)) and not r.native(Fraction(3, 2))
    assert ScaleSupport.any_scale().native(Fraction(64)) and not ScaleSupport.any_scale().native(Fraction(1))
    assert s.describe() == "x2,3,4" and r.describe() == "(3/2,4]"
    for bad in (lambda: ScaleSupport.integers(), lambda: ScaleSupport.integers(2.5), lambda: ScaleSupport.range(4, 2),
                lambda: ScaleSupport.range(1, 65), lambda: ScaleSupport(low=1)):
        with pytest.raises(UserError, match="ScaleSupport"):
            bad()
    with pytest.raises(AttributeError):
        s.low = Fraction(1)


# --------------------------------------------------------------------------------------------- plugin errors ----
RAISING = '''
from sr_bench import ScaleSupport, Upscaler, register_model

@register_model("fails-init")
class FailsInit(Upscaler):
    def __init__(self):
        raise ValueError("no such\\nlayer: conv9")

@register_model("fails-run")
class FailsRun(Upscaler):
    def __init__(self):
        super().__init__(name="fails-run", scales=ScaleSupport.any_scale(), learned=False)

    def super_resolve(self, lr, scale, size):
        raise RuntimeError(f"kernel missing for x{scale}")

@register_model("not-a-model")
def make():
    return object()
'''


def test_plugin_exceptions_are_one_line_naming_the_plugin(tmp_path):
    plugin = tmp_path / "raising.py"
    plugin.write_text(RAISING)
    images = _images(tmp_path)
    base = ["run", "--plugin", str(plugin), "--datasets", str(images), "--scales", "2", "--no-progress"]
    r = _srbench([*base, "--models", "fails-init"], dict(os.environ), tmp_path)
    assert r.returncode == 2
    assert _one_line_error(r.stderr) == (f"error: model 'fails-init' from plugin file {plugin} raised ValueError: no "
                                         f"such layer: conv9 (while creating it); rerun with srbench --debug for the "
                                         f"traceback")
    debug = _srbench(["--debug", *base, "--models", "fails-init"], dict(os.environ), tmp_path)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr
    assert 'raise ValueError("no such' in debug.stderr and debug.stderr.rstrip().splitlines()[-1].startswith("error: ")
    wrong = _srbench([*base, "--models", "not-a-model"], dict(os.environ), tmp_path)
    assert "model 'not-a-model' returned object, not an Upscaler" in _one_line_error(wrong.stderr)
    # from super_resolve: every row keeps the message, the run finishes, and its exit status says a model failed
    out = tmp_path / "run"
    ran = _srbench([*base, "--models", "fails-run,bicubic", "--out", str(out)], dict(os.environ), tmp_path)
    assert ran.returncode == 1, ran.stderr
    assert "1 of 2 evaluations failed: 1 model (e.g. imgs/a x2 fails-run: RuntimeError: kernel missing" in ran.stderr
    rows = pd.read_parquet(out / "rows").set_index("model")
    assert (rows.loc["fails-run", "error"] == "RuntimeError: kernel missing for x2"
            and rows.loc["bicubic", "error"] == "")


# ------------------------------------------------------------------------------------------------ names ----
def _plugin(tmp_path, file: str, name: str, extra: str = "") -> Path:
    path = tmp_path / file
    path.write_text(
        "from sr_bench import register_model\n"
        "from sr_bench.models.bicubic import Bicubic\n\n"
        f"@register_model({name!r}{extra})\n"
        "def make():\n"
        "    m = Bicubic()\n"
        "    m.config = {'from': __file__}\n"
        "    return m\n")
    return path


def test_a_name_taken_twice_is_an_error_naming_both(tmp_path, clean_registry):
    images = _images(tmp_path)
    mine = _plugin(tmp_path, "mine.py", "bicubic")
    r = CliRunner().invoke(cli, ["run", "--plugin", str(mine), "--datasets", str(images), "--scales", "2"])
    assert r.exit_code == 2
    assert _one_line_error(r.output) == (f"error: model name 'bicubic' is registered twice: by the built-in card "
                                         f"'bicubic' and by plugin file {mine}; rename one, or replace on purpose "
                                         f"with @register_model('bicubic', override=True)")
    # said when the file is loaded, whatever the command
    listing = CliRunner().invoke(cli, ["models", "edsr", "--plugin", str(mine)])
    assert listing.exit_code == 2 and "model name 'bicubic' is registered twice" in _one_line_error(listing.output)
    a, b = _plugin(tmp_path, "a.py", "twin"), _plugin(tmp_path, "b.py", "twin")
    r = CliRunner().invoke(cli, ["models", "--plugin", str(a), "--plugin", str(b)])
    assert r.exit_code == 2 and f"by plugin file {a} and by plugin file {b}" in _one_line_error(r.output)


def test_override_replaces_a_builtin_on_purpose(tmp_path, clean_registry):
    mine = _plugin(tmp_path, "mine.py", "bicubic", ", override=True")
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--plugin", str(mine), "--datasets", str(_images(tmp_path)), "--scales", "2",
                                 "--metrics", "psnr", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["models"][0]["config"] == {"from": str(mine)}


def _fake_distribution(tmp_path, entry: str, module: str) -> dict:
    """An installed distribution as importlib.metadata sees it: a dist-info folder with entry_points.txt."""
    site = tmp_path / "site"
    info = site / "fake_sr-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sr\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[sr_bench.models]\n{entry}\n")
    (site / "fake_sr.py").write_text(module)
    return {**os.environ, "PYTHONPATH": str(site)}


def test_entry_points_colliding_or_not_upscalers(tmp_path):
    env = _fake_distribution(tmp_path, "rcan = fake_sr:Net\nplain = fake_sr:Plain",
                             "from sr_bench.models.bicubic import Bicubic as Net\nclass Plain:\n    pass\n")
    r = _srbench(["models"], env, tmp_path)
    clash = ("model name 'rcan' is registered twice: by the built-in card 'rcan' and by entry point "
             "'rcan = fake_sr:Net' of distribution fake-sr 0.1; rename one, or, to replace the built-in on purpose, "
             "put replaces = 'rcan' in the card rcan.toml beside the plugin's module")
    # the listing shows every other model and one line for the collision
    assert r.returncode == 0 and r.stderr.strip() == f"problem: {clash}", r.stderr
    listed = {line.split("|")[1].strip() for line in r.stdout.splitlines() if line.startswith("| ")}
    assert {"edsr", "lapsrn", "bicubic", "plain"} <= listed and "rcan" not in listed
    used = _srbench(["run", "--models", "rcan", "--datasets", str(_images(tmp_path / "u")), "--scales", "2"], env,
                    tmp_path)
    assert used.returncode == 2 and _one_line_error(used.stderr) == f"error: {clash}"
    # the documented way to replace a built-in from an installed package: its card says so
    (tmp_path / "site" / "rcan.toml").write_text('name = "rcan"\nreplaces = "rcan"\nlearned = false\n'
                                                 '[scales]\nrange = ["1", "64"]\n')
    r = _srbench(["models", "rcan"], env, tmp_path)
    assert r.returncode == 0 and r.stderr == "" and r.stdout.startswith("rcan (rcan)\n"), r.stderr
    assert "RCAN_BIX2.pt" not in r.stdout  # the plugin's card, not the built-in's
    env = _fake_distribution(tmp_path / "b", "plain = fake_sr:Plain", "class Plain:\n    pass\n")
    r = _srbench(["run", "--models", "plain", "--datasets", str(_images(tmp_path)), "--scales", "2"], env, tmp_path)
    assert "model 'plain' from entry point 'plain = fake_sr:Plain' of distribution fake-sr 0.1 is Plain, which is " \
           "not an Upscaler subclass" in _one_line_error(r.stderr)


def test_register_model_checks_the_class(clean_registry):
    with pytest.raises(UserError, match="register_model\\('thing'\\): Thing is not an Upscaler subclass"):
        @registry.register_model("thing")
        class Thing:
            pass


# ------------------------------------------------------------------------------------------------- cards ----
CARD = '''
name = "probe"
display_name = "Probe"
summary = "bilinear, for tests"
learned = false
[paper]
title = "A Probe"
venue = "nowhere 2024"
[scales]
integers = [2]
[[published]]
source = "made-up table for the test"
protocol = "matlab"
rows = [["imgs", "2", 12.5, 0.25]]
'''


def test_a_plugin_card_is_shown_and_used_by_paper(tmp_path, clean_registry):
    plugin = tmp_path / "probe.py"
    plugin.write_text(PROBE)
    (tmp_path / "probe.toml").write_text(CARD)
    shown = CliRunner().invoke(cli, ["models", "probe", "--plugin", str(plugin)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Probe (probe) - bilinear, for tests")
    assert "[matlab] made-up table for the test: 1 cells" in shown.output
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--plugin", str(plugin), "--models", "probe", "--datasets",
                                 str(_images(tmp_path)), "--scales", "2", "--metrics", "psnr,ssim", "--out", str(out),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    registry._registered.pop("probe")  # a later `srbench table` process: the run's --plugin is loaded from run.json
    registry._plugins.clear()
    t = CliRunner().invoke(cli, ["table", str(out), "--paper", "--format", "csv"])
    assert t.exit_code == 0, t.output
    head, row = t.stdout.splitlines()[:2]
    cells = dict(zip(head.split(","), row.split(","), strict=True))
    assert cells["model"] == "probe" and float(cells["paper_psnr"]) == 12.5 and float(cells["paper_ssim"]) == 0.25
    (tmp_path / "probe.toml").write_text(CARD.replace("integers = [2]", "integers = [2.5]"))
    registry._read_plugin_card.cache_clear()
    bad = CliRunner().invoke(cli, ["models", "probe"])
    assert bad.exit_code == 2
    assert _one_line_error(bad.output) == (f"error: model card {tmp_path / 'probe.toml'}: [scales] integers must be a "
                                           f"list of whole numbers >= 1")


# ------------------------------------------------------------------------------------------------ weights ----
def test_read_and_load_weights_as_the_builtins_do(tmp_path):
    import torch.nn as nn

    from sr_bench import load_weights, read_weights
    from sr_bench.hashing import file_sha256

    def net(width=4):
        return nn.Sequential(nn.Conv2d(1, width, 3), nn.Conv2d(width, 1, 3))

    src = net()
    wrapped = tmp_path / "dp.pth"  # a DataParallel checkpoint inside a training container
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, wrapped)
    plain = tmp_path / "plain.pth"
    torch.save(src.state_dict(), plain)
    files = read_weights(f"{wrapped}{os.pathsep}{plain}", "mine")
    assert [f.path for f in files] == [wrapped, plain] and [f.sha256 for f in files] == [file_sha256(wrapped),
                                                                                       file_sha256(plain)]
    assert set(files[0].state_dict) == set(src.state_dict())  # module. prefixes gone
    loaded = load_weights(net(), files[0], "mine")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), src.state_dict().values(), strict=True))
    with pytest.raises(UserError) as e:
        load_weights(net(width=5), files[1], "mine")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"checkpoint {str(plain)!r} does not fit model 'mine': 3 shape "
                                              f"mismatch(es): 0.weight (4,1,3,3) vs model (5,1,3,3)")
    with pytest.raises(UserError, match="model 'mine' needs weights: --models mine=PATH/TO/w.pth"):
        read_weights(None, "mine", example="w.pth")
    with pytest.raises(UserError, match="checkpoint for model 'mine' not found"):
        read_weights(str(tmp_path / "nope.pth"), "mine")


# ----------------------------------------------------------------------- built-in strategies, addressed options ----
X2 = '''
from sr_bench import ScaleSupport, Upscaler, register_model
from sr_bench.imaging.resize import imresize

@register_model("x2-bicubic")
class X2(Upscaler):
    strategies = ("ceil-then-down", "floor-then-up", "recursive-x2")  # opts into the built-in ones

    def __init__(self, levels=1):
        super().__init__(name="x2-bicubic", scales=ScaleSupport.integers(2, 4), learned=False,
                         config={"levels": levels})

    def super_resolve(self, lr, scale, size):
        assert scale in (2, 4), scale  # the strategies only ever ask for a held scale
        return imresize(lr * 255.0, scale=scale, size=size) / 255.0

@register_model("x2-plain")
class Plain(X2):
    strategies = ()
'''


def test_a_plugin_opts_into_the_builtin_strategies(tmp_path, clean_registry):
    from fractions import Fraction

    import torch

    from sr_bench.imaging.resize import imresize
    from sr_bench.models.building import build_model

    plugin = tmp_path / "x2.py"
    plugin.write_text(X2)
    load_plugin(plugin)
    lr = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s, size = Fraction(3), (30, 36)

    def ref(k, x=lr):  # the plugin's own held scale, then MATLAB bicubic in 0..255 to the size
        h, w = x.shape[-2:]
        return imresize(imresize(x * 255.0, scale=k, size=(k * h, k * w)), size=size).div(255.0).clamp(0, 1)

    default = build_model("x2-bicubic")
    assert default.strategy_for(s) == "ceil-then-down" and default.scale_problem(Fraction(5)) is not None
    same = functools.partial(torch.testing.assert_close, rtol=0, atol=1e-12)  # x/255*255 in float64 aside
    same(default.super_resolve(lr, s, size), ref(4))
    floor = build_model("x2-bicubic", opts={"x2-bicubic.strategy": "floor-then-up"})
    assert floor.strategy_for(s) == "floor-then-up"
    same(floor.super_resolve(lr, s, size), ref(2))
    rec = build_model("x2-bicubic", opts={"strategy": "recursive-x2"})
    x2 = imresize(lr * 255.0, scale=2).clamp(0, 255)  # x3 = a x2 pass, then one at 1.5 (the x2 network, resized)
    want = imresize(imresize(x2, scale=2), size=size).div(255.0).clamp(0, 1)
    same(rec.super_resolve(lr, s, size), want)
    # a plugin that does not opt in is refused the option, naming it
    with pytest.raises(UserError, match="no model in --models takes the option 'strategy'"):
        from sr_bench.models.building import check_model_opts

        check_model_opts(["x2-plain"], {"strategy": "ceil-then-down"})
    images = _images(tmp_path)
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--plugin", str(plugin), "--models", "x2-bicubic", "--datasets", str(images),
                                 "--scales", "2,3", "--model-opt", "strategy=ceil-then-down", "--metrics", "psnr",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = pd.read_parquet(out / "rows").set_index(["image", "scale_text"])
    assert rows.loc[("a", "2"), "strategy"] == "native" and rows.loc[("a", "3"), "strategy"] == "ceil-then-down"


def test_options_addressed_to_one_model(tmp_path, clean_registry):
    from sr_bench.models.building import build_model, check_model_opts

    plugin = tmp_path / "x2.py"
    plugin.write_text(X2)
    load_plugin(plugin)
    opts = {"levels": 1, "x2-plain.levels": 3}
    check_model_opts(["x2-bicubic", "x2-plain"], opts)
    assert build_model("x2-bicubic", opts=opts).config["levels"] == 1
    assert build_model("x2-plain", opts=opts).config["levels"] == 3
    with pytest.raises(UserError, match=re.escape("addressed to 'x2-plian', which is not in --models; did you mean "
                                                  "x2-plain.levels?")):
        check_model_opts(["x2-bicubic", "x2-plain"], {"x2-plian.levels": 3})
    with pytest.raises(UserError, match="model 'bicubic' takes no option 'levels'"):
        check_model_opts(["bicubic"], {"bicubic.levels": 3})
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "--plugin", str(plugin), "--models", "x2-bicubic,x2-plain", "--datasets",
                                 str(_images(tmp_path)), "--scales", "2", "--model-opt", "x2-plain.levels=3",
                                 "--metrics", "psnr", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    configs = {m["name"]: m["config"] for m in json.loads((out / "run.json").read_text())["models"]}
    assert configs["x2-plain"]["levels"] == 3 and configs["x2-bicubic"]["levels"] == 1


def test_a_plain_upscaler_s_held_modules_are_put_in_eval_mode_on_the_device(clean_registry):
    import torch.nn as nn

    from sr_bench import ScaleSupport, Upscaler
    from sr_bench.models.building import build_model

    @registry.register_model("held")
    class Held(Upscaler):
        def __init__(self):
            super().__init__(name="held", scales=ScaleSupport.integers(2), learned=False)
            self.net = nn.Dropout(0.5)  # in training mode it would zero half the pixels
            self.nets = {2: nn.BatchNorm2d(3).double()}

        def super_resolve(self, lr, scale, size):
            return self.nets[2](self.net(lr))

    model = build_model("held", device="cpu")
    assert not model.net.training and not model.nets[2].training
    assert model.nets[2].weight.dtype == torch.float64  # dtypes stay as built
    lr = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    assert torch.equal(model.super_resolve(lr, Fraction(2), (4, 4)), model.super_resolve(lr, Fraction(2), (4, 4)))
