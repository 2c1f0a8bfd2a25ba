"""`synd tray` and `synd run --tray` as users run them, in their own processes."""

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from synd.audio import write_wav
from tests.helpers.audio import music_clip
from tests.helpers.daemon import SYND, start_daemon, stop_daemon
from tests.helpers.osc import free_udp_port, osc, oscsend
from tests.helpers.wait import wait_until
from tests.helpers.xserver import tray_owner


def wait_line(path, text, proc=None, timeout=30.0):
    """Wait until the log file at `path` has a line containing `text`; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if text in line:
                return line
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited early ({proc.returncode}): {path.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"no line with {text!r} in: {path.read_text()}")


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    write_wav(path, music_clip(7, seconds=12.0), 24000)
    return path


def start_logged(args, log, env=None):
    """A synd subprocess with stderr going to `log` (a file: no pipe to fill up)."""
    handle = open(log, "w")
    proc = subprocess.Popen(
        [*SYND, *args], stdout=subprocess.DEVNULL, stderr=handle, env={**os.environ, **(env or {})}
    )
    handle.close()
    return proc


def start_tray_daemon(song, tmp_path, osc, log, env):
    """`synd run --tray` on `song` in a loop, recording to tmp_path/out.mp4, OSC at `osc`."""
    args = ["run", "--tray", "--preset", "tide", "--input", str(song), "--loop"]
    args += ["--output", f"record:{tmp_path / 'out.mp4'}", "--osc", osc, "--midi", "off"]
    return start_logged(args, log, env=env)


def test_synd_tray_attaches_to_a_running_daemon_and_quits_alone(tmp_path, song):
    """Offscreen Qt has no tray: `synd tray` opens its window, connects over OSC, says
    when the daemon goes away; SIGINT ends the tray and leaves the daemon running."""
    port = free_udp_port()
    daemon = start_daemon(
        "--input",
        str(song),
        "--loop",
        "--output",
        f"record:{tmp_path / 'out.mp4'}",
        "--osc",
        f"127.0.0.1:{port}",
        "--midi",
        "off",
    )
    log = tmp_path / "tray.log"
    tray = start_logged(["tray", "--osc", f"127.0.0.1:{port}"], log, env={"QT_QPA_PLATFORM": "offscreen"})
    try:
        assert "no system tray here" in wait_line(log, "system tray", tray)
        wait_line(log, "tray: connected to synd at 127.0.0.1", tray, timeout=60)
        oscsend(port, "/synd/intensity", "f", 0.5)  # the daemon is steerable meanwhile
        tray.send_signal(signal.SIGINT)
        assert tray.wait(10) == 0
        assert daemon.poll() is None  # the daemon runs on
    finally:
        if tray.poll() is None:
            tray.kill()
        code, err, took = stop_daemon(daemon)
    assert code == 0, err
    assert "OSC: 127.0.0.1:" in err and "subscribed" in err


def test_synd_tray_without_a_daemon_says_so_and_keeps_trying(tmp_path):
    port = free_udp_port()
    log = tmp_path / "tray.log"
    tray = start_logged(["tray", "--osc", f"127.0.0.1:{port}"], log, env={"QT_QPA_PLATFORM": "offscreen"})
    try:
        line = wait_line(log, "no answer from synd", tray, timeout=20)
        assert f"127.0.0.1:{port}" in line
        assert tray.poll() is None
    finally:
        tray.send_signal(signal.SIGTERM)
        assert tray.wait(10) == 0


def test_tray_without_any_display_is_one_error_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    for args in (["tray"], ["run", "--tray", "--input", "nothing.wav"]):
        done = subprocess.run([*SYND, *args], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 1
        assert (
            done.stderr.strip().splitlines()[-1].startswith("synd: error: cannot show the tray: no display")
        )


# -- the real tray and window on X (Xvfb, trayer, xdotool, imagemagick) ------------------------


def vivid(img, geometry) -> int:
    """Pixels of the live icon's magenta-to-violet gradient inside `geometry`."""
    x, y, w, h = geometry
    region = img[y : y + h, x : x + w].astype(int)
    r, g, b = region[..., 0], region[..., 1], region[..., 2]
    return int(((r > 80) & (b > 150) & (g < 110) & (b - g > 90)).sum())


