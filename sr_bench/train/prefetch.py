"""The next batches made on a helper thread while the device runs the current step.

A batch is a function of (seed, step) (``patches.step_batch``), so making it early changes nothing but when the CPU
work happens: the results are the same bits as making it on the training thread. On CUDA the batch is also put in
pinned memory, so the training thread's copy to the device is asynchronous (``non_blocking``) and the CPU never
waits for the GPU to finish the previous step before it can start the next one.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

import torch

_DONE = object()


class Batches:
    """``make(step)`` for step in ``range(start, stop)``, in order, ``depth`` ahead on a helper thread (``depth`` 0:
    made on the calling thread when asked for). An exception in ``make`` is raised by the ``next()`` that would have
    returned its batch."""

    def __init__(self, make: Callable[[int], tuple], start: int, stop: int, depth: int, pin: bool = False):
        self._make, self._next, self._stop, self._pin = make, start, stop, pin
        self._depth = depth
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._closing = threading.Event()
        self._thread = None
        if depth > 0 and start < stop:
            self._thread = threading.Thread(target=self._work, args=(start,), name="srbench-batches", daemon=True)
            self._thread.start()

    def _prepare(self, step: int) -> tuple:
        item = self._make(step)
        if self._pin:
            item = tuple(x.pin_memory() if isinstance(x, torch.Tensor) else x for x in item)
        return item

    def _put(self, item) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, start: int) -> None:
        for step in range(start, self._stop):
            if self._closing.is_set():
                return
            try:
                item = ("ok", self._prepare(step))
            except BaseException as e:  # handed to the training thread, which raises it
                self._put(("error", e))
                return
            if not self._put(item):
                return
        self._put(("done", _DONE))

    def next(self) -> tuple:
        if self._thread is None:
            if self._next >= self._stop:
                raise StopIteration
            self._next += 1
            return self._prepare(self._next - 1)
        kind, item = self._queue.get()
        if kind == "error":
            raise item
        if kind == "done":
            raise StopIteration
        return item

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._thread.join()
