"""Packaging metadata lives in setup.cfg; this file only adds the built-in cards to the wheel.

The cards are edited in the top-level ``registry/`` and ``datasets/`` folders (``datasets/`` also holds users'
git-ignored image folders, which must not be packaged), so build_py copies just their ``*.toml`` into
``sr_bench/_builtin_cards/`` of the build, where ``sr_bench.builtin_cards`` reads them with importlib.resources.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
CARD_FOLDERS = ("registry", "datasets")


class build_py_with_cards(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the top-level folders in place
            return
        for folder in CARD_FOLDERS:
            cards = sorted((HERE / folder).glob("*.toml"))
            if not cards:
                raise SystemExit(f"setup.py: no cards in {HERE / folder}; the wheel would have no built-in {folder}")
            target = Path(self.build_lib) / "sr_bench" / "_builtin_cards" / folder
            if target.is_dir():  # a reused build folder must not keep a card deleted since
                shutil.rmtree(target)
            self.mkpath(str(target))
            for card in cards:
                self.copy_file(str(card), str(target / card.name))


setup(cmdclass={"build_py": build_py_with_cards})
