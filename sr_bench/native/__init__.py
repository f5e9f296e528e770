"""C kernels for the evaluation's hot loops, compiled on first use with the machine's C compiler.

Each kernel repeats the float64 operations of its torch formulation one for one (the same roundings, fused
multiply-adds and order), so it returns the same bits as the torch path, only without streaming image-sized
intermediates through memory once per op; ``tests/test_native.py`` compares the two bit for bit. Where no compiler
works the torch path runs instead, with the same numbers: the kernels change speed, never results.

The library is built once per (source, flags, compiler, CPU) into ``$SRBENCH_CACHE/native`` (default
``~/.cache/sr_bench/native``) and loaded from there afterwards. ``SRBENCH_NATIVE=0`` turns the kernels off;
``CC`` picks the compiler (default ``cc``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Callable

ENV_SWITCH = "SRBENCH_NATIVE"
ENV_CACHE = "SRBENCH_CACHE"
# -ffp-contract=off: only the fma() calls written in the source fuse, as in torch; no -ffast-math, which would
# reassociate. -march=native: vector width and FMA instructions of this CPU (the CPU is part of the cache key).
FLAGS = ("-O3", "-march=native", "-std=c99", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC")
COMPILE_SECONDS = 120

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_why_not: dict[str, str] = {}
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None


def library(name: str) -> ctypes.CDLL | None:
    """The compiled ``<name>.c`` of this package, or None when kernels are off or cannot be built here
    (``unavailable(name)`` says why)."""
    with _lock:
        if name not in _loaded:
            _loaded[name] = _build_and_load(name)
        return _loaded[name]


def function(name: str, symbol: str, argtypes: list, restype=None):
    """``symbol`` of the compiled ``<name>.c`` with its C signature declared, or None when the library is
    unavailable here (``unavailable(name)`` says why)."""
    lib = library(name)
    if lib is None:
        return None
    fn = getattr(lib, symbol)
    if fn.argtypes is None:
        fn.argtypes, fn.restype = argtypes, restype
    return fn


def forget() -> None:
    """Drop what this process loaded or failed to load, so that the next ``library`` call looks again (tests)."""
    with _lock:
        _loaded.clear()
        _why_not.clear()


def unavailable(name: str) -> str:
    """Why ``library(name)`` is None ("" when it is not)."""
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
    root = os.environ.get(ENV_CACHE)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "sr_bench") / "native"


def _build_and_load(name: str) -> ctypes.CDLL | None:
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        _why_not[name] = f"{ENV_SWITCH}=0"
        return None
    source = resources.files(__package__).joinpath(f"{name}.c").read_bytes()
    compiler = os.environ.get("CC", "cc")
    path = shutil.which(compiler.split()[0]) if compiler.strip() else None
    if not path:
        _why_not[name] = f"no C compiler {compiler!r} on PATH (install one, e.g. gcc, or set CC)"
        return None
    target = cache_dir() / f"{name}-{_key(source, compiler)}.so"
    if not target.is_file():
        try:
            _compile(source, compiler, target)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            last = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
            _why_not[name] = f"compiling {name}.c with {compiler!r} failed: {last[0][:200]}"
            return None
    try:
        return ctypes.CDLL(str(target))
    except OSError as e:
        _why_not[name] = f"loading {target} failed: {e}"
        return None


def _key(source: bytes, compiler: str) -> str:
    h = hashlib.sha256(source)
    h.update(" ".join((compiler, *FLAGS)).encode())
    h.update(_cpu_identity().encode())
    return h.hexdigest()[:16]


def _cpu_identity() -> str:
    """What -march=native depends on: a cached library must never be loaded on a CPU lacking its instructions
    (a shared home directory across a Ray cluster's nodes, say)."""
    ident = [platform.machine(), platform.processor()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features", "model name")):
                ident.append(line)
                if len(ident) > 3:
                    break
    except OSError:
        pass
    return "\n".join(ident)


def _compile(source: bytes, compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_bytes(source)
        out = Path(tmp) / "kernel.so"
        subprocess.run([*compiler.split(), *FLAGS, str(src), "-o", str(out), "-lm"], check=True,
                       capture_output=True, timeout=COMPILE_SECONDS, stdin=subprocess.DEVNULL)
        os.replace(out, target)  # atomic: a concurrent process loads either nothing or the whole library
