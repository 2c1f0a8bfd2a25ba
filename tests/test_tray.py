"""`synd tray` and `synd run --tray` as users run them, in their own processes."""

import os
import signal
import subprocess
import sys
import time

import pytest

from synd.audio import write_wav

from conftest import music_clip
from test_daemon import start_daemon, stop_daemon
from test_osc import free_udp_port, oscsend

SYND = [sys.executable, "-m", "synd"]


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
    proc = subprocess.Popen([*SYND, *args], stdout=subprocess.DEVNULL, stderr=handle,
                            env={**os.environ, **(env or {})})
    handle.close()
    return proc


def test_synd_tray_attaches_to_a_running_daemon_and_quits_alone(tmp_path, song):
    """Offscreen Qt has no tray: `synd tray` opens its window, connects over OSC, says
    when the daemon goes away; SIGINT ends the tray and leaves the daemon running."""
    port = free_udp_port()
    daemon = start_daemon("--input", str(song), "--loop", "--output",
                          f"record:{tmp_path / 'out.mp4'}", "--osc", f"127.0.0.1:{port}",
                          "--midi", "off")
    log = tmp_path / "tray.log"
    tray = start_logged(["tray", "--osc", f"127.0.0.1:{port}"], log,
                        env={"QT_QPA_PLATFORM": "offscreen"})
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
    tray = start_logged(["tray", "--osc", f"127.0.0.1:{port}"], log,
                        env={"QT_QPA_PLATFORM": "offscreen"})
    try:
        line = wait_line(log, "no answer from synd", tray, timeout=20)
        assert f"127.0.0.1:{port}" in line
        assert tray.poll() is None
    finally:
        tray.send_signal(signal.SIGTERM)
        assert tray.wait(10) == 0


def test_tray_without_any_display_is_one_error_line(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    for args in (["tray"], ["run", "--tray", "--input", "nothing.wav"]):
        done = subprocess.run([*SYND, *args], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1].startswith("synd: error: cannot show the tray: no display")
