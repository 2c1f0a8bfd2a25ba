"""`synd run` in a process of its own: `start_daemon` and `stop_daemon`, and `SYND`, the
command that runs synd with this interpreter. The daemon's stderr is read as it comes
(`proc.log`), so a test can wait for work done (`frames_logged`) instead of for time,
which a busy machine stretches."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

SYND = [sys.executable, "-m", "synd"]


class StderrLog:
    """A process's stderr, read line by line on a thread as it is written."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self._lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait(self, done: Callable[[str], bool], timeout: float = 180.0) -> str:
        """Wait until `done(text so far)`; AssertionError (with the log) if the process
        ends first or `timeout` passes. Returns the text."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if done(text):
                return text
            if self.proc.poll() is not None:
                self._thread.join(5)
                raise AssertionError(f"synd run exited early: {self.text()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g} s: {self.text()}")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def frames_logged(text: str) -> int:
    """The most frames a status line of `text` reports (0 before the first one)."""
    return max((int(n) for n in re.findall(r"status: [^\n]*?, (\d+) frames", text)), default=0)


def start_daemon(*args, env=None) -> subprocess.Popen:
    """`synd run ARGS...` with stdout piped and stderr read as it comes into `proc.log`
    (a `StderrLog`); `env` adds to os.environ."""
    proc = subprocess.Popen(
        [*SYND, "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    proc.log = StderrLog(proc)  # type: ignore[attr-defined]
    return proc


def stop_daemon(proc, signum=signal.SIGTERM, timeout=10):
    """Send `signum` and wait for the end: (return code, stderr, seconds it took)."""
    began = time.monotonic()
    proc.send_signal(signum)
    log = getattr(proc, "log", None)
    if log is None:  # started elsewhere (stderr to a file, or piped without a reader)
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err or "", time.monotonic() - began
    proc.wait(timeout=timeout)
    took = time.monotonic() - began
    log.join(10)
    if proc.stdout is not None:
        proc.stdout.read()
    return proc.returncode, log.text(), took
