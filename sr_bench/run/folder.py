"""A run folder belongs to one request and one writer at a time (docs/results.md).

- **Lock**: a writer holds an exclusive ``flock`` on ``<run folder>/.lock``; the OS drops it when the process dies,
  so a crashed run leaves no stale lock. The file stays (deleting a lock file races with a process opening it).
- **Request**: the same request continues the folder (as ``--resume``); another is refused, naming what differs,
  since rows of two requests would mix in one table.
- **Data**: a resume hashes the dataset files again and refuses to continue when one changed, appeared or
  disappeared: its rows would describe two different datasets.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

from sr_bench.data.items import Dataset
from sr_bench.errors import UserError
from sr_bench.hashing import file_sha256
from sr_bench.metrics import metric_info, metric_options, metric_source
from sr_bench.models.registry import release_of
from sr_bench.provenance import package_versions
from sr_bench.run.evaluation import quantises_to_integers
from sr_bench.run.precision import describe as describe_precision
from sr_bench.run.sink import IMAGES_DIR
from sr_bench.store import read_manifest

LOCK_NAME = ".lock"
TMP_PREFIX = ".tmp-"  # sr_bench.store.atomic's temporary files: a write a crash cut short

# request keys older run.json files lack, with the value they meant
_REQUEST_DEFAULTS = {"model_opts": {}, "metric_opts": {}, "save_images": False, "precision": "fp32", "tile": None,
                     "tile_overlap": None, "profile": False}
# request keys that do not decide what is measured: the data root only says where the files are (their hashes
# are checked instead); a memory budget only decides which images are retried tiled, and each row records that
_LOCATION_KEYS = ("data_root", "max_memory")
# request keys whose option is not spelled --key-with-dashes
_FLAGS = {"plugins": "--plugin", "model_opts": "--model-opt", "metric_opts": "--metric-opt"}


@contextlib.contextmanager
def folder_lock(run_dir: Path):
    """An exclusive lock on a run folder for the block (the OS drops it when the process dies first)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; the run works, unguarded
        yield
        return
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        f = open(run_dir / LOCK_NAME, "a+")
    except OSError as e:
        raise UserError(f"cannot write the run folder {str(run_dir)!r} ({e.strerror}); give a writable --out") from None
    with f:  # closing drops the flock
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            raise UserError(f"run folder {str(run_dir)!r} is in use by another srbench run "
                            f"({f.read().strip() or 'another process'}); wait for it to finish, or give another "
                            f"--out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}\n")
        f.flush()
        yield


def check_new_folder(run_dir: Path) -> None:
    """A one-line error unless ``run_dir`` can become a run folder before any model loads: a creatable folder that
    holds no files but the lock (rows must not land among someone's other files)."""
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        other = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_NAME)
        if other:
            shown = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
            raise UserError(f"--out {str(run_dir)!r} holds other files ({shown}) and no run.json, so it is not a run "
                            f"folder; give a new or empty folder")
    probe = run_dir
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot create the run folder {str(run_dir)!r}: {str(probe)!r} is a file; give another --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == run_dir else f" ({str(probe)!r} is not writable)"
        raise UserError(f"cannot write the run folder {str(run_dir)!r}{where}; give a writable --out")


def remove_partial_writes(run_dir: Path) -> None:
    """Delete the temporary files of writes a crash cut short (only under the lock: a live writer's are its own)."""
    for p in list(Path(run_dir).rglob(f"{TMP_PREFIX}*")):  # run.json, rows/ and images/
        p.unlink(missing_ok=True)


def _plain(value):
    """A value as run.json stores it (tuples as lists, everything JSON can hold)."""
    return json.loads(json.dumps(value, default=str))


def request_differences(stored: dict, given: dict) -> list[str]:
    """What ``given`` asks that the folder's ``stored`` request does not (``--scales 2,4 (the run has 2,3)``)."""
    out = []
    for key, value in given.items():
        if key in _LOCATION_KEYS:
            continue
        old = _plain(stored.get(key, _REQUEST_DEFAULTS.get(key)))
        new = _plain(value)
        if old != new:
            flag = _FLAGS.get(key, f"--{key.replace('_', '-')}")
            out.append(f"{flag} {_show(new)} (the run has {_show(old)})")
    return out


