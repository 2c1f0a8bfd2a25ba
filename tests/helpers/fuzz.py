"""What the flood tests (tests/test_fuzz_osc.py, tests/test_fuzz_midi.py) share: the
engine's frame rate and the share of it that must still be published under a flood, a
`FrameCounter` output, and `rss_bytes` (this process's memory in use)."""

from __future__ import annotations

import ctypes
import gc
import time
from pathlib import Path

#: The frame rate of the engine under a flood.
FPS = 30.0
#: Frames published during and after the flood, as a share of FPS x the time: generous,
#: the machine is shared (alone it is above 0.9, next to another flood test about 0.5); a
#: server that held the interpreter for long would fall far below.
MIN_FRAME_SHARE = 1 / 3


class FrameCounter:
    """A null output: the engine offers it every frame it publishes; it keeps the times."""

    name = "count"
    enabled = True

    def __init__(self):
        self.times: list[float] = []

    def offer(self, frame) -> None:
        self.times.append(time.monotonic())

    def stats(self) -> dict:
        return {"frames": len(self.times)}

    def between(self, start: float, end: float) -> int:
        return sum(start <= t <= end for t in list(self.times))


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), after a garbage collection and, with
    glibc, after handing free heap pages back (so that what counts is memory in use, not
    the allocator's spare arenas)."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")
