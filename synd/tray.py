"""The tray icon and its menu, and the two ways to run them.

`synd run --tray` shows the icon for the daemon in the same process (`synd.link.LocalLink`);
`synd tray` attaches to a daemon that is already running, over its OSC port
(`synd.link.OscLink`). The menu offers the presets (the current one checked), the audio
input, the outputs, intensity steps, freeze and blackout, the control window and quit.
A left click on the icon shows or hides the control window. The icon shows the state:
live, frozen, blacked out, or not connected.

Where the desktop has no system tray, the control window opens instead, with a one-line
note, and closing it quits.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, cast

from PyQt6.QtCore import QTimer
from PyQt6.QtGui import QAction, QActionGroup
from PyQt6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from synd.link import Link

log = logging.getLogger(__name__)

#: The intensity steps the menu offers.
INTENSITY_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
NO_TRAY_NOTE = "no system tray here: showing the control window instead (closing it quits)"


_APP: list[QApplication] = []  # PyQt deletes a QApplication nobody refers to


def application() -> QApplication:
    """The process's QApplication (made on first use, and kept), named for the desktop."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "synd"])
        app.setApplicationName("synd")
        app.setDesktopFileName("synd")
        _APP.append(app)
    app = cast(QApplication, app)  # synd makes no bare QCoreApplication
    app.setQuitOnLastWindowClosed(False)  # closing the window leaves the tray running
    return app


def _submenu(menu: QMenu, title: str) -> QMenu:
    """`menu.addMenu(title)`, which always makes one (PyQt's stubs allow None)."""
    sub = menu.addMenu(title)
    assert sub is not None
    return sub


def _item(menu: QMenu, text: str) -> QAction:
    """`menu.addAction(text)`, which always makes one (PyQt's stubs allow None)."""
    action = menu.addAction(text)
    assert action is not None
    return action


