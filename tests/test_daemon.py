"""`synd run` as users run it: a real PulseAudio server, the shipped model, a recording
read back with PyAV, signals."""

import os
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from synd.audio import write_wav
from synd.video import read_audio, read_timed_frames, read_video_info
from tests.helpers.audio import beats
from tests.helpers.daemon import SYND, frames_logged, start_daemon, stop_daemon
from tests.helpers.pulse import requires_pulse

RATE = 48000  # of the sound written here (beats() makes its bars at this rate too)


def wait_log(proc, path_or_text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"synd run exited early: {proc.log.text()}")
        if path_or_text():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def song_and_silence_changes(video, lag: float = 0.5, settle: float = 1.0):
    """Frame-to-frame changes of a recording, split into those while the song plays and
    those in the silence around it.

    The song spans the recorded audio's first to last loud sample. Silence is what comes
    `settle` s after the recording starts (the look glides from its first frame) up to
    `lag` s before the song, and `settle` s after the song on (`lava`'s fields trail the
    music through the feedback). Whole passages are compared, not single frames: on a
    loaded machine the picture can follow the recorded sound by several frames, or
    (capture starved, then catching up) lead it. Frames are placed by their timestamps,
    since a dropped frame leaves a gap; a change across a gap counts per frame interval."""
    audio, rate = read_audio(video)
    loud = np.flatnonzero(np.abs(audio[:, 0]) > 0.05)
    assert loud.size, "the recording holds no sound"
    begins, ends = loud[0] / rate, loud[-1] / rate
    fps = read_video_info(video)["fps"]
    timed = [(t, f.astype(np.float32)) for t, f in read_timed_frames(video)]
    song, silence = [], []
    for (t0, f0), (t, f) in zip(timed, timed[1:]):
        change = float(np.abs(f - f0).mean()) / max(1, round((t - t0) * fps))
        if begins <= t <= ends:
            song.append(change)
        elif settle <= t <= begins - lag or t >= ends + settle:
            silence.append(change)
    return song, silence


@requires_pulse
def test_system_audio_drives_the_pictures_and_sigterm_finishes_the_recording(pulse, tmp_path):
    song = tmp_path / "beats.wav"
    write_wav(song, beats(8.0), RATE)
    video = tmp_path / "set.mp4"
    proc = start_daemon(
        "--input", "system", "--output", f"record:{video}", "--size", "320x180", "-o", "status_every=1"
    )
    # A second of pictures painted and recorded, however busy the machine: after a fixed
    # sleep, a slow start left only the song's first bar in the recording.
    proc.log.wait(lambda log: frames_logged(log) > 30)
    pulse.play(song, wait=True)
    time.sleep(2.5)  # the last silence: the picture comes to rest after the song
    code, err, took = stop_daemon(proc)
    assert code == 0, err
    assert "input: system audio" in err and "model: lava" in err and "record" in err
    assert "status:" in err and "Traceback" not in err
    assert took < 5  # clean stop: outputs closed, stream aborted (the log says the exact time)
    info = read_video_info(video)
    assert info["audio_duration"] is not None and info["n_frames"] > 30
    song, silence = song_and_silence_changes(video)
    assert len(song) > 100 and len(silence) > 20, (len(song), len(silence))
    assert np.median(song) > 5 * np.median(silence) + 0.2, (np.median(song), np.median(silence))
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


