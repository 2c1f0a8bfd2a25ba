"""Keep native libraries' own stderr chatter out of synd's output.

C libraries synd loads (libjack through python-rtmidi; ALSA, PulseAudio's ALSA plugin and
JACK through PortAudio/sounddevice) write their complaints straight to file descriptor 2,
where redirecting `sys.stderr` cannot catch them. With no JACK server, opening MIDI
printed five lines of JACK's own ("Cannot connect to server socket err = No such file or
directory", "jack server is not running or cannot be started",
"JackShmReadWritePtr::~JackShmReadWritePtr - Init not done for -1, skipping unlock", ...)
before synd's one line saying that MIDI is off.

`quiet_stderr(what)` points fd 2 at a temporary file for the duration of a block, puts
it back in a ``finally`` and logs every captured line at DEBUG (``synd -v`` shows them:
nothing is dropped). `explain(exc, captured)` folds the essential reason found in the
captured text (an ALSA error the library's own exception leaves out, such as
"PulseAudio: Unable to connect: Connection refused") into a one-line message.

Threads: fd 2 belongs to the whole process. While a block runs, whatever any thread
writes to fd 2 lands in the capture, and child processes started meanwhile inherit the
capture as their stderr. So wrap only short, synchronous native calls (opening a MIDI
client or an audio stream, initialising PortAudio), never a wait or a loop. Blocks are
serialised by one re-entrant lock (two threads swapping fd 2 at once could leave it
pointing at a closed capture for good; sounddevice's own swap of fd 2 in its
`_initialize` must therefore run inside a block too), and logging handlers writing to
fd 2 are pointed at the real stderr while a block runs, so log lines of other threads
still show. Text other threads write straight to fd 2 in that window (a bare print to
`sys.stderr`, another C library) goes into the capture: logged at DEBUG, not lost.
C's ``stderr`` is unbuffered, so native writes reach fd 2 at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from synd.errors import error_line

__all__ = ["Captured", "quiet_stderr", "essential", "explain"]

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024  # captured bytes kept for the log; the rest is counted
_LOCK = threading.RLock()
_ALSA = re.compile(r"ALSA lib [^\s:]+:\d+:\(\w+\)\s*(.*\S)")


@dataclass
class Captured:
    """What native code wrote to fd 2 during a `quiet_stderr` block.

    `text` is filled in when the block ends (also when it raises); it stays empty when
    fd 2 could not be swapped (closed, or no temporary file could be made).
    """

    text: str = ""


@contextlib.contextmanager
def quiet_stderr(what: str, logger: logging.Logger | None = None) -> Iterator[Captured]:
    """Capture what native code writes to fd 2 during the block; yields a `Captured`.

    Each captured line is logged at DEBUG on `logger` (default: this module's) as
    "WHAT: line", after fd 2 is back. Safe when fd 2 is closed or not a real file
    descriptor (the block then simply runs). Swaps the process-wide fd 2: wrap only
    short, synchronous native calls (see the module docstring).
    """
    captured = Captured()
    try:
        with _LOCK:
            swap = _begin()
            try:
                yield captured
            finally:
                if swap is not None:
                    captured.text = _end(*swap)
    finally:
        for line in captured.text.splitlines():
            if line.strip():
                (logger or log).debug("%s: %s", what, line.rstrip())


def essential(text: str) -> str:
    """The reason in native chatter worth one line: the first ALSA error, without its
    source location ("PulseAudio: Unable to connect: Connection refused"); '' when there
    is none. JACK's lines are left out: RtMidi's and PortAudio's own errors already say
    that the JACK server is not running."""
    for line in text.splitlines():
        m = _ALSA.match(line.strip())
        if m:
            return m.group(1)
    return ""


def explain(exc: BaseException, captured: Captured | str | None = None) -> str:
    """`exc` as one line, with the essential reason from `captured` (see `essential`)
    added in parentheses when the message does not already say it."""
    message = error_line(exc)
    text = captured.text if isinstance(captured, Captured) else (captured or "")
    reason = essential(text)
    if reason and reason.lower() not in message.lower():
        message = f"{message} ({reason})"
    return message


# -- the swap ------------------------------------------------------------------------------


def _begin():
    """Point fd 2 at a temporary file: (file, saved fd 2, moved handlers, their stream),
    or None when fd 2 cannot be captured."""
    try:
        os.fstat(2)
    except (OSError, ValueError):
        return None  # fd 2 is closed: nothing written there could show anyway
    _flush_python()  # Python's pending text belongs to the real stderr
    sink, saved = None, None
    try:
        sink = tempfile.TemporaryFile()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
    except OSError as exc:
        if saved is not None:
            os.close(saved)
        if sink is not None:
            sink.close()
        log.debug("cannot capture native stderr: %s", exc)
        return None
    moved, tee = _move_handlers(saved)
    return sink, saved, moved, tee


def _end(sink, saved: int, moved: list, tee) -> str:
    """Put fd 2 back and return what was captured."""
    _flush_python()  # what the block printed itself goes with the capture
    try:
        os.dup2(saved, 2)
    finally:
        for handler, old in moved:  # fd 2 is real again before they write to it
            if handler.stream is tee:
                handler.setStream(old)
        if tee is not None:
            with contextlib.suppress(Exception):
                tee.close()  # closefd=False: `saved` stays open until here
        os.close(saved)
    try:
        size = os.fstat(sink.fileno()).st_size
        sink.seek(0)
        data = sink.read(MAX_BYTES)
    except OSError as exc:
        return f"(cannot read the captured output: {exc})"
    finally:
        sink.close()
    text = data.decode(errors="replace")
    if size > len(data):
        text += f"\n({size - len(data)} more bytes not shown)"
    return text


def _flush_python() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None:  # None under pythonw
            with contextlib.suppress(Exception):
                stream.flush()


def _move_handlers(fd: int) -> tuple[list, object]:
    """Point logging handlers that write to fd 2 at `fd` (the real stderr) for now."""
    loggers = [logging.getLogger()] + [
        lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
    ]
    moved, tee = [], None
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not isinstance(handler, logging.StreamHandler):
            continue
        try:
            if handler.stream.fileno() != 2:
                continue
            if tee is None:
                tee = open(
                    fd,
                    "w",
                    buffering=1,
                    closefd=False,
                    errors="backslashreplace",
                    encoding=getattr(handler.stream, "encoding", None) or "utf-8",
                )
            moved.append((handler, handler.setStream(tee)))
        except Exception:  # noqa: BLE001 - no fileno (StringIO, pytest's capture): leave it
            continue
    return moved, tee