class Tray:
    """The tray icon over `link`; `on_quit` ends the show (or just the tray, attached)."""

    def __init__(self, link: Link, on_quit: Callable[[], Any]) -> None:
        from synd.icon import app_icon

        self.link = link
        self.on_quit = on_quit
        self.window: Any = None
        self.has_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon = QSystemTrayIcon(app_icon("offline"))
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self._fill_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self._fill_menu()
        link.changed.connect(self._on_changed)
        link.status.connect(self._on_status)
        link.connection.connect(self._on_connection)
        self._shown_state = ""

    def show(self) -> None:
        """Show the icon, or where there is no tray, the control window with a note."""
        if self.has_tray:
            self.icon.show()
            self._refresh_icon()
            log.info("tray: icon shown (%s)", self.link.description)
        else:
            log.warning("%s", NO_TRAY_NOTE)
            window = self.open_window(quit_on_close=True)
            window.statusBar().showMessage(NO_TRAY_NOTE)

    def hide(self) -> None:
        self.icon.hide()
        if self.window is not None:
            self.window.close()

    # -- the menu ---------------------------------------------------------------------------

    def _fill_menu(self) -> None:
        """(Re)build the menu from the latest state, just before it opens."""
        state = self.link.state
        menu = self.menu
        menu.clear()
        title = _item(menu, self._title())
        title.setEnabled(False)
        menu.addSeparator()

        presets = _submenu(menu, "&Presets")
        group = QActionGroup(presets)
        for name in state.get("presets", []):
            action = _item(presets, name)
            action.setCheckable(True)
            action.setChecked(name == state.get("preset"))
            action.setActionGroup(group)
            action.triggered.connect(lambda _c=False, n=name: self.link.send("/synd/preset", n))
        presets.setEnabled(bool(state.get("presets")))
        presets.addSeparator()
        presets.addAction("&Next", lambda: self.link.send("/synd/preset/next"))
        presets.addAction("P&revious", lambda: self.link.send("/synd/preset/previous"))

        inputs = _submenu(menu, "&Input")
        current = state.get("input")
        now = _item(inputs, f"Now: {current}" if current else "Now: -")
        now.setEnabled(False)
        inputs.addSeparator()
        for name in state.get("inputs", []):
            inputs.addAction(name, lambda n=name: self.link.send("/synd/input", n))
        if not state.get("inputs"):
            none = _item(inputs, "(the input cannot be switched)")
            none.setEnabled(False)

        outputs = _submenu(menu, "&Outputs")
        for name in state.get("outputs", []):
            action = _item(outputs, name)
            action.setCheckable(True)
            action.setChecked(bool(state.get(f"output/{name}", True)))
            action.toggled.connect(lambda on, n=name: self.link.send(f"/synd/output/{n}", 1 if on else 0))
        outputs.setEnabled(bool(state.get("outputs")))

        intensity = _submenu(menu, "I&ntensity")
        steps = QActionGroup(intensity)
        level = float(state.get("intensity", 1.0))
        nearest = min(INTENSITY_STEPS, key=lambda v: abs(v - level))
        for value in INTENSITY_STEPS:
            action = _item(intensity, f"{round(value * 100)}%")
            action.setCheckable(True)
            action.setChecked(value == nearest)
            action.setActionGroup(steps)
            action.triggered.connect(lambda _c=False, v=value: self.link.send("/synd/intensity", v))

        menu.addSeparator()
        for name, text in (("freeze", "&Freeze picture"), ("blackout", "&Blackout")):
            action = _item(menu, text)
            action.setCheckable(True)
            action.setChecked(bool(state.get(name)))
            action.toggled.connect(lambda on, n=name: self.link.send(f"/synd/{n}", 1 if on else 0))
        menu.addSeparator()
        menu.addAction("Open &control window", self.open_window)
        quit_text = "&Quit synd" if self.link.stops_daemon else "&Quit tray (synd keeps running)"
        menu.addAction(quit_text, self.on_quit)

    def _title(self) -> str:
        if not self.link.connected:
            return f"synd: not connected ({self.link.description})"
        preset = self.link.state.get("preset") or "-"
        fps = self.link.last_status.get("fps")
        return f"synd: {preset}" + (f", {fps:.0f} fps" if fps is not None else "")

    # -- following the show -----------------------------------------------------------------

    def _on_changed(self, name: str, value: Any) -> None:
        if name in ("freeze", "blackout", "preset"):
            self._refresh_icon()

    def _on_connection(self, connected: bool, text: str) -> None:
        (log.info if connected else log.warning)("tray: %s", text)
        self._refresh_icon()

    def _on_status(self, status: dict) -> None:
        self.icon.setToolTip(self._title())

    def _refresh_icon(self) -> None:
        from synd.icon import app_icon

        state = self.link.state
        if not self.link.connected:
            look = "offline"
        elif state.get("blackout"):
            look = "black"
        elif state.get("freeze"):
            look = "frozen"
        else:
            look = "live"
        if look != self._shown_state:
            self._shown_state = look
            self.icon.setIcon(app_icon(look))
        self.icon.setToolTip(self._title())

    # -- the window ---------------------------------------------------------------------------

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:  # a left click
            if self.window is not None and self.window.isVisible():
                self.window.hide()
            else:
                self.open_window()

    def open_window(self, quit_on_close: bool = False):
        """Show (and raise) the control window, making it on first use."""
        from synd.window import ControlWindow

        if self.window is None:
            self.window = ControlWindow(self.link, on_quit=self.on_quit, quit_on_close=quit_on_close)
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()
        return self.window


def keep_python_responsive(app: QApplication, on_signal: Callable[[], Any]) -> QTimer:
    """Let SIGINT/SIGTERM reach Python while Qt's loop runs: Python handles a signal only
    when Python code runs, so a short timer gives it the chance. `on_signal` ends the
    loop gracefully."""

    def handler(signum: int, _frame: Any) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        on_signal()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
    return timer


def attach(host: str, port: int) -> int:
    """`synd tray`: the tray for a daemon already running with OSC at host:port. Quitting
    the tray leaves the daemon running. Returns the exit code."""
    from synd.link import OscLink

    app = application()
    link = OscLink(host, port)
    tray = Tray(link, on_quit=app.quit)
    link.start()
    tray.show()
    keep_python_responsive(app, app.quit)
    try:
        return app.exec()
    finally:
        link.stop()
        tray.hide()
