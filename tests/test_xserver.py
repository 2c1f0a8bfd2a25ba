"""The real-X11 test infrastructure (tests/helpers/xserver.py) against the real parts: Xvfb,
trayer, xdotool, imagemagick and PyQt6 apps on xcb."""

import os
import signal
import time

import numpy as np
import pytest

from tests.helpers.wait import wait_until
from tests.helpers.xserver import X, run_qt, start_xvfb, stop_process, tray_geometry, tray_owner

MAGENTA = (255, 0, 255)

# A tray icon with a solid magenta pixmap and a two-item context menu. It prints:
#   AVAILABLE <bool>          isSystemTrayAvailable() at start
#   GEOMETRY x y w h          the icon's geometry once it is docked
#   MENU SHOWN / MENU HIDDEN  the context menu's aboutToShow / aboutToHide
#   ITEM n x y w h            each menu item's root-coordinate rectangle once the menu shows
#   ACTION n                  a menu item was triggered
TRAY_APP = r"""
import sys
from PyQt6.QtCore import QEvent, QObject, QPoint, QTimer
from PyQt6.QtGui import QColor, QIcon, QPixmap
from PyQt6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

app = QApplication(sys.argv)
print("AVAILABLE", QSystemTrayIcon.isSystemTrayAvailable())
pixmap = QPixmap(32, 32)
pixmap.fill(QColor(255, 0, 255))
icon = QSystemTrayIcon(QIcon(pixmap))
menu = QMenu()
for n in (1, 2):
    menu.addAction(f"Action {n}").triggered.connect(lambda _=False, n=n: print("ACTION", n))
menu.aboutToShow.connect(lambda: print("MENU SHOWN"))
menu.aboutToHide.connect(lambda: print("MENU HIDDEN"))


class ShowItems(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Show:  # placed and sized by now
            for n, action in enumerate(menu.actions(), 1):
                r = menu.actionGeometry(action)
                p = menu.mapToGlobal(r.topLeft())
                print("ITEM", n, p.x(), p.y(), r.width(), r.height())
        return False


show_items = ShowItems()
menu.installEventFilter(show_items)
icon.setContextMenu(menu)
icon.show()


def report_geometry():
    # Before trayer has embedded it, geometry() is already non-empty but bogus: (0, 0, 22, 22)
    g = icon.geometry()
    if not g.isEmpty() and g.topLeft() != QPoint(0, 0):
        print("GEOMETRY", g.x(), g.y(), g.width(), g.height())
        timer.stop()


timer = QTimer()
timer.timeout.connect(report_geometry)
timer.start(10)
app.exec()
"""


def ints(line: str) -> list[int]:
    """The integers after the first word of a line such as "GEOMETRY 1 2 3 4"."""
    return [int(v) for v in line.split()[1:]]


def has_colour(img: np.ndarray, geometry, colour=MAGENTA) -> int:
    """How many pixels of `img` inside the (x, y, w, h) rectangle are exactly `colour`."""
    x, y, w, h = geometry
    return int(np.all(img[y : y + h, x : x + w] == colour, axis=-1).sum())


def inside(inner, outer) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def open_menu(xvfb: X, app) -> tuple[list[int], int]:
    """Wait for the tray icon, right-click it; returns (icon geometry, menu window id)."""
    geometry = ints(app.wait_for("GEOMETRY"))
    before = xvfb.windows()
    xvfb.click_center(geometry, button=3)
    app.wait_for("MENU SHOWN")
    return geometry, xvfb.wait_for_window(exclude=before, timeout=5)


# ---------------------------------------------------------------------- the helpers


def test_wait_until_returns_the_value_or_fails_with_the_message():
    calls = []
    assert wait_until(lambda: calls.append(1) or len(calls) >= 3 and "done", 5, 0.001) == "done"
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="timed out after 0.1 s waiting for the moon"):
        wait_until(lambda: 0, 0.1, message="the moon")
    assert time.monotonic() - t0 < 2


def test_display_env_grab_and_screenshot(xvfb, tmp_path):
    env = xvfb.env
    assert env["DISPLAY"] == xvfb.display and env["QT_QPA_PLATFORM"] == "xcb"
    assert "XAUTHORITY" not in env
    assert xvfb.run("xwininfo", "-root").stdout.count("Width: 1280") == 1
    img = xvfb.grab()
    assert img.shape == (800, 1280, 3) and img.dtype == np.uint8
    path = xvfb.screenshot(tmp_path / "root.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tray_owner(xvfb) == 0  # no tray leaked from another test


def test_fresh_xvfb_is_another_display_and_stops(xvfb, fresh_xvfb):
    assert fresh_xvfb.display != xvfb.display
    root = int(fresh_xvfb.run("xwininfo", "-root").stdout.split("Window id: ")[1].split()[0], 16)
    assert fresh_xvfb.windows() == [root]  # a bare server: nothing but the root window
    proc, display = start_xvfb(size=(320, 200))
    try:
        assert X(display).grab().shape == (200, 320, 3)
    finally:
        stop_process(proc)
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGCONT)  # the whole group is gone


def test_trayer_fixture(xvfb, trayer):
    assert tray_owner(xvfb) != 0
    # top right, 200x32 as asked
    assert trayer.geometry == tray_geometry(xvfb) == (1280 - 200, 0, 200, 32)
    assert trayer.icons() == []
    panel = xvfb.grab(trayer.window)  # one window's pixels
    assert panel.shape == (32, 200, 3) and len(np.unique(panel.reshape(-1, 3), axis=0)) == 1


