"""`synd run` in a process of its own: `start_daemon` and `stop_daemon`, and `SYND`, the
command that runs synd with this interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SYND = [sys.executable, "-m", "synd"]


def start_daemon(*args, env=None) -> subprocess.Popen:
    """`synd run ARGS...` with stdout and stderr piped (text); `env` adds to os.environ."""
    return subprocess.Popen([*SYND, "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def stop_daemon(proc, signum=signal.SIGTERM, timeout=10):
    """Send `signum` and wait for the end: (return code, stderr, seconds it took)."""
    began = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err, time.monotonic() - began