def ask(port, address):
    """Query the daemon over OSC (python-osc); the reply's arguments."""
    import socket

    from pythonosc.osc_message import OscMessage

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        sock.sendto(osc(address), ("127.0.0.1", port))
        return OscMessage(sock.recvfrom(65536)[0]).params


@pytest.mark.slow
def test_the_real_tray_icon_opens_its_menu_and_chooses_a_preset(xvfb, trayer, tmp_path, song):
    """`synd run --tray` on X with a real system tray: the icon is docked and drawn, a
    right click opens the menu, and choosing a preset with the keyboard changes what
    the engine shows."""
    port = free_udp_port()
    assert vivid(xvfb.grab(), trayer.geometry) == 0  # the empty tray has no icon colours
    log = tmp_path / "run.log"
    proc = start_tray_daemon(song, tmp_path, f"127.0.0.1:{port}", log, xvfb.env)
    try:
        wait_line(log, "tray: icon shown", proc, timeout=120)
        icon = wait_until(lambda: trayer.icons(), 10, message="an icon docked in trayer")[0]
        x, y, w, h = icon
        tx, ty, tw, th = trayer.geometry
        assert tx <= x and x + w <= tx + tw and ty <= y and y + h <= ty + th
        drawn = wait_until(lambda: vivid(xvfb.grab(), icon), 10, message="the icon drawn")
        assert drawn >= 0.3 * min(w, h) ** 2  # a solid icon, not a few stray pixels
        assert vivid(xvfb.grab(), trayer.geometry) == drawn  # all of it in its slot

        before = xvfb.windows()
        xvfb.click_center(icon, button=3)
        menu = xvfb.wait_for_window(exclude=before, timeout=10)
        mx, my, mw, mh = xvfb.geometry(menu)
        print(f"icon {icon}, {drawn} icon pixels, menu {mw}x{mh}")
        assert mw >= 100 and mh >= 8 * 18  # title, 4 submenus, 2 toggles, window, quit
        assert ask(port, "/synd/preset") == ["tide"]
        xvfb.key("p")  # the Presets submenu (its mnemonic); lava is first
        xvfb.key("Return")
        wait_until(lambda: ask(port, "/synd/preset") == ["lava"], 10, message="the preset chosen in the menu")
        wait_line(log, "model: lava", proc, timeout=30)
        wait_until(lambda: menu not in xvfb.windows(), 5, message="the menu closed")
    finally:
        code, err, _ = stop_daemon(proc, signal.SIGTERM) if proc.poll() is None else (proc.returncode, "", 0)
    assert code == 0, log.read_text()


SCREENSHOT_DIR = os.environ.get("SYND_SCREENSHOT_DIR")  # `make screenshots` sets it to docs/


@pytest.mark.slow
def test_without_a_tray_on_x_the_control_window_opens_and_is_photographed(xvfb, tmp_path, song):
    """On an X display with no system tray, `synd run --tray` opens the control window
    with its one-line note; the window shows the live picture. The README's screenshot
    is this window (`make screenshots` copies it to docs/)."""
    import shutil

    assert tray_owner(xvfb) == 0
    log = tmp_path / "run.log"
    proc = start_tray_daemon(song, tmp_path, "off", log, xvfb.env)
    try:
        note = wait_line(log, "system tray", proc, timeout=120)
        assert note.endswith("no system tray here: showing the control window instead (closing it quits)")
        window = xvfb.wait_for_window(name="^synd control$", timeout=20)
        x, y, w, h = xvfb.geometry(window)
        assert w >= 900 and h >= 500
        time.sleep(4)  # a few seconds of music in the picture and the readout
        shot = xvfb.screenshot(tmp_path / "control-window.png", window)
        pixels = xvfb.grab(window)
        picture = pixels[20 : h // 2, 20 : w // 2].astype(float)
        assert picture.std() > 12  # the live picture, not a flat or black area
        colours = len(np.unique(picture.astype(np.uint8).reshape(-1, 3) // 16, axis=0))
        assert colours > 20
        if SCREENSHOT_DIR:
            shutil.copy(shot, Path(SCREENSHOT_DIR) / "control-window.png")
        xvfb.activate(window)
        xvfb.key("ctrl+q")  # quits the daemon, like closing the window
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stopped after" in log.read_text()
