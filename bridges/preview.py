"""``preview``: a Qt window showing the live frames.

The window runs on the process's main thread (Qt requires it): the daemon's main thread
calls :meth:`OutputRunner.run_here`, which opens the window and runs a Qt event loop in
which a timer polls the runner's mailbox. The window is a :mod:`synd.frameview`
FrameView (frames scaled to fit, black bars) with keys and full screen.

Keys: F or a double click toggles full screen, Esc leaves it, Q or closing the window
asks the daemon to quit (the ``on_quit`` hook) and ends the preview.

PyQt6 is imported only when a window opens, so listing outputs stays cheap.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from synd.bridges.base import Frame, Output
from synd.bridges.registry import OUTPUTS
from synd.frameview import frame_view_class, guarded

__all__ = ["PreviewOutput", "display_problem"]

# Qt platforms that need no window system.
_HEADLESS = {"offscreen", "minimal", "minimalegl", "eglfs", "linuxfb", "vnc", "vkkhrdisplay"}


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a Qt window cannot open here (one line), or None when it can.

    macOS and Windows always have a display. Elsewhere Qt needs an X server (DISPLAY)
    or a Wayland compositor (WAYLAND_DISPLAY), unless QT_QPA_PLATFORM names a platform
    without one (offscreen, eglfs, linuxfb, vnc, ...). For X the display must be
    reachable and Qt's xcb plugin loadable: otherwise Qt would abort the whole process.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if plat.startswith(("darwin", "win", "cygwin")):
        return None
    wanted = [p.split(":")[0].strip().lower() for p in env.get("QT_QPA_PLATFORM", "").split(";")]
    wanted = [p for p in wanted if p]
    if any(p in _HEADLESS for p in wanted):
        return None
    if not wanted:
        wanted = ["wayland", "xcb"]
    if any(p.startswith("wayland") for p in wanted) and env.get("WAYLAND_DISPLAY"):
        return None
    if "xcb" in wanted and env.get("DISPLAY"):
        return _xcb_problem(env["DISPLAY"])
    return "no display (DISPLAY and WAYLAND_DISPLAY are unset; QT_QPA_PLATFORM=offscreen runs without one)"


def _xcb_problem(display: str) -> str | None:
    spec = importlib.util.find_spec("PyQt6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        plugin = Path(folder, "Qt6", "plugins", "platforms", "libqxcb.so")
        if plugin.exists():
            try:
                ctypes.CDLL(str(plugin))
            except OSError as exc:
                missing = str(exc).split(":")[0].strip()
                return f"Qt's X11 plugin cannot load: {missing} is missing (a system library)"
            break
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return None  # an unusual DISPLAY form: let Qt try it
    try:
        if host in ("", "unix"):
            path = f"/tmp/.X11-unix/X{number}"
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                try:
                    sock.connect("\0" + path)  # Linux abstract socket, if the server has one
                except OSError:
                    sock.connect(path)
        elif not host.startswith("/"):
            socket.create_connection((host, 6000 + int(number)), timeout=1.0).close()
    except OSError:
        return f"cannot reach the X display {display!r} (no X server there)"
    return None


class PreviewOutput(Output):
    """A window titled "synd" showing the frames, scaled to the window with the aspect kept.

    Options:
        mode: "window" (default) or "fullscreen" (the spec's ``preview:fullscreen``).
        on_quit: called (once, on the main thread) when the user presses Q or closes the
            window; the daemon should then shut down. Can also be set as an attribute.
        title: window title.

    ``size`` is the window's initial size; frames are scaled to whatever size it has.
    """

    name = "preview"
    needs_main_thread = True
    default_size = (960, 540)
    argument = "mode"

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        fps: float = 30.0,
        *,
        mode: str = "window",
        on_quit: Callable[[], Any] | None = None,
        title: str = "synd",
        **options: Any,
    ) -> None:
        super().__init__(size, fps, **options)
        self.check_options({"mode": mode})
        self.fullscreen = (mode or "window").lower() == "fullscreen"
        self.on_quit = on_quit
        self.title = title
        self.window: Any = None  # the QWidget while open
        self._app: Any = None
        self._loop: Any = None
        self._closing = False
        self._quit_asked = False
        self._error: BaseException | None = None

    @classmethod
    def available(cls) -> str | None:
        return OUTPUTS["preview"].check() or display_problem()

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        mode = (options.get("mode") or "window").lower()
        if mode not in ("window", "fullscreen"):
            raise ValueError(f"preview mode must be 'window' or 'fullscreen', got {mode!r}")

    def open(self) -> None:
        from PyQt6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is None:
            app = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "synd"])
            app.setApplicationName("synd")
        self._app = app  # keep the application alive as long as the window
        window = _window_class()(self)
        window.resize(*self.size)
        if self.fullscreen:
            window.showFullScreen()
        else:
            window.show()
        self.window = window

    def send(self, frame: Frame) -> None:
        if self.window is not None:
            self.window.show_frame(frame.rgb)

    def serve(self, pump: Callable[[], bool]) -> None:
        from PyQt6.QtCore import QEventLoop, Qt, QTimer

        loop = QEventLoop()
        self._loop = loop

        def tick() -> None:
            try:
                if not pump() or self.window is None or self._quit_asked:
                    loop.quit()
            except BaseException as exc:  # noqa: BLE001 - whatever it is, PyQt must not see it (it aborts)
                self._fail_in_qt(exc)

        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        # Twice per frame: a frame waits at most half a period for the window. The runner
        # still sends no more than fps frames a second.
        timer.setInterval(max(1, int(500 / self.fps)))
        timer.timeout.connect(tick)
        # Ctrl-C: Python's default handler raises KeyboardInterrupt wherever Python code
        # runs next, which here is inside a Qt callback (even before its first line, out
        # of reach of any try), and PyQt aborts the process on that. While the loop runs
        # the signal only ends the loop; KeyboardInterrupt is raised after it, out here.
        # A handler the daemon installed itself is left alone (it must not raise).
        interrupted: list[int] = []
        previous = None
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):

            def on_sigint(signum: int, _frame: Any) -> None:
                interrupted.append(signum)
                loop.quit()

            previous = signal.signal(signal.SIGINT, on_sigint)
        timer.start()
        try:
            if not self._quit_asked:
                loop.exec()
        finally:
            timer.stop()
            self._loop = None
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if interrupted:
            raise KeyboardInterrupt

    def close(self) -> None:
        window, self.window = self.window, None
        if window is not None:
            self._closing = True
            window.close()  # the widget is deleted with its last Python reference
            if self._app is not None:
                self._app.processEvents()

    # -- called by the window --------------------------------------------------------------

    def request_quit(self) -> None:
        """The user asked to quit (Q, window closed): tell the daemon, end the preview."""
        if self._quit_asked:
            return
        self._quit_asked = True
        if self._loop is not None:
            self._loop.quit()
        if self.on_quit is not None:
            self.on_quit()

    def _fail_in_qt(self, exc: BaseException) -> None:
        """Keep an exception raised inside a Qt callback (PyQt would abort the process)
        and leave the event loop; serve() raises it."""
        if self._error is None:
            self._error = exc
        if self._loop is not None:
            self._loop.quit()


_CLASSES: dict[str, Any] = {}


def _window_class() -> Any:
    """The preview window's QWidget subclass (a FrameView with keys and full screen)."""
    _define_classes()
    return _CLASSES["PreviewWindow"]


def _define_classes() -> None:
    if _CLASSES:
        return

    from PyQt6.QtCore import Qt

    FrameView: type[Any] = frame_view_class()  # made at run time: a class mypy cannot see

    class PreviewWindow(FrameView):
        def __init__(self, owner: PreviewOutput) -> None:
            super().__init__()
            self.owner = owner
            self.setWindowTitle(owner.title)
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        def failed(self, exc: BaseException) -> None:
            self.owner._fail_in_qt(exc)

        def toggle_fullscreen(self) -> None:
            if self.isFullScreen():
                self.leave_fullscreen()
            else:
                self.setCursor(Qt.CursorShape.BlankCursor)
                self.showFullScreen()

        def leave_fullscreen(self) -> None:
            if self.isFullScreen():
                self.unsetCursor()
                self.showNormal()

        @guarded
        def keyPressEvent(self, event: Any) -> None:
            key = event.key()
            if key == Qt.Key.Key_F:
                self.toggle_fullscreen()
            elif key == Qt.Key.Key_Escape:
                self.leave_fullscreen()
            elif key == Qt.Key.Key_Q:
                self.owner.request_quit()
            else:
                super().keyPressEvent(event)

        @guarded
        def mouseDoubleClickEvent(self, event: Any) -> None:
            self.toggle_fullscreen()

        @guarded
        def closeEvent(self, event: Any) -> None:
            event.accept()
            if not self.owner._closing:
                self.owner.request_quit()

    _CLASSES.update(PreviewWindow=PreviewWindow)
