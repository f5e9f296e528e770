"""resolve_dataset / list_datasets: names, aliases, data roots, ad-hoc folders, demo, and the errors users see."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_bench.data import find_card, list_datasets, load_cards, resolve_dataset, resolve_root
from sr_bench.errors import UserError
from sr_bench.imaging.io import pixel_sha256, read_image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SRBENCH_DATA") or REPO.parent / "shared" / "datasets")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SRBENCH_DATA", "SRBENCH_CARDS", "SRBENCH_MIRROR", "SRBENCH_REGISTRY"):
        monkeypatch.delenv(var, raising=False)


def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """A card 'Tiny' (alias 'tn') with three PNGs, installed under a data root; returns (cards dir, data root)."""
    cards, folder = tmp_path / "cards", tmp_path / "root" / "Tiny"
    cards.mkdir()
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    entries = []
    for name in ("b.png", "a.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(folder / name)
        data = (folder / name).read_bytes()
        entries.append(f'[[files]]\nname = "{name}"\nwidth = 8\nheight = 6\nmode = "RGB"\nbytes = {len(data)}\n'
                       f'sha256 = "{hashlib.sha256(data).hexdigest()}"\n'
                       f'pixel_sha256 = "{pixel_sha256(read_image(folder / name))}"\n')
    (cards / "tiny.toml").write_text('name = "Tiny"\nfolder = "Tiny"\naliases = ["tn"]\n\n' + "\n".join(entries))
    return cards, tmp_path / "root"


def test_card_by_name_and_alias_case_insensitive(tmp_path):
    cards, root = tiny(tmp_path)
    for name in ("Tiny", "tiny", "TN", " tn "):
        ds = resolve_dataset(name, data_root=root, cards_dir=cards)
        assert (ds.name, ds.kind) == ("Tiny", "card")
        assert [it.name for it in ds.items] == ["a", "b", "c"]
    assert ds.items[0].load().shape == (6, 8, 3)
    assert ds.items[0].expected.name == "a.png"


def test_repo_cards_names_and_aliases():
    assert {c.name for c in load_cards()} == {"Set5", "Set14", "B100", "Urban100", "DIV2K", "DIV2K-valid"}
    for alias in ("bsd100", "B100", "bsds100", "BSDS100"):
        assert find_card(alias).name == "B100"
    assert find_card("SET14").folder == "Set14"


def test_unknown_name_suggests_closest(tmp_path):
    with pytest.raises(UserError, match=r"unknown dataset 'set15'; did you mean .*'Set14'") as e:
        resolve_dataset("set15")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="bsd100"):
        resolve_dataset("bsd10")


def test_root_order_argument_then_env_then_cwd_then_cache(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SRBENCH_CACHE", raising=False)  # it would win over XDG (sr_bench.cache)
    cache = tmp_path / "xdg" / "sr_bench" / "datasets"
    assert resolve_root().paths == (tmp_path / "work" / "datasets", cache) and resolve_root().path == cache
    monkeypatch.setenv("SRBENCH_DATA", str(tmp_path / "env"))
    assert resolve_root().paths == (tmp_path / "env",) and resolve_root().origin == "SRBENCH_DATA"
    assert resolve_root(tmp_path / "arg").paths == (tmp_path / "arg",)
    assert resolve_root(tmp_path / "arg").origin == "--data-root"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("SRBENCH_DATA")
    assert resolve_root().path == Path.home() / ".cache" / "sr_bench" / "datasets"


def test_each_level_wins_over_the_next(tmp_path, monkeypatch):
    """Four copies of Tiny that differ in their file count; whichever is read says which level won."""
    cards, _ = tiny(tmp_path)
    monkeypatch.setenv("SRBENCH_CARDS", str(cards))
    places = {"arg": tmp_path / "arg", "env": tmp_path / "env", "cwd": tmp_path / "work" / "datasets",
              "cache": tmp_path / "xdg" / "sr_bench" / "datasets"}
    for label, place in places.items():
        (place / "Tiny").mkdir(parents=True)
        (place / "Tiny" / f"{label}.txt").write_text(label)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SRBENCH_CACHE", raising=False)  # it would win over XDG (sr_bench.cache)
    monkeypatch.setenv("SRBENCH_DATA", str(places["env"]))

    def winner(data_root=None) -> str:
        [status] = list_datasets(data_root=data_root)
        return next(status.folder.glob("*.txt")).stem

    assert winner(places["arg"]) == "arg"
    assert winner() == "env"
    monkeypatch.delenv("SRBENCH_DATA")
    assert winner() == "cwd"
    (places["cwd"] / "Tiny" / "cwd.txt").unlink()
    (places["cwd"] / "Tiny").rmdir()  # ./datasets still exists, but without Tiny: the cache has it
    assert winner() == "cache"
    shutil.rmtree(places["cwd"])
    assert winner() == "cache"


def test_a_given_root_is_the_only_place_looked_in(tmp_path, monkeypatch):
    cards, root = tiny(tmp_path)
    monkeypatch.setenv("SRBENCH_CARDS", str(cards))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    root.rename(tmp_path / "datasets")  # ./datasets holds Tiny, but an explicit root without it is not bypassed
    assert len(resolve_dataset("tiny").items) == 3
    for given in ({"data_root": tmp_path / "elsewhere"}, {}):
        if not given:
            monkeypatch.setenv("SRBENCH_DATA", str(tmp_path / "elsewhere"))
        with pytest.raises(UserError, match="not found"):
            resolve_dataset("tiny", **given)


def test_help_and_readme_state_the_order():
    from click.testing import CliRunner

    from sr_bench.cli import cli
    from sr_bench.data.roots import ORDER

    runner = CliRunner()
    for command in (["run"], ["train"], ["datasets"], ["datasets", "list"], ["datasets", "verify"],
                    ["datasets", "fetch"]):
        out = runner.invoke(cli, [*command, "--help"])
        text = " ".join(re.sub(r"-\n\s+", "-", out.output).split())  # click wraps after hyphens too
        assert out.exit_code == 0 and ORDER in text, command
    readme = " ".join((REPO / "README.md").read_text().split())
    steps = ["`--data-root`", "`SRBENCH_DATA`", "`./datasets` in the current directory", "`~/.cache/sr_bench/datasets`"]
    said = re.search(r"Data root: (.*?)\.(?: |$)", readme)
    assert said, "README lost its 'Data root: ...' sentence"
    positions = [said.group(1).find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), said.group(1)


def test_missing_folder_says_where_and_how_to_fix(tmp_path):
    cards, _ = tiny(tmp_path)
    with pytest.raises(UserError) as e:
        resolve_dataset("tiny", data_root=tmp_path / "elsewhere", cards_dir=cards)
    msg = str(e.value)
    assert str(tmp_path / "elsewhere") in msg and "--data-root" in msg and "SRBENCH_DATA" in msg
    assert "srbench datasets fetch tiny" in msg and "\n" not in msg


def test_missing_files_are_named(tmp_path):
    cards, root = tiny(tmp_path)
    (root / "Tiny" / "b.png").unlink()
    with pytest.raises(UserError, match=r"missing 1 of 3 files \(b.png\).*srbench datasets verify tiny"):
        resolve_dataset("tiny", data_root=root, cards_dir=cards)


def test_folder_in_other_case_is_accepted(tmp_path):
    cards, root = tiny(tmp_path)
    (root / "Tiny").rename(root / "tiny")
    assert len(resolve_dataset("tiny", data_root=root, cards_dir=cards).items) == 3


def test_adhoc_folder(tmp_path, monkeypatch):
    folder = tmp_path / "my images"
    (folder / "sub").mkdir(parents=True)
    for name in ("z.png", "a.JPG", "m.bmp", "sub/deep.png", ".hidden.png"):
        Image.new("RGB", (4, 4)).save(folder / name, format="PNG" if name.endswith("png") else None)
    (folder / "notes.txt").write_text("x")
    ds = resolve_dataset(str(folder))
    assert (ds.name, ds.kind) == ("my images", "folder")
    assert [it.name for it in ds.items] == ["a", "m", "z"]  # sorted, non-recursive, hidden and non-images skipped
    monkeypatch.chdir(tmp_path)
    assert resolve_dataset("./my images").name == "my images"


def test_adhoc_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(UserError, match="holds no images"):
        resolve_dataset(str(tmp_path / "empty"))
    (tmp_path / "dup").mkdir()
    Image.new("L", (2, 2)).save(tmp_path / "dup" / "x.png")
    Image.new("L", (2, 2)).save(tmp_path / "dup" / "x.bmp")
    with pytest.raises(UserError, match="two images named 'x'"):
        resolve_dataset(str(tmp_path / "dup"))
    with pytest.raises(UserError, match="does not exist"):
        resolve_dataset(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="is a file"):
        resolve_dataset(str(tmp_path / "dup" / "x.png"))


def test_demo_is_offline_natural_images_with_one_gray():
    ds = resolve_dataset("DEMO")
    assert (ds.name, ds.kind) == ("demo", "demo")
    assert [it.name for it in ds.items] == ["astronaut", "camera", "chelsea", "coffee", "rocket"]
    channels = {it.name: it.load().shape[2] for it in ds.items}
    assert channels["camera"] == 1 and sum(c == 3 for c in channels.values()) == 4
    assert all("skimage" in str(it.path) for it in ds.items)


def test_list_datasets_reports_presence(tmp_path):
    cards, root = tiny(tmp_path)
    [status] = list_datasets(data_root=root, cards_dir=cards)
    assert (status.name, status.aliases, status.n_files, status.present, status.state) == ("Tiny", ("tn",), 3,
                                                                                         True, "yes")
    (root / "Tiny" / "a.png").unlink()
    assert list_datasets(data_root=root, cards_dir=cards)[0].state == "partial (2/3)"
    assert list_datasets(data_root=tmp_path / "none", cards_dir=cards)[0].state == "no"
    assert {s.name: s.n_files for s in list_datasets(data_root=tmp_path)} == {
        "B100": 100, "Set14": 14, "Set5": 5, "Urban100": 100, "DIV2K": 800, "DIV2K-valid": 100}


def test_malformed_cards_are_user_errors(tmp_path):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "bad.toml").write_text("name = [unclosed")
    with pytest.raises(UserError, match=r"bad.toml: not valid TOML"):
        load_cards(cards)
    (cards / "bad.toml").write_text('name = "X"\nfolder = "../up"\n[[files]]\nname = "a.png"\nsha256 = "0"\n')
    with pytest.raises(UserError, match="single folder name"):
        load_cards(cards)
    (cards / "bad.toml").write_text('name = "X"\n')
    with pytest.raises(UserError, match=r"no \[\[files\]\]"):
        load_cards(cards)
    (cards / "bad.toml").write_text('name = "X"\naliases = ["y"]\n[[files]]\nname = "a.png"\nsha256 = "0"\n')
    (cards / "bad2.toml").write_text('name = "Y"\n[[files]]\nname = "a.png"\nsha256 = "0"\n')
    with pytest.raises(UserError, match="both answer to 'y'"):
        load_cards(cards)


@pytest.mark.skipif(not (SHARED_DATA / "B100").is_dir(), reason=f"shared datasets not found at {SHARED_DATA}")
def test_real_data_resolves_by_alias():
    ds = resolve_dataset("bsd100", data_root=SHARED_DATA)
    assert ds.name == "B100" and len(ds.items) == 100
    assert ds.items[0].name == "img_001_SRF_3_HR" and ds.items[0].load().shape == (480, 321, 3)
    bridge = {it.name: it for it in resolve_dataset("set14", data_root=SHARED_DATA).items}["bridge"]
    assert bridge.load().shape == (512, 512, 1)