@requires_pulse
def test_a_pipe_microphone_is_captured_by_name(pulse, tmp_path):
    fifo = pulse.add_pipe_mic("fakemic")
    video = tmp_path / "mic.mkv"
    t = np.arange(RATE * 6) / RATE
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with pulse.feed(fifo, tone):
        proc = start_daemon("--input", "fakemic", "--output", f"record:{video}", "--size", "160x96")
        wait_log(proc, lambda: any("partial" in p.name for p in tmp_path.iterdir()), timeout=60)
        time.sleep(3)
        code, err, _ = stop_daemon(proc)
    assert code == 0, err
    assert "fakemic" in err
    audio, rate = read_audio(video)
    x = audio[:, 0][rate // 2 :]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert abs(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)] - 440) < 5


@requires_pulse
def test_the_daemon_survives_a_sound_server_restart(pulse, tmp_path):
    proc = start_daemon(
        "--input",
        "system",
        "--output",
        f"record:{tmp_path / 'r.mp4'}",
        "--size",
        "160x96",
        "-o",
        "status_every=0.5",
    )
    # Capturing: the recording starts after the input opened (a busy machine takes longer).
    wait_log(proc, lambda: any("partial" in p.name for p in tmp_path.iterdir()), timeout=60)
    time.sleep(1)
    pulse.kill()
    time.sleep(2)
    pulse.restart()
    song = tmp_path / "b.wav"
    write_wav(song, beats(3.0), RATE)
    time.sleep(3)
    pulse.play(song, wait=True)
    assert proc.poll() is None, f"the daemon died with the sound server: {proc.log.text()}"
    code, err, _ = stop_daemon(proc)
    assert code == 0, err
    assert "capture resumed" in err or "resumed" in err, err
    assert "Traceback" not in err


def test_a_song_as_input_and_sigint(tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, beats(12.0), RATE)
    video = tmp_path / "file.mp4"
    proc = start_daemon("--input", str(song), "--output", f"record:{video}", "--size", "160x96")
    wait_log(proc, lambda: any("partial" in p.name for p in tmp_path.iterdir()), timeout=60)
    time.sleep(3)
    code, err, _ = stop_daemon(proc, signal.SIGINT)
    assert code == 0, err
    assert "song.wav" in err
    audio, rate = read_audio(video)
    assert len(audio) > rate  # the song's audio is in the recording


def test_defaults_without_audio_device_or_display_play_the_demo_into_a_recording(tmp_path, monkeypatch):
    """What `make run` does on a bare server without NDI: the demo clip in a loop, recorded.
    (NDI is made unavailable by hiding its module; with NDI installed, the demo goes to an
    NDI source and a recording: see tests/test_newcomer_setup.py.)"""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "NDIlib.py").write_text("raise ImportError('hidden for this test')\n")
    env = {
        "PULSE_SERVER": f"unix:{tmp_path}/nothing-here",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HOME": str(tmp_path),
        "DISPLAY": "",
        "WAYLAND_DISPLAY": "",
        "QT_QPA_PLATFORM": "",
        "PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")]),
    }
    proc = start_daemon("--size", "160x96", "-o", "status_every=1", env=env)
    proc.log.wait(lambda log: frames_logged(log) > 60)  # work done, however busy the machine
    code, err, _ = stop_daemon(proc)
    assert code == 0, err
    assert "no audio device" in err and "demo" in err and "no preview or NDI" in err
    recordings = list((tmp_path / "data" / "synd" / "recordings").glob("synd-*.mp4"))
    assert len(recordings) == 1 and read_video_info(recordings[0])["n_frames"] > 30


@pytest.mark.parametrize(
    "available, expected",
    [
        ({"preview", "ndi"}, "preview,ndi"),
        ({"ndi"}, "ndi"),
        ({"preview"}, "preview"),
        ({"preview", "ndi", "spout"}, "preview,ndi,spout"),
        (set(), "record:"),
    ],
)
def test_auto_outputs(monkeypatch, tmp_path, available, expected):
    from synd import daemon
    from synd.bridges import base

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))

    class Probe:
        def __init__(self, name):
            self.name = name

        def available(self):
            return None if self.name in available else f"{self.name} is missing here"

    monkeypatch.setattr(base, "output_class", Probe)
    chosen = daemon.auto_outputs()
    assert chosen.startswith(expected) and (expected != "record:" or chosen.endswith(".mp4"))


def test_the_engine_runs_as_fast_as_the_fastest_output():
    from synd.daemon import engine_fps

    assert engine_fps(30.0, [("ndi", {"fps": 60.0}), ("preview", {})]) == 60.0
    assert engine_fps(30.0, [("ndi", {"fps": 15.0}), ("preview", {})]) == 30.0


def test_the_preview_window_runs_on_the_main_thread_and_sigterm_closes_it(tmp_path):
    pytest.importorskip("PyQt6")
    song = tmp_path / "song.wav"
    write_wav(song, beats(2.0), RATE)
    proc = start_daemon(
        "--input",
        str(song),
        "--loop",
        "--output",
        f"preview@320x180,record:{tmp_path / 'r.mp4'}",
        "--size",
        "160x96",
        "-o",
        "status_every=1",
        env={"QT_QPA_PLATFORM": "offscreen"},
    )
    wait_log(proc, lambda: any("partial" in p.name for p in tmp_path.iterdir()), timeout=60)
    proc.log.wait(lambda log: frames_logged(log) > 60)
    code, err, took = stop_daemon(proc)
    assert code == 0, err
    assert "preview 320x180" in err and "record 160x96" in err
    assert "Traceback" not in err and took < 5
    assert read_video_info(tmp_path / "r.mp4")["n_frames"] > 30


