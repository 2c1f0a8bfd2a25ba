"""Real X11 for tests: a private Xvfb server, a trayer system tray and Qt apps on them.

Usage, as pytest fixtures (tests/conftest.py loads this module through `pytest_plugins`,
so a test only names them)::

    def test_tray_menu(xvfb, trayer, qt_app):
        app = qt_app(APP_CODE)                       # sys.executable -u -c APP_CODE on xcb
        line = app.wait_for("GEOMETRY")              # "GEOMETRY 1257 1 22 30"
        x, y, w, h = map(int, line.split()[1:])
        xvfb.click(x + w // 2, y + h // 2, button=3)
        app.wait_for("MENU SHOWN")
        xvfb.key("Down", "Down", "Return")
        assert app.wait_for("ACTION") == "ACTION 2"

or without pytest: ``with xvfb_server() as x, trayer_running(x) as tray: ...``. The
`trayer` and `qt_app` fixtures use the module's shared `xvfb`; on a `fresh_xvfb` use
``trayer_running(fresh_xvfb)`` and ``run_qt(fresh_xvfb, code)``.

Why subprocesses: Qt's platform plugin is fixed per process, and the test process may
run Qt on ``offscreen`` (where ``QSystemTrayIcon.isSystemTrayAvailable()`` is False), so
every xcb app runs as its own ``python -c`` with ``X.env`` (DISPLAY, QT_QPA_PLATFORM=xcb).

The display has no window manager: trayer does not need one, Qt's popup menus grab the
pointer and keyboard themselves, so ``xdotool key`` (no ``--window``) reaches an open
menu. Without a window manager nothing gives a top-level window the input focus, though:
call ``X.activate(window)`` (``xdotool windowfocus``) before typing into a normal window.

Found by experiment (Qt 6.11, trayer 1.1.8, Xvfb 21.1):

* ``QSystemTrayIcon.geometry()`` is non-empty but bogus, (0, 0, 22, 22), right after
  ``show()``; the docked geometry (trayer's 22x30 slot, e.g. (1257, 1, 22, 30)) comes
  about 10 ms later (~35 ms after QApplication() was created). Wait for a top left corner
  other than (0, 0), not for non-empty. `Tray.icons()` gives the same rectangle from the
  X side.
* The 32x32 pixmap is drawn scaled to 22x22 in that slot.
* Right click (button 3) opens the context menu; left click does not (it only sends
  ``activated(Trigger)``). ``aboutToShow`` comes before the menu window is mapped: wait
  for the window too (``wait_for_window(exclude=before)``) before sending keys.
* Keys: a mouse-opened menu has no active item, so "Down Down Return" triggers item 2.
  Clicking an item's centre works as well: print ``menu.actionGeometry(a)`` mapped with
  ``menu.mapToGlobal`` from a ``QEvent.Show`` event filter (no window manager: widget
  and root coordinates agree), then `X.click_center`.
* Qt hides the menu (``aboutToHide``) before it emits the action's ``triggered``: wait
  for lines in that order (`QtApp.wait_for` consumes lines in order).
* ``xdotool mousemove --sync`` hangs when the pointer is already there; `X.click` does
  not use it. ``xdotool getwindowfocus`` fails (the focus is PointerRoot).

Cleanup: every server and app runs in its own process group, which is killed (TERM, then
KILL) by its fixture, by an ``atexit`` hook if a teardown never ran, and by the kernel
(PR_SET_PDEATHSIG) if the test process itself is killed. Every wait has a time-out.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.wait import wait_until

__all__ = [
    "X",
    "Tray",
    "QtApp",
    "LineReader",
    "start_xvfb",
    "start_trayer",
    "stop_process",
    "tray_geometry",
    "tray_owner",
    "xvfb_server",
    "trayer_running",
    "run_qt",
    "xvfb",
    "fresh_xvfb",
    "trayer",
    "qt_app",
    "XVFB",
    "TRAYER",
]

XVFB = shutil.which("Xvfb")
TRAYER = shutil.which("trayer")
_INSTALL_HINT = (
    "the X test tools are installed by scripts/setup.sh "
    "(Debian: apt install xvfb trayer xdotool imagemagick x11-utils)"
)

# trayer's arguments: a 200x32 panel in the top right corner of the screen
TRAYER_ARGS = (
    "--edge",
    "top",
    "--align",
    "right",
    "--widthtype",
    "pixel",
    "--width",
    "200",
    "--heighttype",
    "pixel",
    "--height",
    "32",
)

Geometry = tuple[int, int, int, int]  # x, y, width, height (root coordinates)


# ------------------------------------------------------------------------- processes

_live: set[subprocess.Popen] = set()  # everything started here and not yet stopped
_PR_SET_PDEATHSIG = 1
try:  # looked up here: the child between fork and exec must not load libraries
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: atexit still cleans up
    _prctl = None


def _child_setup(parent: int) -> None:
    """In the child before exec: die with the test process (no orphaned X servers).

    The signal comes when the *thread* that started the child ends: start servers and
    apps from the test's own thread (pytest's main thread), not from a helper thread.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _spawn(args: Sequence[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Popen in a new process group (killed as a whole by stop_process), tracked for atexit."""
    parent = os.getpid()
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(
        list(args), env=env, process_group=0, preexec_fn=lambda: _child_setup(parent), **kwargs
    )
    _live.add(proc)
    return proc


def stop_process(proc: subprocess.Popen | None, timeout: float = 5.0) -> int | None:
    """Stop `proc` and its process group (TERM, then KILL after `timeout`); its exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout)
    # children that outlived the group leader (the leader exited, the group did not)
    _signal_group(proc, signal.SIGKILL)
    _live.discard(proc)
    return proc.returncode


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # process_group=0: the group id is the leader's pid


@atexit.register
def _stop_all() -> None:
    for proc in list(_live):
        stop_process(proc, timeout=2)


# ------------------------------------------------------------------------ X display


class X:
    """One X display (``":3"``): run X clients on it, find windows, send input, grab pixels.

    `proc` is the Xvfb process when this object started the server (else None).
    """

    def __init__(self, display: str, proc: subprocess.Popen | None = None) -> None:
        self.display = display
        self.proc = proc

    def __repr__(self) -> str:
        return f"X({self.display!r})"

    @property
    def env(self) -> dict[str, str]:
        """A fresh copy of os.environ for a client of this display (Qt on xcb).

        XAUTHORITY is dropped (the server runs without access control). D-Bus is pointed
        at nothing so that Qt always uses the XEmbed tray (trayer) and never a
        StatusNotifier host of the developer's real desktop session (an app that needs
        a bus gets one through ``run_qt(..., env={"DBUS_SESSION_BUS_ADDRESS": ...})``).
        """
        env = dict(os.environ)
        env.pop("XAUTHORITY", None)
        env.pop("WAYLAND_DISPLAY", None)
        env.update(
            DISPLAY=self.display,
            QT_QPA_PLATFORM="xcb",
            DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/synd-test-no-dbus",
        )
        return env

    # -- running clients

    def run(
        self, *args: str | int, timeout: float = 10, check: bool = True, text: bool = True
    ) -> subprocess.CompletedProcess:
        """Run an X client (xdotool, xwininfo, import...) on this display, output captured.

        Raises AssertionError with the client's stderr if it fails and `check` is set.
        """
        cmd = [str(a) for a in args]
        try:
            done = subprocess.run(
                cmd, env=self.env, capture_output=True, text=text, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{' '.join(cmd)} took longer than {timeout:g} s") from exc
        if check and done.returncode:
            err = done.stderr if text else done.stderr.decode(errors="replace")
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}): {err.strip()}")
        return done

    def xdotool(self, *args: str | int, timeout: float = 10) -> str:
        """Run ``xdotool ARGS``; returns its stdout."""
        return self.run("xdotool", *args, timeout=timeout).stdout

    # -- pixels

    def screenshot(self, path: str | os.PathLike, window: str | int = "root") -> Path:
        """Save a picture of `window` (default: the whole screen) with imagemagick; its path."""
        path = Path(path)
        self.run("import", "-silent", "-window", _window_arg(window), str(path), timeout=30)
        return path

    def grab(self, window: str | int = "root") -> np.ndarray:
        """The pixels of `window` (default: the whole screen): an HxWx3 uint8 RGB array.

        Uses imagemagick's binary PPM output (its header carries the size, so no separate
        geometry query can race with a resize).
        """
        out = self.run(
            "import",
            "-silent",
            "-window",
            _window_arg(window),
            "-depth",
            "8",
            "ppm:-",
            timeout=30,
            text=False,
        ).stdout
        return _decode_ppm(out)

    # -- windows

    def windows(self, name: str | None = None, class_: str | None = None, visible: bool = True) -> list[int]:
        """Window ids matching regexes `name` and `class_` (both, if both given).

        With neither, every (visible) window, the root window included. Uses
        ``xdotool search``.
        """
        args = ["search"]
        if visible:
            args.append("--onlyvisible")
        if name is not None and class_ is not None:
            args.append("--all")
        if name is not None:
            args += ["--name", name]
        if class_ is not None:
            args += ["--class", class_]
        if name is None and class_ is None:
            args += ["--name", ""]  # the empty regex matches every window
        done = self.run("xdotool", *args, check=False)
        if done.returncode not in (0, 1):  # 1: nothing found
            raise AssertionError(f"xdotool {' '.join(args)} failed: {done.stderr.strip()}")
        return [int(w) for w in done.stdout.split()]

    def wait_for_window(
        self,
        name: str | None = None,
        class_: str | None = None,
        *,
        visible: bool = True,
        exclude: Sequence[int] = (),
        timeout: float = 10,
    ) -> int:
        """Wait until a window matching `name`/`class_` that is not in `exclude` exists.

        Returns its id (the first found). ``exclude=x.windows()`` waits for a new window.
        """
        skip = set(exclude)

        def found() -> int | None:
            return next((w for w in self.windows(name, class_, visible) if w not in skip), None)

        what = f"a window name={name!r} class={class_!r}{' (visible)' if visible else ''}"
        return wait_until(found, timeout, message=f"{what} on {self.display}")

    def geometry(self, window: int) -> Geometry:
        """(x, y, width, height) of `window`, x and y in root coordinates."""
        shell = self.xdotool("getwindowgeometry", "--shell", window)
        values = dict(line.split("=", 1) for line in shell.split() if "=" in line)
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def children(self, window: int) -> list[tuple[int, Geometry]]:
        """The direct children of `window`: (id, absolute geometry) from ``xwininfo``."""
        out = self.run("xwininfo", "-children", "-id", window).stdout
        # "     0x200026 (has no name): ()  22x30+177+1  +1257+1"
        found = []
        for m in re.finditer(
            r"^\s+(0x[0-9a-f]+) .*?\s(\d+)x(\d+)[+-]-?\d+[+-]-?\d+"
            r"\s+\+(-?\d+)\+(-?\d+)\s*$",
            out,
            re.M,
        ):
            wid, w, h, x, y = m.groups()
            found.append((int(wid, 16), (int(x), int(y), int(w), int(h))))
        return found

    # -- input (XTEST: goes where a real mouse or keyboard would, grabs included)

    def click(self, x: int, y: int, button: int = 1) -> None:
        """Move the pointer to (x, y) and click `button` (1 left, 2 middle, 3 right)."""
        self.xdotool("mousemove", x, y, "click", button)

    def click_center(self, geometry: Geometry, button: int = 1) -> None:
        """Click in the middle of an (x, y, width, height) rectangle."""
        x, y, w, h = geometry
        self.click(x + w // 2, y + h // 2, button)

    def key(self, *keys: str, delay_ms: int = 30) -> None:
        """Press and release `keys` (X keysym names: "Down", "Return", "ctrl+q") in turn.

        Without ``--window``: the keys go to whatever has the keyboard: an open Qt menu
        (it grabs the keyboard) or the window given the focus by `activate`.
        """
        self.xdotool("key", "--delay", delay_ms, *keys)

    def activate(self, window: int) -> None:
        """Give `window` the input focus (there is no window manager to do it)."""
        self.xdotool("windowfocus", "--sync", window)


# a PPM header field: whitespace separated, "#" starts a comment
_PPM_FIELD = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\S+)")


