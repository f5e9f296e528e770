"""The processes of a run: workers that die with their parent, and SIGTERM treated as Ctrl-C.

A ``--workers N`` run's processes hold a model each (hundreds of MB); if the parent dies without stopping them
(``kill -9``, an OOM kill, a crashed terminal), nothing else would, so each has the kernel SIGKILL it when its parent
dies (``prctl(PR_SET_PDEATHSIG)`` on Linux), or polls its parent elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

from sr_bench.run.memory import libc

_PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def become_worker(parent_pid: int) -> None:
    """Make this process a worker of ``parent_pid``: it ends when its parent ends, by whatever signal, and leaves
    Ctrl-C (SIGINT, sent by a terminal to the whole process group) to its parent, which saves what is finished and
    then stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError):  # a C library without prctl: poll instead
        if libc() is not None and libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the parent died before the request was in place
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="srbench-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)


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
