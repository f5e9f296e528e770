"""C kernels for the evaluation's hot loops, compiled on first use with the machine's C compiler. Each returns the
bits of its torch formulation and is probed against it on first use (``kernel``); where none can be built or the
probe finds another bit, the torch path runs and ``unavailable`` says why: the kernels change speed, never results.
Build, probe, ``SRBENCH_NATIVE`` and ``CC``, and what each piece saves: docs/native.md.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TypeVar

from sr_bench import cache
from sr_bench.errors import unknown

ENV_SWITCH = "SRBENCH_NATIVE"
# -ffp-contract=off: only the fma() calls written in the source fuse, as in torch; no -ffast-math, which would
# reassociate. -march=native: vector width and FMA instructions of this CPU (the CPU is part of the cache key).
FLAGS = ("-O3", "-march=native", "-std=c99", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC")
COMPILE_SECONDS = 120

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_why_not: dict[str, str] = {}
_probed: dict[str, object] = {}
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None


def library(name: str) -> ctypes.CDLL | None:
    """The compiled ``<name>.c`` of this package, or None when kernels are off or cannot be built here
    (``unavailable(name)`` says why)."""
    with _lock:
        if name not in _loaded:
            built = _build_and_load(name)
            _loaded[name], _why_not[name] = (built, "") if isinstance(built, ctypes.CDLL) else (None, built)
        return _loaded[name]


def declare(lib: ctypes.CDLL, symbol: str, argtypes: list, restype=None):
    fn = getattr(lib, symbol)
    fn.argtypes, fn.restype = argtypes, restype
    return fn


def kernel(name: str, bind: Callable[[ctypes.CDLL], T], probe: Callable[[T], str]) -> T | None:
    """``bind(library(name))`` (its functions with their C signatures) once ``probe`` of it has returned "" (the
    kernel gave the torch path's bits on the probe's inputs), or None when the library is unavailable or the probe
    found a difference (``unavailable(name)`` says which). Probed once per process."""
    if name not in _probed:
        lib = library(name)
        bound = None if lib is None else bind(lib)
        why = "" if bound is None else probe(bound)  # outside the lock: a probe splits its work over ``pool``
        if why:
            _why_not[name] = f"{name}.c gave other bits than torch's path ({why}); torch's path is used"
        _probed.setdefault(name, None if why else bound)
    return _probed[name]


def forget() -> None:
    """Drop what this process loaded or failed to load, so that the next ``library`` call looks again (tests)."""
    with _lock:
        _loaded.clear()
        _why_not.clear()
        _probed.clear()


def unavailable(name: str) -> str:
    """Why ``library(name)`` is None, or why its probe turned it down ("" when neither; the probe's verdict is
    known once ``kernel(name, ...)`` has run: ask the piece's own module)."""
    library(name)
    return _why_not.get(name, "")


def pool(workers: int) -> ThreadPoolExecutor:
    """At least ``workers`` threads for splitting a kernel call's rows; this process's own (a forked worker makes a
    new one), grown when a caller needs more."""
    global _pool, _pool_key
    with _lock:
        if _pool is None or _pool_key[0] != os.getpid() or _pool_key[1] < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="srbench-native")
            _pool_key = (os.getpid(), workers)
        return _pool


def split(units: int, min_units: int, part: Callable[[int, int], None], threads: int) -> None:
    """``part(u0, u1)`` over ``[0, units)`` in up to ``threads`` contiguous pieces of at least ``min_units`` each,
    the first on this thread and the others on ``pool`` (ctypes releases the GIL during a kernel call). Kernels
    compute every output value alone, so how the range is split changes no bit."""
    parts = max(1, min(threads, units // max(1, min_units)))
    bounds = [units * i // parts for i in range(parts + 1)]
    others = [pool(parts - 1).submit(part, bounds[i], bounds[i + 1]) for i in range(1, parts)] if parts > 1 else []
    part(bounds[0], bounds[1])
    for f in others:
        f.result()


def cache_dir() -> Path:
    return cache.folder("native")


PIECES = ("ssim_map", "pixels")  # docs/native.md: what each saves, and the pieces removed
_OFF, _ON = ("0", "false", "no", "off"), ("", "1", "true", "yes", "on")


def switched_off(piece: str) -> str:
    """Why ``SRBENCH_NATIVE`` turns ``piece`` off ("" when it does not): ``0`` turns every piece off, ``1`` (the
    default) none, ``-pixels`` the pieces named, ``ssim_map`` all but the pieces named."""
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    if value in _OFF:
        return f"{ENV_SWITCH}=0"
    if value in _ON:
        return ""
    items = [v.strip() for v in value.split(",") if v.strip()]
    for item in items:
        if item.lstrip("-") not in PIECES:
            raise unknown(f"native piece in {ENV_SWITCH}={value}", item.lstrip("-"), PIECES)
    if f"-{piece}" in items or (any(not i.startswith("-") for i in items) and piece not in items):
        return f"{ENV_SWITCH}={value}"
    return ""


def _build_and_load(name: str) -> ctypes.CDLL | str:
    """The library, or why there is none."""
    why = switched_off(name)
    if why:
        return why
    source = resources.files(__package__).joinpath(f"{name}.c").read_bytes()
    compiler = os.environ.get("CC", "cc")
    path = shutil.which(compiler.split()[0]) if compiler.strip() else None
    if not path:
        return f"no C compiler {compiler!r} on PATH (install one, e.g. gcc, or set CC)"
    target = cache_dir() / f"{name}-{_key(source, compiler)}.so"
    if not target.is_file():
        # imported here: sr_bench.store loads pyarrow, which a process that finds its kernels built never needs
        from sr_bench.store.atomic import atomic_write

        try:  # the source on stdin; a concurrent process loads either nothing or the whole library
            atomic_write(target, lambda out: subprocess.run(
                [*compiler.split(), *FLAGS, "-x", "c", "-", "-o", out, "-lm"], input=source, check=True,
                capture_output=True, timeout=COMPILE_SECONDS))
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            status = f"exit status {e.returncode}" if isinstance(e, subprocess.CalledProcessError) else str(e)
            last = detail.decode(errors="replace").strip().splitlines()[-1:] or [status]
            return f"compiling {name}.c with {compiler!r} failed: {last[0][:200]}"
    try:
        return ctypes.CDLL(str(target))
    except OSError as e:
        return f"loading {target} failed: {e}"


def _key(source: bytes, compiler: str) -> str:
    h = hashlib.sha256(source)
    h.update(" ".join((compiler, *FLAGS)).encode())
    h.update(_cpu_identity().encode())
    return h.hexdigest()[:16]


def _cpu_identity() -> str:
    """What -march=native depends on: a cached library must never be loaded on a CPU lacking its instructions
    (a shared home directory across a Ray cluster's nodes, say)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    found = [line for line in lines if line.startswith(("flags", "Features", "model name"))][:2]
    return "\n".join([platform.machine(), platform.processor(), *found])
