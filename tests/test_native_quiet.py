"""Native libraries stay quiet: what libjack, ALSA and PortAudio write to fd 2 goes to
synd's debug log, and the user sees synd's own one line (synd.native)."""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from synd.native import explain, quiet_stderr
from tests.helpers.pulse import requires_pulse

SYND = [sys.executable, "-m", "synd"]
#: What JACK and ALSA print themselves when no JACK server runs (never synd's words).
NATIVE_WORDS = ("Cannot connect to server", "jack server is not running", "JackShm", "ALSA lib")


def libc_write(data: bytes) -> None:
    """Write to fd 2 the way a C library does: libc's write(2), bypassing Python."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.write(2, data, len(data)) == len(data)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- the context manager -----------------------------------------------------------------


def test_native_writes_are_captured_logged_at_debug_and_fd2_is_restored(capfd, caplog):
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()
    before, fds = os.fstat(2), open_fds()
    with quiet_stderr("libfoo", logging.getLogger("synd.test")) as said:
        libc_write(b"Cannot connect to server socket err = nothing\r\nsecond line\n")
        assert not same_file(os.fstat(2), before)
    assert same_file(os.fstat(2), before) and open_fds() == fds
    libc_write(b"after the block\n")
    err = capfd.readouterr().err
    assert "Cannot connect" not in err and "second line" not in err
    assert "after the block" in err  # fd 2 reaches the real stderr again
    assert said.text == "Cannot connect to server socket err = nothing\r\nsecond line\n"
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("synd.test", logging.DEBUG, "libfoo: Cannot connect to server socket err = nothing"),
        ("synd.test", logging.DEBUG, "libfoo: second line"),
    ]


def test_a_raising_block_still_restores_fd2_and_logs_what_was_said(capfd, caplog):
    caplog.set_level(logging.DEBUG)
    before = os.fstat(2)
    with pytest.raises(RuntimeError, match="open failed"):
        with quiet_stderr("libfoo") as said:
            libc_write(
                b"ALSA lib pulse.c:242:(pulse_connect) PulseAudio: Unable to connect: "
                b"Connection refused\n\xff\n"
            )
            raise RuntimeError("open failed")
    assert same_file(os.fstat(2), before)
    assert "ALSA lib" not in capfd.readouterr().err
    assert "\ufffd" in said.text  # undecodable bytes replaced, not fatal
    assert any(r.levelno == logging.DEBUG and "Unable to connect" in r.getMessage() for r in caplog.records)
    # the reason the exception leaves out goes into the one line, once
    assert (
        explain(RuntimeError("open failed"), said)
        == "open failed (PulseAudio: Unable to connect: Connection refused)"
    )
    already = "PulseAudio: unable to connect: connection refused"
    assert explain(RuntimeError(already), said) == already


def test_a_second_thread_waits_for_the_first_block_to_end():
    """Two threads swapping fd 2 at once could leave it on a closed capture for good."""
    inside, release, entered = threading.Event(), threading.Event(), threading.Event()
    before = os.fstat(2)

    def first():
        with quiet_stderr("a"):
            inside.set()
            release.wait(10)

    def second():
        inside.wait(10)
        with quiet_stderr("b"):
            entered.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert inside.wait(10)
    assert not entered.wait(0.3)  # blocked while the first block holds fd 2
    release.set()
    for t in threads:
        t.join(10)
    assert entered.is_set() and same_file(os.fstat(2), before)


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, **kwargs
    )


def test_log_lines_of_other_threads_still_reach_stderr_during_a_block():
    proc = run_python("""
        import ctypes, logging, threading
        from synd.native import quiet_stderr
        logging.basicConfig(level=logging.INFO, format="synd: %(message)s")
        libc = ctypes.CDLL(None)
        with quiet_stderr("libfoo") as said:
            libc.write(2, b"native chatter\\n", 15)
            t = threading.Thread(target=lambda: logging.getLogger("synd.x").warning("from a thread"))
            t.start(); t.join()
        print(repr(said.text))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "synd: from a thread\n"
    assert proc.stdout.strip() == repr("native chatter\n")


