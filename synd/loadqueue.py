"""Model loads off the engine thread: one at a time, and for each target only the newest.

A control surface can ask for preset changes faster than models load (a held "next"
button, a flood of OSC): starting a loader thread per request once stalled the engine
for seconds and grew memory without bound. Here one worker thread (started when there is
work, gone when there is none) builds the requests in the order they came; a request for
a target that already has one waiting replaces it, and the replaced one is told so
through its `done` callback with `Superseded`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Superseded(Exception):
    """A load request replaced by a newer one for the same target before it started."""


class LoadQueue:
    """Runs `work(request)` for submitted requests on one background thread, at most one
    waiting request per key. `work` must not raise (it reports its own failures)."""

    def __init__(self, work: Callable[[Any], None], name: str = "synd-model-loader"):
        self._work = work
        self._name = name
        self._lock = threading.Lock()
        self._waiting: OrderedDict[str, tuple[Any, Callable | None]] = OrderedDict()
        self._thread: threading.Thread | None = None

    def submit(
        self, key: str, request: Any, done: Callable[[BaseException | None], None] | None = None
    ) -> None:
        """Queue `request` for target `key`; a request still waiting for `key` is dropped
        and its `done(Superseded)` called."""
        with self._lock:
            replaced = self._waiting.pop(key, None)
            self._waiting[key] = (request, done)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        if replaced is not None:
            log.debug("load for %s replaced by a newer request", key)
            if replaced[1] is not None:
                replaced[1](Superseded(f"replaced by a newer request for {key}"))

    def _run(self) -> None:
        from synd.priority import yield_to_engine

        yield_to_engine()
        while True:
            with self._lock:
                if not self._waiting:
                    self._thread = None
                    return
                _, (request, _done) = self._waiting.popitem(last=False)
            self._work(request)

    def cancel(self) -> None:
        """Drop the waiting requests (a load being built still finishes)."""
        with self._lock:
            self._waiting.clear()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the worker to finish what it is doing and
        what waits (a thread left inside torch or ONNX Runtime at exit aborts the process)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