def test_app_output_and_early_exit(qt_app):
    app = qt_app("import sys; print('READY 1'); print('READY 2'); sys.exit(3)")
    assert app.wait_for("READY") == "READY 1"
    assert app.wait_for("READY") == "READY 2"  # lines are consumed in order
    with pytest.raises(AssertionError, match="ended without printing 'READY'"):
        app.wait_for("READY", timeout=5)  # fails as soon as the app has exited
    assert app.proc.returncode == 3


def test_run_qt_without_log_dir_cleans_up(xvfb):
    with run_qt(xvfb, "import sys; print('HELLO'); print('oops', file=sys.stderr)") as app:
        assert app.wait_for("HELLO") == "HELLO"
        wait_until(lambda: not app.running, 10, message="the app's exit")
    assert not app.log_dir.exists()
    assert app.lines == ["HELLO"] and app.stderr() == "oops\n"


# ----------------------------------------------------------- Qt on xcb with a tray


def test_no_system_tray_without_trayer(xvfb, qt_app):
    assert tray_owner(xvfb) == 0
    app = qt_app(
        "from PyQt6.QtWidgets import QApplication, QSystemTrayIcon\n"
        "app = QApplication([])\n"
        "print('PLATFORM', app.platformName())\n"
        "print('AVAILABLE', QSystemTrayIcon.isSystemTrayAvailable())\n"
    )
    assert app.wait_for("PLATFORM") == "PLATFORM xcb"
    assert app.wait_for("AVAILABLE") == "AVAILABLE False"


def test_tray_icon_is_drawn_in_the_tray(xvfb, trayer, qt_app):
    tray = trayer.geometry
    assert has_colour(xvfb.grab(), tray) == 0  # before the icon: no magenta in the tray
    app = qt_app(TRAY_APP)
    assert app.wait_for("AVAILABLE") == "AVAILABLE True"
    icon = ints(app.wait_for("GEOMETRY"))
    assert inside(icon, tray), (icon, tray)
    assert trayer.icons() == [tuple(icon)]  # what X says trayer docked
    # trayer's 22x30 slot shows the 32x32 pixmap scaled to 22x22 (484 pixels), drawn
    # right after docking: allow for the first paint
    count = wait_until(lambda: has_colour(xvfb.grab(), icon), 5, message="a magenta icon")
    assert count >= 16 * 16
    assert has_colour(xvfb.grab(), tray) == count  # all of it inside the icon


def test_right_click_opens_the_context_menu(xvfb, trayer, qt_app):
    app = qt_app(TRAY_APP)
    _, menu = open_menu(xvfb, app)
    x, y, w, h = xvfb.geometry(menu)
    assert w >= 50 and h >= 2 * 15  # two items
    xvfb.key("Escape")
    app.wait_for("MENU HIDDEN")
    wait_until(lambda: menu not in xvfb.windows(), 5, message="the menu window hidden")
    assert not [ln for ln in app.lines if ln.startswith("ACTION")]


def test_menu_keyboard_navigation(xvfb, trayer, qt_app):
    app = qt_app(TRAY_APP)
    _, menu = open_menu(xvfb, app)
    # A mouse-opened menu has no active item: the first Down selects item 1. The menu
    # grabs the keyboard, so keys without --window reach it (no window manager needed).
    xvfb.key("Down", "Down", "Return")
    app.wait_for("MENU HIDDEN")  # Qt hides the menu before it triggers the action
    assert app.wait_for("ACTION") == "ACTION 2"
    wait_until(lambda: menu not in xvfb.windows(), 5, message="the menu window hidden")
    assert [ln for ln in app.lines if ln.startswith("ACTION")] == ["ACTION 2"]


def test_menu_item_click(xvfb, trayer, qt_app):
    app = qt_app(TRAY_APP)
    _, menu = open_menu(xvfb, app)
    items = {n: ints(app.wait_for(f"ITEM {n} "))[1:] for n in (1, 2)}
    assert all(inside(r, xvfb.geometry(menu)) for r in items.values()), items
    xvfb.click_center(items[2])
    assert app.wait_for("ACTION") == "ACTION 2"
    assert [ln for ln in app.lines if ln.startswith("ACTION")] == ["ACTION 2"]


def test_typing_into_a_window_needs_activate(xvfb, qt_app):
    app = qt_app(
        "from PyQt6.QtWidgets import QApplication, QLineEdit\n"
        "app = QApplication([])\n"
        "edit = QLineEdit()\n"
        "edit.setWindowTitle('synd test edit')\n"
        "edit.resize(300, 40)\n"
        "edit.returnPressed.connect(lambda: print('TEXT', edit.text()))\n"
        "edit.show()\n"
        "app.exec()\n"
    )
    window = xvfb.wait_for_window(name="^synd test edit$")
    assert xvfb.geometry(window)[2:] == (300, 40)
    # No window manager: the X focus stays PointerRoot, keys go to the window under the
    # pointer, which is not this one, until it is given the focus.
    xvfb.activate(window)
    xvfb.key("h", "i", "Return")
    assert app.wait_for("TEXT") == "TEXT hi"