def _window_arg(window: str | int) -> str:
    return hex(window) if isinstance(window, int) else str(window)


def _decode_ppm(data: bytes) -> np.ndarray:
    """A binary PPM (P6, maxval 255) as an HxWx3 uint8 array."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:  # magic, width, height, maxval
        m = _PPM_FIELD.match(data, pos)
        if m is None:
            raise AssertionError(f"not a PPM image: {data[:40]!r}")
        fields.append(m.group(1))
        pos = m.end()
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if magic != b"P6" or maxval != 255:
        raise AssertionError(f"expected an 8-bit P6 PPM, got {magic!r} maxval {maxval}")
    pixels = data[pos + 1 : pos + 1 + width * height * 3]  # one whitespace byte after maxval
    if len(pixels) != width * height * 3:
        raise AssertionError(f"truncated PPM: {len(pixels)} of {width * height * 3} bytes")
    return np.frombuffer(pixels, np.uint8).reshape(height, width, 3).copy()


# ------------------------------------------------------------------------- servers


def start_xvfb(size: tuple[int, int] = (1280, 800), timeout: float = 10) -> tuple[subprocess.Popen, str]:
    """Start Xvfb on the first free display; returns (process, ":N") once it accepts clients.

    ``-displayfd`` makes Xvfb pick the display number itself (no races with other servers)
    and write it to a pipe when it is ready.
    """
    if XVFB is None:
        raise RuntimeError(f"Xvfb is not installed: {_INSTALL_HINT}")
    read_fd, write_fd = os.pipe()
    log = tempfile.TemporaryFile()
    try:
        # -noreset: the server would otherwise reset whenever its last client leaves,
        # between two tests; no -auth: no access control, XAUTHORITY does not matter
        proc = _spawn(
            [
                XVFB,
                "-displayfd",
                str(write_fd),
                "-nolisten",
                "tcp",
                "-noreset",
                "-screen",
                "0",
                f"{size[0]}x{size[1]}x24",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    finally:
        os.close(write_fd)
    with log:
        try:
            number = _read_line(read_fd, timeout)
        except BaseException:
            stop_process(proc)
            raise
        finally:
            os.close(read_fd)
        if not number.isdigit():  # EOF: Xvfb exited (or closed the pipe) without a display
            stop_process(proc)
            log.seek(0)
            raise RuntimeError(
                f"Xvfb did not start (exit code {proc.returncode}): "
                f"{log.read().decode(errors='replace')[-800:]}"
            )
    return proc, f":{number}"


def _read_line(fd: int, timeout: float) -> str:
    """Read up to a newline or EOF from `fd`, waiting at most `timeout` seconds."""
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError(f"Xvfb did not report its display within {timeout:g} s")
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


_TRAY_OWNER = r"""
import ctypes, ctypes.util, sys
x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XGetSelectionOwner.restype = ctypes.c_ulong
x.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
d = x.XOpenDisplay(None)
if not d:
    sys.exit("cannot open display")
