"""Write the dataset cards (datasets/*.toml) from the shared data's MANIFEST.md and the images themselves.

    python scripts/make_dataset_cards.py [--shared ../shared/datasets] [--out datasets] [--only set5,set14]

MANIFEST.md gives, per dataset, the provenance bullets and a table of files (size, mode, bytes, sha256). Every file is
checked against that table, decoded with sr_bench's reader to record its pixel sha256 (so a lossless re-encode still
verifies), and each card is parsed back to make sure the TOML says what was meant. Descriptions, aliases, citations
and download defaults are written here by hand, since the manifest does not hold them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

from sr_bench.imaging.io import pixel_sha256, read_image

REPO = Path(__file__).resolve().parents[1]

# GitHub's archive of a commit is the public, traceable package of exactly the files the manifest hashes; the
# fetcher extracts only the card's files from it and picks, by hash, among same-named copies (e.g. CSet14 vs Set14).
_GITHUB_ZIP = "https://github.com/{repo}/archive/{commit}.zip"

META = {
    "Set5": {
        "key": "set5",
        "aliases": ["set5"],
        "description": "Set5: 5 classic SR test images (baby, bird, butterfly, head, woman) at original full size.",
        "citation": """@inproceedings{bevilacqua2012set5,
  author    = {Marco Bevilacqua and Aline Roumy and Christine Guillemot and Marie-Line Alberi-Morel},
  title     = {Low-Complexity Single-Image Super-Resolution based on Nonnegative Neighbor Embedding},
  booktitle = {Proceedings of the British Machine Vision Conference (BMVC)},
  pages     = {135.1--135.10},
  year      = {2012}
}""",
    },
    "Set14": {
        "key": "set14",
        "aliases": ["set14"],
        "description": "Set14: 14 classic SR test images at original full size (bridge is gray; man is RGB with "
                       "R=G=B).",
        "citation": """@inproceedings{zeyde2010set14,
  author    = {Roman Zeyde and Michael Elad and Matan Protter},
  title     = {On Single Image Scale-Up Using Sparse-Representations},
  booktitle = {Curves and Surfaces},
  series    = {Lecture Notes in Computer Science},
  volume    = {6920},
  pages     = {711--730},
  publisher = {Springer},
  year      = {2010}
}""",
    },
    "B100": {
        "key": "b100",
        "aliases": ["bsd100", "b100", "bsds100"],
        "description": "B100 (BSD100): the 100 BSDS300 test images as used in SR papers, in SelfExSR's copy, "
                       "modcropped from 481x321 to 480x321 / 321x480 (identical HR pixels after any top-left modcrop "
                       "by 2, 3, 4 or 8).",
        "citation": """@inproceedings{martin2001bsd,
  author    = {David Martin and Charless Fowlkes and Doron Tal and Jitendra Malik},
  title     = {A Database of Human Segmented Natural Images and its Application to Evaluating Segmentation
               Algorithms and Measuring Ecological Statistics},
  booktitle = {Proceedings of the Eighth IEEE International Conference on Computer Vision (ICCV)},
  volume    = {2},
  pages     = {416--423},
  year      = {2001}
}""",
    },
    "Urban100": {
        "key": "urban100",
        "aliases": ["urban100"],
        "description": "Urban100: 100 urban scenes with regular structures, as distributed with the SelfExSR release "
                       "(long side mostly 1024 px; all sides multiples of 4).",
        "citation": """@inproceedings{huang2015urban100,
  author    = {Jia-Bin Huang and Abhishek Singh and Narendra Ahuja},
  title     = {Single Image Super-Resolution From Transformed Self-Exemplars},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {5197--5206},
  year      = {2015}
}""",
    },
}

_BULLET = re.compile(r"^- ([^:]+): (.*)$")
_ROW = re.compile(r"^\|(.+)\|\s*$")


def parse_manifest(text: str) -> dict[str, dict]:
    """dataset name -> {"bullets": {key: value}, "files": [row dicts], "ids": {file: note}}."""
    out: dict[str, dict] = {}
    current = None
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            current = out.setdefault(title, {"bullets": {}, "files": [], "ids": {}}) if title in META else None
            header = None
            continue
        if current is None:
            continue
        if m := _BULLET.match(line):
            current["bullets"][m.group(1).strip()] = m.group(2).strip()
        elif m := _ROW.match(line):
            cells = [c.strip() for c in m.group(1).split("|")]
            if set("".join(cells)) <= set("-: "):
                continue
            if cells[0] == "file":
                header = cells
                continue
            row = dict(zip(header or [], cells, strict=False))
            if "sha256" in row:
                current["files"].append(row)
            elif "BSDS id" in row:
                current["ids"][row["file"]] = f"BSDS300 test id {row['BSDS id']} (checked against CBSD68: " \
                                              f"{row.get('checked against CBSD68', '?')})"
    return out


def build_card(name: str, info: dict, shared: Path) -> dict:
    meta = META[name]
    bullets = info["bullets"]
    folder = shared / name
    repo = bullets["Source repo"]
    commit = bullets["Commit (snapshot HEAD)"].split("`")[1]
    files_commit = re.search(r"last changed in `([0-9a-f]+)`", bullets["Commit (snapshot HEAD)"])
    files = []
    for row in info["files"]:
        fname = row["file"]
        path = folder / fname
        data = path.read_bytes()
        sha = row["sha256"].strip("`")
        if hashlib.sha256(data).hexdigest() != sha or len(data) != int(row["bytes"]):
            sys.exit(f"{path}: bytes or sha256 differ from MANIFEST.md; refusing to write a card from it")
        width, height = (int(v) for v in row["WxH"].split("x"))
        mode, _, note = row["mode"].partition(",")
        arr = read_image(path)
        channels = 1 if mode.strip() in ("L", "1") else 3
        if arr.shape != (height, width, channels):
            sys.exit(f"{path}: decodes to {arr.shape}, MANIFEST.md says {width}x{height} {mode}")
        entry = {"name": fname, "width": width, "height": height, "mode": mode.strip(), "bytes": len(data),
                 "sha256": sha, "pixel_sha256": pixel_sha256(arr)}
        notes = [n for n in (note.strip(), info["ids"].get(fname, "")) if n]
        if notes:
            entry["note"] = "; ".join(notes)
        files.append(entry)
    if len(files) != int(bullets["Count"]):
        sys.exit(f"{name}: MANIFEST.md lists {len(files)} files but says Count: {bullets['Count']}")
    return {
        "name": name,
        "folder": name,
        "aliases": meta["aliases"],
        "description": meta["description"],
        "citation": meta["citation"],
        "source": {
            "repo": repo,
            "path": bullets["Path in repo"].strip("`"),
            "commit": commit,
            "files_commit": files_commit.group(1) if files_commit else "",
            "originality": bullets.get("Originality", ""),
            "notes": bullets.get("Notes", ""),
        },
        "download": {
            "url": _GITHUB_ZIP.format(repo=repo, commit=commit),
            "format": "zip",
            "filename": f"{repo.split('/')[1]}-{commit}.zip",
        },
        "files": sorted(files, key=lambda f: f["name"]),
    }


def _s(value) -> str:
    if isinstance(value, str):
        if "\n" in value and "'''" not in value:
            return "'''\n" + value + "'''"
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_s(v) for v in value) + "]"
    raise TypeError(value)


def to_toml(card: dict) -> str:
    lines = ["# Generated by scripts/make_dataset_cards.py from the shared MANIFEST.md and the images; do not edit by "
             "hand.", ""]
    for key in ("name", "folder", "aliases", "description", "citation"):
        lines.append(f"{key} = {_s(card[key])}")
    for table in ("source", "download"):
        lines += ["", f"[{table}]"] + [f"{k} = {_s(v)}" for k, v in card[table].items()]
    for f in card["files"]:
        lines += ["", "[[files]]"] + [f"{k} = {_s(v)}" for k, v in f.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets",
                    help="folder holding MANIFEST.md and Set5/, Set14/, B100/, Urban100/")
    ap.add_argument("--out", type=Path, default=REPO / "datasets", help="where to write the cards")
    ap.add_argument("--only", default="", help="comma-separated card keys to write (default: all), e.g. set5,set14")
    args = ap.parse_args(argv)
    only = {k.strip().lower() for k in args.only.split(",") if k.strip()}
    manifest = parse_manifest((args.shared / "MANIFEST.md").read_text(encoding="utf-8"))
    missing = sorted(set(META) - set(manifest))
    if missing:
        sys.exit(f"MANIFEST.md has no section for {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, info in manifest.items():
        if only and META[name]["key"] not in only:
            continue
        card = build_card(name, info, args.shared)
        text = to_toml(card)
        if tomllib.loads(text) != card:
            sys.exit(f"{name}: the written TOML does not parse back to the same card (a quoting bug here)")
        target = args.out / f"{META[name]['key']}.toml"
        target.write_text(text, encoding="utf-8")
        print(f"{target}: {len(card['files'])} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