def _show(value) -> str:
    if isinstance(value, dict):
        value = [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "default" if value is None else str(value)


def dataset_record(ds: Dataset) -> dict:
    """run.json's entry for one dataset: its files' sha256 (hashed here) and whether they are the card's files."""
    files = {item.path.name: _sha256(item.path) for item in ds.items}
    record = {"name": ds.name, "kind": ds.kind, "images": len(ds.items), "files_sha256": files,
              "folder": str(ds.folder.resolve()) if ds.folder is not None else None}  # where a resume looks first
    if ds.card is not None:
        card = {f.name: f.sha256 for f in ds.card.files}
        record["matches_card"] = all(card.get(name) == sha for name, sha in files.items())
    return record


def _sha256(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:  # unreadable: its rows say so; the hash records that it could not be read
        return None


def check_data(run_dir: Path, stored: list[dict], current: list[dict]) -> None:
    """A one-line error, naming a file, when the datasets differ from the ones the run started on."""
    old = {d["name"]: d for d in stored}
    for d in current:
        before = (old.get(d["name"]) or {}).get("files_sha256")
        if before is None:  # recorded by an sr_bench that did not hash the data: nothing to compare
            continue
        now = d["files_sha256"]
        found = ([(n, "changed") for n in now if n in before and now[n] != before[n]]
                 + [(n, "is gone") for n in before if n not in now] + [(n, "is new") for n in now if n not in before])
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise UserError(f"cannot continue {run_dir}: dataset {d['name']}: file {found[0][0]} {found[0][1]} "
                            f"since the run started{more}; restore the data it measured, or start a new run with "
                            f"another --out")


def continues(run_dir: Path, request: dict, protocol, data: list[dict]) -> bool:
    """Whether ``run_dir`` already holds this request on the same ``data`` (True: continue it); a one-line error
    when it holds another, or its data changed."""
    if not (run_dir / "run.json").is_file():
        return False
    old = read_manifest(run_dir)
    check_data(run_dir, old.get("datasets") or [], data)
    stored = old.get("request")
    if stored is None:
        raise UserError(f"{run_dir}/run.json has no stored request (made by an older sr_bench); give another --out")
    if stored.get("precision", "fp32") != request["precision"]:
        raise UserError(f"cannot resume {run_dir}: it was run with --precision {stored.get('precision', 'fp32')}, "
                        f"this request is --precision {request['precision']}")
    if old["protocol"]["fingerprint"] != protocol.fingerprint:
        raise UserError(f"cannot resume {run_dir}: it was run under protocol {old['protocol']['name']} "
                        f"({old['protocol']['fingerprint']}), this request is {protocol.name} ({protocol.fingerprint})")
    differences = request_differences(stored, request)
    if differences:
        raise UserError(f"run folder {run_dir} holds another request: {'; '.join(differences)}; give another --out, "
                        f"or finish that run with `srbench run --resume {run_dir}`")
    return True


def new_manifest(run_dir: Path, request: dict, ctx, data: list[dict], resumed: bool, session: dict) -> dict:
    """run.json of a session: the request, what each model and metric is, the data's hashes, the protocol's rules,
    and ``execution``: one ``session`` entry per session, since a resume may switch a speed lever."""
    protocol = ctx.protocol
    manifest = {
        "run_id": run_dir.name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "request": request,
        "models": [{"name": s.name, "checkpoint": s.checkpoint, "checkpoint_sha256": m.checkpoint_sha256,
                    "release": release_of(s.name, m.checkpoint_sha256 or ""),
                    "untrained": m.untrained, "config": _plain(m.config)}
                   for s, m in ctx.models],
        "datasets": data,
        "scales": request["scales"],
        "protocol": {"name": protocol.name, "fingerprint": protocol.fingerprint, "rules": protocol.rules()},
        "metrics": list(ctx.metrics),
        "metric_info": {n: _info_json(n, metric_options(n, ctx.request.metric_opts)) for n in ctx.metrics},
        "metric_weights": json.loads(ctx.metric_prov),
        "images": ({"folder": IMAGES_DIR, "pattern": f"{IMAGES_DIR}/<model>/<dataset>/x<scale>/<image>.png",
                    "format": "png, 8-bit, lossless", "exact": quantises_to_integers(protocol)}
                   if request["save_images"] else None),
        "device": ctx.device_label,
        "package_versions": package_versions(),
        "notes": ctx.notes,
        "precision": describe_precision(request["precision"]),
        "execution": [session],
    }
    if resumed:
        old = read_manifest(run_dir)
        manifest["execution"] = [*(old.get("execution") or []), session]
        manifest["created"] = old.get("created")
        manifest["resumed"] = [*old.get("resumed", []), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")]
    return manifest


def _info_json(name: str, options: dict | None = None) -> dict:
    """A metric's declared metadata and where it comes from (with its ``--metric-opt`` options), as plain JSON (an
    infinite bound as "inf")."""
    info = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(metric_info(name)).items()}
    return {**info, "source": metric_source(name, options)}
