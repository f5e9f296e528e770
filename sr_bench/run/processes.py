"""The processes of a run: workers that die with their parent, and SIGTERM treated as Ctrl-C.

A ``--workers N`` run starts N spawned processes holding a model each (hundreds of MB). If the parent dies without
stopping them (``kill -9``, an OOM kill, a crashed terminal), nothing else would: each worker asks the kernel to
SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux), or polls its parent elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def exit_with_parent(parent_pid: int) -> None:
    """Make this process end when process ``parent_pid`` (its parent) ends, by whatever signal."""
    if sys.platform.startswith("linux") and _pdeathsig(signal.SIGKILL):
        if os.getppid() != parent_pid:  # the parent died before the request was in place
            os._exit(1)
        return
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="srbench-parent-watch", daemon=True).start()


def _pdeathsig(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)


def ignore_interrupts() -> None:
    """A worker leaves Ctrl-C (SIGINT, sent by a terminal to the whole process group) to its parent, which saves
    what is finished and then stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_pool(pool) -> None:
    """Stop a ``ProcessPoolExecutor`` now: its running images are abandoned (a resume redoes them), not waited for."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            p.kill()
    pool.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread, so ``kill PID`` stops a run the
    way Ctrl-C does (rows saved, the resume command printed). Yields a list that receives the signal numbers."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