print(x.XGetSelectionOwner(d, x.XInternAtom(d, b"_NET_SYSTEM_TRAY_S0", 0)))
"""


def tray_owner(x: X) -> int:
    """The window owning the system tray selection ``_NET_SYSTEM_TRAY_S0``; 0 if none.

    This selection is what Qt's isSystemTrayAvailable() looks at. Asked from a child
    process: Xlib calls exit() on a broken connection, which must not end pytest.
    """
    return int(x.run(sys.executable, "-c", _TRAY_OWNER).stdout)


def tray_geometry(x: X) -> Geometry:
    """(x, y, width, height) of trayer's visible panel window on display `x`."""
    panels = x.windows(class_="^trayer$", visible=True)
    if not panels:
        raise AssertionError(f"no visible trayer window on {x.display}")
    return x.geometry(panels[0])


def start_trayer(
    display: str | X, timeout: float = 10, args: Sequence[str] = TRAYER_ARGS
) -> subprocess.Popen:
    """Start trayer on `display`; returns once its panel is visible and it owns the tray."""
    if TRAYER is None:
        raise RuntimeError(f"trayer is not installed: {_INSTALL_HINT}")
    x = display if isinstance(display, X) else X(display)
    log = tempfile.TemporaryFile()
    proc = _spawn([TRAYER, *args], env=x.env, stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(
                f"trayer exited ({proc.returncode}): {log.read().decode(errors='replace')[-800:]}"
            )
        return bool(x.windows(class_="^trayer$", visible=True)) and tray_owner(x) != 0

    with log:
        try:
            wait_until(ready, timeout, message=f"trayer on {x.display}")
        except BaseException:
            stop_process(proc)
            raise
    return proc


@dataclass
class Tray:
    """A running trayer: its process, its panel window and the icons docked in it."""

    x: X
    proc: subprocess.Popen
    window: int = field(init=False)

    def __post_init__(self) -> None:
        self.window = self.x.windows(class_="^trayer$", visible=True)[0]

    @property
    def geometry(self) -> Geometry:
        """The panel's (x, y, width, height)."""
        return self.x.geometry(self.window)

    def icons(self) -> list[Geometry]:
        """Absolute geometries of the icons docked in the panel, left to right.

        trayer wraps each XEmbed icon in a socket window inside the panel; 1x1 children
        are trayer's own helper windows.
        """
        return sorted(g for _, g in self.x.children(self.window) if g[2] > 1 and g[3] > 1)

    def stop(self) -> None:
        """Stop trayer and wait until the tray selection is free again."""
        stop_process(self.proc)
        with contextlib.suppress(Exception):  # the X server may be gone already
            wait_until(lambda: tray_owner(self.x) == 0, 5, message="the tray selection released")


@contextlib.contextmanager
def xvfb_server(size: tuple[int, int] = (1280, 800)) -> Iterator[X]:
    """A fresh Xvfb for the `with` block; yields its `X`."""
    proc, display = start_xvfb(size)
    try:
        yield X(display, proc)
    finally:
        stop_process(proc)


@contextlib.contextmanager
def trayer_running(x: X) -> Iterator[Tray]:
    """trayer on display `x` for the `with` block; yields the `Tray`."""
    tray = Tray(x, start_trayer(x))
    try:
        yield tray
    finally:
        tray.stop()


# ------------------------------------------------------------------------- Qt apps


class LineReader:
    """The complete lines written so far to a file another process writes (its stdout).

    `wait_for` consumes: each call looks only after the line the previous call returned,
    so waiting twice for "MENU SHOWN" needs the line twice.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lines: list[str] = []
        self._offset = 0
        self._partial = b""
        self._cursor = 0

    def poll(self) -> list[str]:
        """Read what was appended since the last call; returns the new complete lines."""
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset += len(chunk)
            data = self._partial + chunk
            *complete, self._partial = data.split(b"\n")
            new = [ln.decode(errors="replace").rstrip("\r") for ln in complete]
            self.lines += new
            return new
        return []

    def find(self, prefix: str) -> str | None:
        """The next unconsumed line starting with `prefix` (consumed), or None."""
        self.poll()
        for i in range(self._cursor, len(self.lines)):
            if self.lines[i].startswith(prefix):
                self._cursor = i + 1
                return self.lines[i]
        return None

    def wait_for(self, prefix: str, timeout: float = 10, alive: Callable[[], bool] = lambda: True) -> str:
        """Wait for the next line starting with `prefix`; returns it (without newline).

        Fails at once when `alive()` turns False and the line has not come.
        """

        def found() -> str | None:
            running = alive()  # before reading: a line written just before exit counts
            line = self.find(prefix)
            if line is None and not running:
                raise AssertionError(f"the writer of {self.path} ended without printing {prefix!r}")
            return line

        return wait_until(found, timeout, interval=0.02, message=f"a line {prefix!r} in {self.path}")


class QtApp:
    """A Python program (usually a Qt app) running on a display; see `run_qt`.

    stdout and stderr go to files (`stdout_path`, `stderr_path`), readable while it runs.
    A context manager: leaving the block stops it.
    """

    def __init__(
        self,
        x: X,
        code: str,
        *,
        timeout: float = 60,
        args: Sequence[str] = (),
        log_dir: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        name: str = "app",
    ) -> None:
        self.x = x
        self._own_dir = log_dir is None  # removed by stop(), after reading what is in it
        self.log_dir = Path(tempfile.mkdtemp(prefix="qtapp-") if log_dir is None else log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stderr: str | None = None
        self.stdout_path = self.log_dir / f"{name}.stdout"
        self.stderr_path = self.log_dir / f"{name}.stderr"
        self.out = LineReader(self.stdout_path)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            # -u: every print reaches the file at once, so tests can synchronise on lines
            self.proc = _spawn(
                [sys.executable, "-u", "-c", code, *args], env=x.env | (env or {}), stdout=out, stderr=err
            )
        # a watchdog: a hung app never outlives `timeout` (its waits then fail quickly)
        self._watchdog = threading.Timer(timeout, stop_process, (self.proc,))
        self._watchdog.daemon = True
        self._watchdog.start()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, prefix: str, timeout: float = 10) -> str:
        """Wait for the next stdout line starting with `prefix` (see `LineReader.wait_for`).

        Fails at once if the app exits first, with the end of its stderr in the message.
        """
        try:
            return self.out.wait_for(prefix, timeout, alive=lambda: self.running)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    @property
    def lines(self) -> list[str]:
        """Every complete stdout line so far."""
        self.out.poll()
        return list(self.out.lines)

    def stderr(self) -> str:
        """Everything the app wrote to stderr so far."""
        if self._stderr is not None:
            return self._stderr
        return self.stderr_path.read_text(errors="replace")

    def describe(self, tail: int = 30) -> str:
        """Exit state, the last stdout lines and the end of stderr (for failure messages)."""
        state = "running" if self.running else f"exited with {self.proc.returncode}"
        err = self.stderr().splitlines()[-tail:]
        return "\n  ".join([f"app {state}; stdout:", *self.lines[-tail:], "stderr:", *err])

    def stop(self, timeout: float = 5) -> int | None:
        """Stop the app (its whole process group); returns its exit code."""
        self._watchdog.cancel()
        code = stop_process(self.proc, timeout)
        if self._own_dir and self._stderr is None:
            self.out.poll()
            self._stderr = self.stderr()
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return code

    def __enter__(self) -> QtApp:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_qt(x: X, code: str, *, timeout: float = 60, **kwargs) -> QtApp:
    """Start ``python -u -c code`` on display `x` (Qt on xcb); returns the running `QtApp`.

    `timeout` bounds its lifetime; keyword arguments go to `QtApp` (args, log_dir, env,
    name). Without `log_dir` the output goes to a temporary folder that `stop()` removes
    (`lines` and `stderr()` still answer). Use as ``with run_qt(x, code) as app:`` or
    stop it yourself.
    """
    return QtApp(x, code, timeout=timeout, **kwargs)


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def xvfb() -> Iterator[X]:
    """An Xvfb display shared by the tests of one module (starting one takes ~0.3 s).

    Tests must leave it as they found it (stop their apps and trayer); use `fresh_xvfb`
    for a display of one's own.
    """
    with xvfb_server() as x:
        yield x


@pytest.fixture
def fresh_xvfb() -> Iterator[X]:
    """An Xvfb display for this test alone."""
    with xvfb_server() as x:
        yield x


@pytest.fixture
def trayer(xvfb: X) -> Iterator[Tray]:
    """trayer running on `xvfb` for one test (a system tray is available); yields a `Tray`.

    Per test, so that a test without this fixture sees no tray, and icons of earlier
    tests' apps are gone. Starting it takes ~0.1 s.
    """
    with trayer_running(xvfb) as tray:
        yield tray


@pytest.fixture
def qt_app(xvfb: X, tmp_path: Path) -> Iterator[Callable[..., QtApp]]:
    """A factory ``qt_app(code, timeout=60, **kw) -> QtApp`` running apps on `xvfb`.

    Apps are stopped after the test; their output is printed then, so a failing test
    shows it. Logs are in tmp_path (app0.stdout, app0.stderr, app1...).
    """
    apps: list[QtApp] = []

    def start(code: str, timeout: float = 60, **kwargs) -> QtApp:
        kwargs.setdefault("name", f"app{len(apps)}")
        kwargs.setdefault("log_dir", tmp_path)
        apps.append(run_qt(xvfb, code, timeout=timeout, **kwargs))
        return apps[-1]

    try:
        yield start
    finally:
        for app in apps:
            app.stop()
            print(app.describe())