def test_bad_input_or_output_is_one_line_and_nothing_starts(tmp_path):
    for args, words in (
        (["--input", "nosuchdevice", "--output", f"record:{tmp_path / 'x.mp4'}"], "nosuchdevice"),
        (["--output", "bogus"], "unknown output 'bogus'"),
        (["--input", str(tmp_path / "missing.flac")], "missing.flac"),
    ):
        proc = subprocess.run([*SYND, "run", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and words in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_stop_during_start_up_ends_cleanly(tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, beats(2.0), RATE)
    proc = start_daemon("--input", str(song), "--output", f"record:{tmp_path / 'r.mp4'}")
    time.sleep(0.5)  # the model is still loading
    code, err, took = stop_daemon(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert "start-up" in err or "stopped after" in err  # too slow a start makes it the latter
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


@pytest.mark.skipif(not shutil.which("oscsend"), reason="liblo-tools (oscsend, oscdump) not installed")
def test_synd_run_is_steered_over_osc_and_survives_garbage(tmp_path):
    """The real daemon: liblo's oscsend changes the intensity, oscdump (the feedback
    target) hears the change and the status, and garbage packets change nothing."""
    from tests.helpers.osc import OscDump, free_udp_port, oscsend

    song = tmp_path / "song.wav"
    write_wav(song, beats(4.0), RATE)
    dump = OscDump()
    port = free_udp_port()
    proc = start_daemon(
        "--input",
        str(song),
        "--loop",
        "--output",
        f"record:{tmp_path / 'r.mp4'}",
        "--size",
        "160x96",
        "--osc",
        f"127.0.0.1:{port}",
        "--osc-feedback",
        f"127.0.0.1:{dump.port}",
    )
    try:
        wait_log(proc, lambda: dump.messages("/synd/status"), timeout=60)
        oscsend(port, "/synd/intensity", "f", 0.3)
        wait_log(proc, lambda: dump.messages("/synd/intensity"), timeout=10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in (b"\x00\xff" * 7, b"/synd/intensity\x00", os.urandom(64), b"#bundle\x00"):
                s.sendto(junk, ("127.0.0.1", port))
        seen = len(dump.messages("/synd/status"))
        wait_log(proc, lambda: len(dump.messages("/synd/status")) > seen + 1, timeout=10)
        oscsend(port, "/synd/preset/next")
        wait_log(proc, lambda: dump.messages("/synd/preset"), timeout=10)
    finally:
        code, err, _ = stop_daemon(proc)
        dump.close()
    assert code == 0, err
    types, values = dump.messages("/synd/intensity")[0]
    assert types == "f" and abs(float(values[0]) - 0.3) < 1e-6
    assert "OSC: listening on 127.0.0.1" in err and "malformed" in err.lower()
    assert "Traceback" not in err


@pytest.mark.skipif(not shutil.which("oscsend"), reason="liblo-tools (oscsend, oscdump) not installed")
def test_synd_run_follows_a_midi_knob(jack, tmp_path):
    """The real daemon with its default MIDI set-up (a virtual port, the shipped mapping):
    a second JACK client turns knob CC 21 (intensity) and the OSC feedback reports it."""
    from tests.helpers.osc import OscDump, free_udp_port

    song = tmp_path / "song.wav"
    write_wav(song, beats(4.0), RATE)
    dump = OscDump()
    proc = start_daemon(
        "--input",
        str(song),
        "--loop",
        "--output",
        f"record:{tmp_path / 'r.mp4'}",
        "--size",
        "160x96",
        "--osc",
        f"127.0.0.1:{free_udp_port()}",
        "--osc-feedback",
        f"127.0.0.1:{dump.port}",
        "--midi",
        "virtual",
        "--midi-api",
        "jack",
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    try:
        wait_log(proc, lambda: dump.messages("/synd/status"), timeout=60)
        knob = jack.client(jack.rtmidi.MidiOut, "knobs")
        ports = [p for p in knob.get_ports() if "synd" in p and "out" not in p.lower()]
        assert ports, knob.get_ports()
        knob.open_port(knob.get_ports().index(ports[0]))
        for value in (10, 64, 32):
            knob.send_message([0xB0, 21, value])
            time.sleep(0.05)
        wait_log(
            proc,
            lambda: any(abs(float(v[0]) - 32 / 127 * 2) < 0.02 for _, v in dump.messages("/synd/intensity")),
            timeout=10,
        )
    finally:
        code, err, _ = stop_daemon(proc)
        dump.close()
    assert code == 0, err
    assert "MIDI: listening on a virtual port named synd" in err and "Traceback" not in err