def test_a_closed_fd2_is_left_alone():
    """No stderr at all (a closed fd 2, sys.stderr None as under pythonw): the block
    simply runs, and fd 2 stays closed."""
    proc = run_python("""
        import ctypes, os, sys
        from synd.native import quiet_stderr
        os.close(2)
        sys.stderr = None
        with quiet_stderr("libfoo") as said:
            ctypes.CDLL(None).write(2, b"into the void\\n", 14)
        try:
            os.fstat(2)
            print("fd 2 open")
        except OSError:
            print("fd 2 closed", repr(said.text))
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "fd 2 closed ''", proc.stdout


# -- where synd opens MIDI and audio -----------------------------------------------------


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_alsa_midi_without_a_sequencer_says_why_in_one_line(capfd):
    from synd.midi import MidiError, compiled_apis, list_ports

    if "alsa" not in compiled_apis():
        pytest.skip("python-rtmidi without ALSA")
    with pytest.raises(MidiError) as caught:
        list_ports("alsa")
    assert "ALSA lib" not in capfd.readouterr().err
    assert "open /dev/snd/seq failed" in str(caught.value)  # ALSA's reason, folded in


@requires_pulse
def test_a_sound_server_gone_before_the_stream_opens_is_one_line(pulse, capfd, caplog):
    from synd.capture import CaptureError, DeviceInput, refresh_devices

    caplog.set_level(logging.DEBUG, logger="synd.capture")
    refresh_devices()
    source = DeviceInput("system")
    pulse.kill()
    capfd.readouterr()
    try:
        with pytest.raises(CaptureError) as caught:
            source.start()
    finally:
        source.stop()
    err = capfd.readouterr().err
    assert "ALSA lib" not in err and "pa_linux_alsa" not in err, err
    assert "Unable to connect" in str(caught.value)
    assert any(r.levelno == logging.DEBUG and "pa_linux_alsa" in r.getMessage() for r in caplog.records)


def run_daemon_until_midi(tmp_path, *flags: str) -> list[str]:
    """`synd [flags] run` with no JACK server reachable; its stderr lines, once MIDI is
    settled (then SIGTERM)."""
    env = os.environ | {
        "JACK_DEFAULT_SERVER": f"synd-absent-{uuid.uuid4().hex[:10]}",  # no such server
        "PULSE_SERVER": f"unix:{tmp_path}/no-sound-server",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "DISPLAY": "",
        "WAYLAND_DISPLAY": "",
        "QT_QPA_PLATFORM": "",
    }
    proc = subprocess.Popen(
        [
            *SYND,
            *flags,
            "run",
            "--output",
            f"record:{tmp_path}/out.mp4",
            "--osc",
            "off",
            "--size",
            "160x96",
            "--midi-api",
            "jack",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
    )
    lines: list[str] = []
    settled = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "MIDI: off" in line or "MIDI: listening" in line:
                settled.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not settled.is_set() and proc.poll() is None and time.monotonic() < deadline:
        settled.wait(0.1)
    time.sleep(0.3)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(10)
    assert settled.is_set(), "\n".join(lines)
    return lines


def test_synd_run_without_a_jack_server_prints_only_its_own_midi_line(tmp_path):
    lines = run_daemon_until_midi(tmp_path)
    chatter = [ln for ln in lines if any(w.lower() in ln.lower() for w in NATIVE_WORDS)]
    assert chatter == [], "\n".join(lines)
    midi = [ln for ln in lines if "MIDI" in ln]
    assert (
        len(midi) == 1 and midi[0].startswith("synd: MIDI: off (") and "JACK server not running" in midi[0]
    ), "\n".join(lines)


def test_with_v_the_native_lines_show_as_synd_debug_lines(tmp_path):
    lines = run_daemon_until_midi(tmp_path, "-v")
    jack = [ln for ln in lines if "Cannot connect to server" in ln]
    assert jack and all(ln.startswith("synd: MIDI (jack): ") for ln in jack), "\n".join(lines)
    assert not [
        ln
        for ln in lines
        if any(w.lower() in ln.lower() for w in NATIVE_WORDS) and not ln.startswith("synd: ")
    ], "\n".join(lines)
