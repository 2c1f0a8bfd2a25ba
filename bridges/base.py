"""The output-bridge contract: frames, outputs, the runner that feeds each output, and
the registry behind ``--output``.

The engine publishes every :class:`Frame` to one :class:`OutputRunner` per output with
:meth:`OutputRunner.offer`, which never blocks. Each runner owns a mailbox holding the
newest frame and feeds its :class:`Output` on the output's own thread (or on the main
thread, for Qt), at most at the output's own frame rate. A slow or broken output loses
frames or is disabled; the engine never waits for it, not even for an output whose
``send`` never returns.

Output specs (``--output``)::

    SPEC   := OUTPUT ("," OUTPUT)*
    OUTPUT := NAME ("@" WIDTH "x" HEIGHT)? ("@" FPS)? (":" ARGUMENT)?

    preview                       a window at its default size, at the engine's fps
    preview@640x360@15            a 640x360 window refreshed 15 times a second
    preview:fullscreen            start full screen
    record:set.mp4                record to set.mp4 (1280x720 at the engine's fps)
    record@1920x1080@30:set.mkv   size and rate of the recording

The ``@`` parts may come in either order (a size contains an ``x``, a rate does not);
everything after the first ``:`` is the argument (record's file name, which therefore
cannot contain a comma). ``parse_outputs`` checks names, sizes, rates and availability
and raises :class:`OutputSpecError` with a one-line message.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib
import logging
import math
import re
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from synd.bridges.registry import OUTPUTS, OutputEntry
from synd.errors import error_line
from synd.priority import yield_to_engine

__all__ = [
    "Frame",
    "Output",
    "OutputRunner",
    "OutputSpecError",
    "OUTPUTS",
    "create_output",
    "output_class",
    "output_status",
    "parse_outputs",
    "register_output",
]

log = logging.getLogger("synd.bridges")

_NO_AUDIO = np.zeros(0, np.float32)
_NO_AUDIO.flags.writeable = False


@dataclass(frozen=True)
class Frame:
    """One painted frame as the engine publishes it to every output.

    Attributes:
        seq: engine frame number (0, 1, 2, ... at the engine's fps; a gap means the engine
            skipped frames).
        audio_time: seconds of audio since the input started, up to the newest sample
            this frame shows.
        captured_at: ``time.monotonic()`` when that newest sample was captured.
        rgb: (height, width, 3) uint8 RGB at the generation size (e.g. 384x216); each
            output scales it to its own size.
        audio: float32 mono samples consumed since the previous frame (may be empty).
            Outputs fed by an :class:`OutputRunner` receive the audio of every frame the
            mailbox dropped in front of it, so the audio stays gapless.
        sample_rate: rate of ``audio`` in Hz.
    """

    seq: int
    audio_time: float
    captured_at: float
    rgb: np.ndarray
    audio: np.ndarray = field(default_factory=lambda: _NO_AUDIO)
    sample_rate: int = 48000


class Output(ABC):
    """One output (window, file, NDI sender, ...). Subclasses set ``name`` and implement
    :meth:`open`, :meth:`send` and :meth:`close`.

    An :class:`OutputRunner` calls ``open()`` once, then ``send(frame)`` for frames at
    most at ``fps``, then ``close()`` exactly once, even when ``open`` or ``send``
    raised. All three run on the same thread. ``send`` gets the engine's small RGB frame
    and scales it itself (use :class:`synd.video.FrameScaler`).

    Class attributes:
        name: the name used in ``--output``.
        needs_main_thread: the output must run on the process's main thread (Qt); its
            runner is driven with :meth:`OutputRunner.run_here` there.
        default_size: (width, height) when the spec gives none.
        argument: the option that ``name:ARGUMENT`` fills (record: "path"), or None.
        max_failures: failed ``send`` calls in a row after which the output is disabled.
            1 (the default): the first failure disables it, for outputs whose failures
            are final (a full disk, a closed device). An output whose sends can fail for
            a moment (a network hiccup) raises it: the failed frames are lost, the next
            ones are tried, and the failures are logged in one line every
            ``FAILURE_LOG_EVERY_S`` with a running count.
    """

    name: ClassVar[str] = ""
    needs_main_thread: ClassVar[bool] = False
    default_size: ClassVar[tuple[int, int]] = (1280, 720)
    argument: ClassVar[str | None] = None
    max_failures: ClassVar[int] = 1

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        fps: float = 30.0,
        *,
        engine_fps: float | None = None,
        **options: Any,
    ) -> None:
        """
        Args:
            size: (width, height) of this output; None for ``default_size``.
            fps: this output's frame rate (frames beyond it are skipped by the runner).
            engine_fps: the rate at which the engine numbers frames (``Frame.seq``);
                defaults to ``fps``.
            options: output-specific options (subclasses take theirs before calling
                this); anything left over is an error.
        """
        if options:
            raise TypeError(f"output {self.name!r} has no option(s) {', '.join(sorted(options))}")
        w, h = size if size is not None else self.default_size
        if int(w) != w or int(h) != h or w <= 0 or h <= 0:
            raise ValueError(f"output size must be positive integers, got {w}x{h}")
        self.size: tuple[int, int] = (int(w), int(h))
        self.fps = _positive_fps(fps)
        self.engine_fps = _positive_fps(engine_fps) if engine_fps is not None else self.fps
        self._scalers: dict[str, Any] = {}

    def pixels(self, frame: Frame, pix_fmt: str = "bgra") -> np.ndarray:
        """The frame scaled to this output's size as a (height, width, channels) uint8
        array in a packed ``pix_fmt`` ("bgra", "rgba", "rgb24" or "bgr24"; alpha 255).

        The one conversion every sender uses (:class:`synd.video.FrameScaler`, one kept
        per format). Each call returns a new array, so a sender may keep the previous
        one alive while the library still reads it (NDI's asynchronous send does).
        """
        scaler = self._scalers.get(pix_fmt)
        if scaler is None:
            from synd.video import FrameScaler

            scaler = self._scalers[pix_fmt] = FrameScaler(*self.size, pix_fmt)
        return scaler.array(frame.rgb)

    @classmethod
    def available(cls) -> str | None:
        """None when this output can be used here, else a one-line reason why not."""
        entry = OUTPUTS.get(cls.name)
        return entry.check() if entry is not None else None

    @classmethod  # noqa: B027 - an optional hook, not abstract: by default every option is fine
    def check_options(cls, options: dict[str, Any]) -> None:
        """Validate parsed spec options early (before anything opens); raise ValueError."""

    @abstractmethod
    def open(self) -> None:
        """Acquire the resource (window, file, sender). Raise with a clear message on failure."""

    @abstractmethod
    def send(self, frame: Frame) -> None:
        """Show/write/send one frame."""

    @abstractmethod
    def close(self) -> None:
        """Release everything; called exactly once, also after a failed open()."""

    def serve(self, pump: Callable[[], bool]) -> None:
        """Optional: run this output's own event loop (Qt) instead of the runner's loop.

        Call ``pump()`` about every ``1 / fps`` seconds on this thread; it sends the
        mailbox's frame (through :meth:`send`) when one is due and returns False when
        the output must stop. Return when it returned False or the user ended the
        output. Outputs that do not override this are driven by the runner.
        """
        raise NotImplementedError


#: While an output with ``max_failures > 1`` keeps failing, one log line this often.
FAILURE_LOG_EVERY_S = 10.0
#: At interpreter exit, how long a runner still inside ``send`` (or ``open``) after it was
#: asked to stop gets before it is left behind (a hung output must not hold up the exit).
EXIT_SEND_GRACE_S = 1.0


def _positive_fps(fps: Any) -> float:
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return value


class OutputRunner:
    """Feeds one :class:`Output` from a latest-frame mailbox, on its own thread.

    :meth:`offer` never blocks: when the output has not taken the previous frame yet,
    that frame is replaced by the new one (counted as ``dropped`` when the output was
    busy sending, ``skipped`` when it was waiting for its next slot at its fps), and the
    replaced frame's audio is put in front of the new frame's audio.

    The output is opened once, fed at most ``output.fps`` frames a second, and closed
    exactly once, whatever happens. If ``open`` raises, or ``send`` raises
    ``output.max_failures`` times in a row (once, by default), one line
    ``output NAME failed: REASON; disabled`` is logged, ``failed`` holds the reason, the
    output is closed and no further frames are taken; the engine never sees the error.
    Failures it still retries are counted in ``failures`` and logged at most once every
    ``FAILURE_LOG_EVERY_S``. A ``send`` that never returns costs that output its frames
    (counted as ``dropped``), never the engine's; :meth:`stop` then gives up after its
    timeout and leaves the output behind on its daemon thread.

    Threaded outputs: :meth:`start`, then :meth:`stop`. Main-thread outputs (Qt):
    the main thread calls :meth:`run_here`, which returns after :meth:`stop` (from any
    thread) or when the output ends itself (window closed).
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self.name = output.name or type(output).__name__
        self._period = 1.0 / output.fps
        self._cv = threading.Condition()
        self._pending: Frame | None = None
        self._carried: list[np.ndarray] = []  # audio of frames replaced in the mailbox
        self._busy = False  # the output is in open() or send()
        self._stopping = False
        self._due = -math.inf  # next slot on the output's frame grid
        self._thread: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None  # the thread running the loop
        self._opened = threading.Event()  # open() returned (or failed), or never will
        self._finished = threading.Event()
        self._started = False  # start() or run_here() was called
        #: False pauses the output (a control command): frames are not taken meanwhile.
        self.enabled = True
        self.offered = 0
        self.sent = 0
        self.dropped = 0
        self.skipped = 0
        self.failed: str | None = None
        self.failures = 0  # failed sends, all told
        self._streak = 0  # failed sends in a row
        self._reported_at = -math.inf  # when the last retried failure was logged
        self._send_times: deque[float] = deque(maxlen=max(8, int(output.fps * 2) + 1))

    # -- engine side -----------------------------------------------------------------------

    def offer(self, frame: Frame) -> bool:
        """Hand over the newest frame; never blocks. False when the output no longer
        takes frames (failed or stopped)."""
        with self._cv:
            if self._stopping or self.failed is not None:
                return False
            if not self.enabled:
                return True
            self.offered += 1
            old = self._pending
            if old is not None:
                if self._busy:
                    self.dropped += 1
                else:
                    self.skipped += 1
                if old.audio.size:
                    self._carried.append(old.audio)
            self._pending = frame
            self._cv.notify_all()
        return True

    # -- control ---------------------------------------------------------------------------

    def start(self) -> OutputRunner:
        """Run the output on a new (daemon) thread; returns self. After :meth:`stop`
        it does nothing."""
        if self.output.needs_main_thread:
            raise RuntimeError(f"output {self.name} must run on the main thread: use run_here()")
        if self._claim():
            self._thread = threading.Thread(target=self._loop, name=f"synd-output-{self.name}", daemon=True)
            _running.add(self)
            self._thread.start()
        return self

    def run_here(self) -> None:
        """Run the output on the calling thread (the main thread for Qt) until
        :meth:`stop` is called (from any thread) or the output ends itself; returns at
        once if it was stopped already. KeyboardInterrupt/SystemExit close the output
        and propagate."""
        if self._claim():
            self._loop()

    def _claim(self) -> bool:
        with self._cv:
            if self._started:
                raise RuntimeError(f"output {self.name} runner was already started")
            if self._stopping:  # stopped before it began: it never runs
                return False
            self._started = True
            return True

    def wait_open(self, timeout: float | None = None) -> bool:
        """Wait until ``open()`` has returned; True if the output is open and working."""
        self._opened.wait(timeout)
        return self._opened.is_set() and self.failed is None and not self._finished.is_set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the last offered frame was sent (or the output ended). For
        callers that must not lose frames (offline renders, tests); the live engine
        never calls it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._pending is not None or self._busy:
                if self._stopping or self.failed is not None or self._finished.is_set():
                    break
                if not self._started:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking frames, let the output finish the frame it is sending, close it.

        Returns True once the output is closed (False if it is still busy after
        ``timeout`` s: a hung output is then left behind on its daemon thread). Called
        on the thread running the loop (e.g. from a Qt callback) it only asks, and
        returns False.
        """
        with self._cv:
            self._stopping = True
            self._pending = None
            self._carried = []
            self._cv.notify_all()
            started = self._started
        if not started:
            self._opened.set()
            self._finished.set()
            return True
        if threading.current_thread() is self._loop_thread:
            return False
        if self._finished.wait(timeout):
            return True
        if timeout > 0 and self._busy:
            log.warning(
                "output %s did not stop within %.1f s (stuck in open() or send()); left behind",
                self.name,
                timeout,
            )
        elif timeout > 0:  # a recording still finishing its file: the exit waits for it
            log.info("output %s is still closing after %.1f s", self.name, timeout)
        return False

    def _left_send(self, timeout: float) -> bool:
        """After a stop request: wait up to `timeout` s for the output to leave open() or
        send(); False when it is still inside (hung)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._busy and not self._finished.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    @property
    def running(self) -> bool:
        """Started and not yet finished."""
        return self._started and not self._finished.is_set()

    def stats(self) -> dict[str, Any]:
        """name, offered, sent, dropped (output too slow), skipped (beyond its fps),
        failed (reason or None), failures (failed sends), pending (frames in the
        mailbox: 0 or 1), running, and fps (measured over the last ~2 s)."""
        with self._cv:
            times = list(self._send_times)
            stats = {
                "name": self.name,
                "offered": self.offered,
                "sent": self.sent,
                "dropped": self.dropped,
                "skipped": self.skipped,
                "failed": self.failed,
                "failures": self.failures,
                "pending": int(self._pending is not None),
                "running": self.running,
            }
        recent = [t for t in times if t >= time.monotonic() - 2.0]
        fps = 0.0
        if len(recent) >= 2 and recent[-1] > recent[0]:
            fps = (len(recent) - 1) / (recent[-1] - recent[0])
        stats["fps"] = round(fps, 2)
        return stats

    # -- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        self._loop_thread = threading.current_thread()
        if self._thread is not None:  # its own thread, not the main thread (Qt)
            yield_to_engine()
        output = self.output
        with self._cv:
            if self._stopping:  # stopped before it began: never opened, nothing to close
                self._opened.set()
                self._finished.set()
                return
            self._busy = True
        try:
            try:
                output.open()
            except Exception as exc:  # noqa: BLE001 - any failure to open disables this output only
                self._fail(exc)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
                self._opened.set()
            if self.failed is None:
                if type(output).serve is not Output.serve:
                    output.serve(self._pump)
                else:
                    while (frame := self._take(block=True)) is not None:
                        if not self._deliver(frame):
                            break
        except Exception as exc:  # noqa: BLE001 - from serve() itself: disables this output only
            self._fail(exc)
        finally:
            with self._cv:
                self._stopping = True  # the output takes no more frames
                self._pending = None
                self._carried = []
            try:
                output.close()
            except Exception as exc:  # noqa: BLE001 - a failing close() is reported, not raised
                if self.failed is None:
                    self.failed = error_line(exc)
                    log.error("output %s failed: %s", self.name, self.failed)
                else:
                    log.debug("output %s: close() after failure raised: %s", self.name, exc)
            finally:
                self._opened.set()
                self._finished.set()
                with self._cv:
                    self._cv.notify_all()

    def _take(self, block: bool) -> Frame | None:
        """The mailbox's frame once it is due on the output's frame grid, else None
        (non-blocking: nothing due yet; blocking: only when stopping)."""
        with self._cv:
            while True:
                if self._stopping or self.failed is not None:
                    return None
                if self._pending is None:
                    if not block:
                        return None
                    self._cv.wait()
                    continue
                now = time.monotonic()
                # Half a period of tolerance: an engine at the same rate with some jitter
                # loses no frames, yet in the long run no more than fps frames go out.
                wait = self._due - self._period / 2 - now
                if wait > 0:
                    if not block:
                        return None
                    self._cv.wait(wait)
                    continue
                frame, carried = self._pending, self._carried
                self._pending, self._carried = None, []
                self._busy = True
                self._due = max(self._due, now) + self._period
                break
        if carried:
            audio = np.concatenate([*carried, frame.audio]).astype(np.float32, copy=False)
            return dataclasses.replace(frame, audio=audio)
        return frame

    def _deliver(self, frame: Frame) -> bool:
        """Send one taken frame; False when the output is disabled (send() raised
        ``max_failures`` times in a row)."""
        error: Exception | None = None
        try:
            self.output.send(frame)
        except Exception as exc:  # noqa: BLE001 - counted, retried, disabled after max_failures
            error = exc
        finally:
            with self._cv:
                self._busy = False
                if error is None:
                    self.sent += 1
                    self._send_times.append(time.monotonic())
                self._cv.notify_all()
        if error is None:
            self._streak = 0
            return True
        return self._send_failed(error)

    def _send_failed(self, exc: Exception) -> bool:
        """Count a failed send; True while the output is still retried."""
        self.failures += 1
        self._streak += 1
        limit = max(1, int(self.output.max_failures))
        if self._streak >= limit:
            self._fail(exc, f" ({self._streak} failed sends in a row)" if limit > 1 else "")
            return False
        now = time.monotonic()
        if now - self._reported_at >= FAILURE_LOG_EVERY_S:
            self._reported_at = now
            log.warning(
                "output %s: send failed: %s (%d failed so far); retrying, disabled "
                "after %d failures in a row",
                self.name,
                error_line(exc),
                self.failures,
                limit,
            )
        return True

    def _pump(self) -> bool:
        """One step for outputs with their own event loop: send a due frame if any;
        False when the output must stop."""
        frame = self._take(block=False)
        if frame is not None and not self._deliver(frame):
            return False
        with self._cv:
            return not self._stopping and self.failed is None

    def _fail(self, exc: BaseException, detail: str = "") -> None:
        reason = error_line(exc)
        with self._cv:
            if self.failed is not None:
                return
            # Logged before anyone can see `failed`: whoever reacts to it finds the line.
            log.error("output %s failed: %s%s; disabled", self.name, reason, detail)
            self.failed = reason
            self._pending = None
            self._carried = []
            self._cv.notify_all()


# Threaded runners still running. They are daemon threads (a hung output must not keep the
# process alive), so at interpreter exit, e.g. after an uncaught KeyboardInterrupt in a
# daemon that forgot to stop them, they are stopped here: a recording is then finished
# and renamed into place instead of being lost with its thread. An output still inside
# send() or open() a moment after the stop request is hung and left behind.
_running: weakref.WeakSet[OutputRunner] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for runner in list(_running):
        with runner._cv:
            asked_before = runner._stopping
        runner.stop(timeout=0)
        if runner._left_send(EXIT_SEND_GRACE_S):
            runner.stop(timeout=10.0)
        elif not asked_before:
            log.warning("output %s is stuck in open() or send() at exit; left behind", runner.name)


# -- registry and --output specs ---------------------------------------------------------------

#: Output name -> "module:Class", imported only when used (Qt is heavy).
_loaded: dict[str, type[Output]] = {}


class OutputSpecError(ValueError):
    """A bad ``--output`` spec; the message is one line."""


def register_output(cls: type[Output]) -> type[Output]:
    """Add (or replace) an output class under ``cls.name``; usable as a decorator."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _loaded[cls.name] = cls
    known = OUTPUTS.get(cls.name)
    OUTPUTS[cls.name] = OutputEntry(
        f"{cls.__module__}:{cls.__qualname__}", *((known.check,) if known is not None else ())
    )
    return cls


def output_class(name: str) -> type[Output]:
    """The class of output ``name`` (imported on first use). KeyError if unknown."""
    if name not in _loaded:
        module, _, attr = OUTPUTS[name].target.partition(":")
        _loaded[name] = getattr(importlib.import_module(module), attr)
    return _loaded[name]


def output_status() -> dict[str, str | None]:
    """Every known output name -> None when usable here, else the reason why not."""
    status: dict[str, str | None] = {}
    for name in sorted(OUTPUTS):
        try:
            status[name] = output_class(name).available()
        except Exception as exc:  # noqa: BLE001 - a broken optional module must not break the list
            status[name] = f"cannot load: {error_line(exc)}"
    return status


def _summary(status: dict[str, str | None], skip: str = "") -> str:
    ok = [n for n, why in status.items() if why is None]
    bad = [f"{n} ({why})" for n, why in status.items() if why is not None and n != skip]
    text = f"available: {', '.join(ok) or 'none'}"
    if bad:
        text += f"; unavailable: {', '.join(bad)}"
    return text


_SIZE = re.compile(r"^(\d+)x(\d+)$")
_FPS = re.compile(r"^\d+(\.\d+)?$")


def parse_outputs(spec: str, check_available: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """Parse ``--output`` (see the module docstring) into [(name, options)].

    options may hold "size" ((width, height)), "fps" (float) and the output's argument
    (record: "path"). Raises OutputSpecError (one line) for an unknown name, a malformed
    part, or (with ``check_available``) an output that cannot run here.
    """
    items = [part.strip() for part in spec.split(",")]
    if not spec.strip() or any(not part for part in items):
        raise OutputSpecError(f"empty output in --output {spec!r} (e.g. preview,record:set.mp4)")
    result: list[tuple[str, dict[str, Any]]] = []
    status: dict[str, str | None] | None = None
    main_thread: list[str] = []
    for item in items:
        head, colon, arg = item.partition(":")
        name, *extras = head.split("@")
        name = name.strip().lower()
        if name not in OUTPUTS:
            status = status or output_status()
            raise OutputSpecError(f"unknown output {name!r} in --output ({_summary(status)})")
        options: dict[str, Any] = {}
        for extra in extras:
            extra = extra.strip().lower()
            if (m := _SIZE.match(extra)) and "size" not in options:
                options["size"] = (int(m.group(1)), int(m.group(2)))
            elif _FPS.match(extra) and "fps" not in options:
                options["fps"] = float(extra)
            else:
                raise OutputSpecError(
                    f"bad part {extra!r} in output {item!r} "
                    f"(use NAME@WIDTHxHEIGHT@FPS, e.g. preview@640x360@30)"
                )
        if options.get("size", (1, 1))[0] <= 0 or options.get("size", (1, 1))[1] <= 0:
            raise OutputSpecError(f"size in output {item!r} must be positive")
        if options.get("fps", 1.0) <= 0:
            raise OutputSpecError(f"fps in output {item!r} must be positive")
        try:
            cls = output_class(name)
        except Exception as exc:
            raise OutputSpecError(f"output {name!r} cannot be loaded: {error_line(exc)}") from exc
        if colon:
            if cls.argument is None:
                raise OutputSpecError(f"output {name!r} takes no ':' argument (in {item!r})")
            options[cls.argument] = arg.strip()
        try:
            cls.check_options(options)
        except ValueError as exc:
            raise OutputSpecError(f"output {item!r}: {error_line(exc)}") from exc
        if check_available:
            reason = cls.available()
            if reason is not None:
                status = status or output_status()
                raise OutputSpecError(
                    f"output {name!r} is not available: {reason} ({_summary(status, skip=name)})"
                )
        if cls.needs_main_thread:
            main_thread.append(name)
            if len(main_thread) > 1:
                raise OutputSpecError(
                    f"only one main-thread output can run at a time, got {', '.join(main_thread)}"
                )
        if any(n == name and o == options for n, o in result):
            raise OutputSpecError(f"output {item!r} is given twice")
        result.append((name, options))
    return result


def create_output(name: str, options: dict[str, Any], engine_fps: float) -> Output:
    """Build output ``name`` from parsed options; its fps defaults to the engine's."""
    opts = dict(options)
    fps = opts.pop("fps", None) or engine_fps
    return output_class(name)(size=opts.pop("size", None), fps=fps, engine_fps=engine_fps, **opts)
