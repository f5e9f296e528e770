"""Third-party models: the README's plugin, pip-installed into a temporary location and found through the
``sr_bench.models`` entry-point group; and the ``--plugin file.py`` route."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _readme_plugin_files() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"<!-- plugin-file: (\S+) -->\s*```\w*\n(.*?)```", text, flags=re.S)
    assert blocks, "README lost its plugin example"
    return dict(blocks)


def _images(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(d / "a.png")
    return d


def _srbench(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "sr_bench.cli", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_entry_point_plugin_from_readme(tmp_path):
    pkg = tmp_path / "my-sr"
    for name, body in _readme_plugin_files().items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target",
                          str(target), str(pkg)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert list(target.glob("my_sr-0.1*.dist-info/entry_points.txt"))
    env = {**os.environ, "PYTHONPATH": str(target)}
    listed = _srbench(["models"], env, tmp_path)
    assert listed.returncode == 0 and "| sharp-bicubic |" in listed.stdout, listed.stderr
    out = tmp_path / "run"
    ran = _srbench(["run", "--models", "sharp-bicubic,bicubic", "--datasets", str(_images(tmp_path)), "--scales",
                    "2,2.5", "--metrics", "psnr", "--model-opt", "amount=0.8", "--out", str(out), "--no-progress"],
                   env, tmp_path)
    assert ran.returncode == 0, ran.stderr
    rows = pd.read_parquet(out / "rows")
    mine = rows[rows.model == "sharp-bicubic"]
    assert len(mine) == 2 and (mine.error == "").all() and mine.psnr.between(5, 60).all()
    # without the install the name is unknown, with a suggestion
    gone = _srbench(["run", "--models", "sharp-bicubic", "--datasets", str(_images(tmp_path / "b"))],
                    {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, tmp_path)
    assert gone.returncode == 2 and "unknown model 'sharp-bicubic'" in gone.stderr


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


def test_a_plugin_file_loads_twice_in_one_process(tmp_path):
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
