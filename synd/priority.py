"""Thread priorities: the engine's frame clock comes first.

Outputs, model loads and preset exports run on threads of their own; on a busy CPU
they should wait, not the engine, so each lowers its own priority when it starts.
"""

from __future__ import annotations

import os
import sys
import threading

#: How much lower than the engine output and loader threads run (Unix nice steps).
OUTPUT_NICE = 5


def yield_to_engine() -> None:
    """Lower the calling thread's CPU priority (and that of threads it starts, such as
    NDI's compressors, which inherit it), so that on a busy CPU the engine's frame clock
    wins: an output or a model load may take longer, the engine should not drop frames. Lowering needs
    no privileges; where threads have no priority of their own, nothing happens."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + OUTPUT_NICE)
    except OSError:
        pass
