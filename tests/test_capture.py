"""Audio capture: the ring buffer, input selection, and real capture from private
PulseAudio servers (system audio from a null sink's monitor, a pipe-source microphone,
a server killed and restarted mid-capture), and file inputs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from scipy.signal import firwin, upfirdn

from synd.audio import load_audio, write_wav
from synd.capture import (
    AudioRing,
    CaptureError,
    DeviceInput,
    FileInput,
    list_inputs,
    open_input,
    parse_input,
    refresh_devices,
)
from tests.helpers.audio import dominant_hz, tone
from tests.helpers.daemon import StderrLog
from tests.helpers.pulse import requires_pulse
from tests.helpers.wait import wait_for

RATE = 24000
WAIT_S = 10.0


def collect(inp, seconds: float | None = None, until=None, max_s: float = 20.0) -> np.ndarray:
    """Drain inp.ring for `seconds` of wall time, or until `until()` is true."""
    parts = []
    t0 = time.monotonic()
    while True:
        x, _ = inp.ring.read_new(RATE * 5)
        parts.append(x)
        elapsed = time.monotonic() - t0
        if (seconds is not None and elapsed >= seconds) or (until is not None and until()):
            break
        assert elapsed < max_s, "collect ran too long"
        time.sleep(0.02)
    parts.append(inp.ring.read_new(RATE * 5)[0])
    return np.concatenate(parts)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def timed_stop(inp, timeout: float = 2.0) -> float:
    t0 = time.monotonic()
    inp.stop(timeout=timeout)
    return time.monotonic() - t0


# -- AudioRing ------------------------------------------------------------------------


def test_ring_wraps_around_in_order():
    ring = AudioRing(0.1, 1000, 1)  # 100 frames
    assert ring.capacity == 100
    x = np.arange(170, dtype=np.float32)
    ring.write(x[:70])
    got, _ = ring.read_new(1000)
    np.testing.assert_array_equal(got, x[:70])
    ring.write(x[70:110])
    ring.write(x[110:170])  # crosses the end of the buffer
    got, _ = ring.read_new(1000)
    np.testing.assert_array_equal(got, x[70:170])
    assert ring.read_new(1000)[0].size == 0
    assert ring.skipped == 0 and ring.overruns == 0


def test_ring_downmixes_to_mono():
    ring = AudioRing(1.0, 1000, 2)
    block = np.stack([np.arange(10), -2 * np.arange(10)], axis=1).astype(np.float32)
    ring.write(block)
    ring.write(np.full((5, 1), 3.0, np.float32))  # mono block into a stereo ring
    got, _ = ring.read_new(100)
    np.testing.assert_allclose(got, np.r_[-0.5 * np.arange(10), np.full(5, 3.0)])
    assert got.dtype == np.float32 and got.ndim == 1


def test_ring_delay_and_newest_time():
    ring = AudioRing(1.0, 1000, 1)
    x = np.arange(200, dtype=np.float32)
    ring.write(x[:100], newest_time=50.0)  # frame 99 captured at t = 50.0
    got, newest = ring.read_new(1000, delay_samples=30)
    np.testing.assert_array_equal(got, x[:70])
    assert newest == pytest.approx(50.0 - 30 / 1000)  # frame 69
    ring.write(x[100:110], newest_time=50.01)
    got, newest = ring.read_new(1000, delay_samples=30)
    np.testing.assert_array_equal(got, x[70:80])
    assert newest == pytest.approx(50.01 - 30 / 1000)
    got, _ = ring.read_new(1000, delay_samples=50)  # a longer delay: nothing new yet
    assert got.size == 0
    ring.write(x[110:200], newest_time=50.1)
    got, _ = ring.read_new(1000, delay_samples=50)
    np.testing.assert_array_equal(got, x[80:150])


def test_ring_counts_skipped_and_overruns():
    ring = AudioRing(1.0, 1000, 1)
    x = np.arange(300, dtype=np.float32)
    ring.write(x)
    got, _ = ring.read_new(40)  # only the newest 40
    np.testing.assert_array_equal(got, x[-40:])
    assert ring.skipped == 260 and ring.overruns == 0

    small = AudioRing(0.1, 1000, 1)  # 100 frames
    y = np.arange(250, dtype=np.float32)
    for i in range(0, 250, 10):
        small.write(y[i : i + 10])
    got, _ = small.read_new(1000)
    assert small.overruns == 150
    np.testing.assert_array_equal(got, y[-100:])
    small.write(y[:5])
    np.testing.assert_array_equal(small.read_new(1000)[0], y[:5])
    assert small.overruns == 150 and small.skipped == 0


def test_ring_drops_frames_overwritten_during_a_read():
    ring = AudioRing(0.1, 1000, 1)  # 100 frames
    y = np.arange(130, dtype=np.float32)
    ring.write(y[:100])
    copy = ring._copy

    def copy_while_the_writer_runs(start, end):
        out = copy(start, end)
        ring.write(y[100:130])  # lands on frames 0..29 while the reader copies
        return out

    ring._copy = copy_while_the_writer_runs
    got, _ = ring.read_new(1000)
    np.testing.assert_array_equal(got, y[30:100])
    assert ring.overruns == 30
    ring._copy = copy
    np.testing.assert_array_equal(ring.read_new(1000)[0], y[100:130])


@pytest.mark.parametrize("src", [48000, 44100])
def test_ring_resamples_as_one_stream(src):
    """Pieces of any size give the same output as filtering the whole signal at once."""
    rng = np.random.default_rng(1)
    n = src * 2
    x = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / src) + 0.05 * rng.standard_normal(n)).astype(
        np.float32
    )
    ring = AudioRing(1.0, src, 1, out_rate=RATE)
    pos, parts = 0, []
    while pos < n:
        k = int(rng.integers(1, 3000))
        ring.write(x[pos : pos + k])
        pos += k
        if rng.random() < 0.5:
            parts.append(ring.read_new(RATE)[0])
    parts.append(ring.read_new(RATE)[0])
    got = np.concatenate(parts)
    assert ring.skipped == 0 and ring.overruns == 0
    assert abs(len(got) - n * RATE / src) <= 1
    from fractions import Fraction

    r = Fraction(RATE, src)
    half = 10 * max(r.numerator, r.denominator)
    h = firwin(2 * half + 1, 1 / max(r.numerator, r.denominator), window=("kaiser", 5.0))
    want = upfirdn(h * r.numerator, x.astype(np.float64), r.numerator, r.denominator)[: len(got)]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert dominant_hz(got[RATE // 2 :]) == pytest.approx(1000, abs=1)


# -- parse_input ------------------------------------------------------------------------


def test_parse_input(tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, tone(440, 0.1, RATE), RATE)
    assert parse_input(None)["kind"] == "auto"
    assert parse_input("system")["kind"] == "system"
    assert parse_input("Mic")["kind"] == "mic"
    assert parse_input("3") == {"kind": "device", "device": 3, "path": None}
    assert parse_input("fakemic") == {"kind": "device", "device": "fakemic", "path": None}
    assert parse_input(str(song)) == {"kind": "file", "device": None, "path": str(song)}
    with pytest.raises(CaptureError, match="no such audio file"):
        parse_input(str(tmp_path / "missing.mp3"))


# -- real capture from PulseAudio -----------------------------------------------------


@requires_pulse
def test_system_audio_captures_a_tone(pulse, tmp_path):
    wav = tmp_path / "tone.wav"
    write_wav(wav, tone(1000, 1.5, 48000), 48000)
    inp = open_input("system", rate=RATE)
    assert isinstance(inp, DeviceInput)
    assert "monitor of sink 'virt'" in inp.description
    assert inp.sample_rate == RATE and inp.ring.out_rate == RATE
    inp.start()
    try:
        wait_for(lambda: inp.ring.written > 0, what="the first captured block")
        before = collect(inp, 0.5)
        proc = pulse.play(wav, wait=False)
        during = collect(inp, until=lambda: proc.poll() is not None)
        after = collect(inp, 0.6)[-RATE // 4 :]
        status = inp.status()
    finally:
        assert timed_stop(inp) < 2.5
    assert proc.returncode == 0
    freq = dominant_hz(during)
    print(
        f"system capture: {freq:.2f} Hz, rms before {rms(before):.4f} during "
        f"{rms(during):.3f} after {rms(after):.4f}, status {status}"
    )
    assert freq == pytest.approx(1000, abs=5)
    assert rms(during) > 0.1
    assert rms(before) < 0.01 and rms(after) < 0.01
    assert status["connected"] is True and status["reconnects"] == 0
    assert isinstance(status["overflows"], int)


@requires_pulse
def test_pipe_microphone_captures_a_tone(pulse):
    fifo = pulse.add_pipe_mic("fakemic")
    with pulse.feed(fifo, tone(440, 1.0, 48000), loop=True):
        inp = DeviceInput("device", "fakemic", rate=RATE)
        assert "fakemic" in inp.description
        # loading a pipe source makes it the server's default source: "mic" records it too
        assert "fakemic" in DeviceInput("mic", rate=RATE).description
        inp.start()
        try:
            wait_for(lambda: inp.ring.written > RATE // 2, what="mic audio")
            audio = collect(inp, 1.2)
        finally:
            assert timed_stop(inp) < 2.5
    loud = audio[np.abs(audio) > 0][-RATE:]
    freq = dominant_hz(loud)
    print(f"mic capture: {freq:.2f} Hz, rms {rms(loud):.3f}")
    assert len(loud) >= RATE // 2
    assert freq == pytest.approx(440, abs=5)
    assert rms(loud) > 0.2


@requires_pulse
def test_device_selection_and_errors(pulse):
    pulse.add_pipe_mic("fakemic1")
    pulse.add_pipe_mic("fakemic2")
    inputs = list_inputs()
    names = {d["name"]: d for d in inputs}
    assert {"pulse", "virt.monitor", "fakemic1", "fakemic2"} <= set(names)
    assert set(names["pulse"]) >= {"name", "index", "channels", "default", "host_api"}
    assert isinstance(names["pulse"]["index"], int) and names["virt.monitor"]["index"] is None

    by_index = open_input(str(names["pulse"]["index"]), rate=RATE)
    assert f"device {names['pulse']['index']} 'pulse'" in by_index.description
    by_name = DeviceInput("device", "VIRT.mon", rate=RATE)  # case-insensitive substring
    assert "'virt.monitor'" in by_name.description

    with pytest.raises(CaptureError) as err:
        DeviceInput("device", "nosuchdevice", rate=RATE)
    msg = str(err.value)
    assert "\n" not in msg and "nosuchdevice" in msg
    assert "'virt.monitor'" in msg and "'pulse'" in msg and "'fakemic2'" in msg

    with pytest.raises(CaptureError, match="ambiguous") as err:
        open_input("fakemic", rate=RATE)
    assert "'fakemic1'" in str(err.value) and "'fakemic2'" in str(err.value)
    assert "'virt.monitor'" not in str(err.value)

    with pytest.raises(CaptureError, match="no input device 99"):
        open_input("99", rate=RATE)


@requires_pulse
def test_open_input_default_prefers_system_audio(pulse):
    inp = open_input(None, rate=RATE)
    assert inp.description.startswith("system audio")


@requires_pulse
def test_capture_survives_a_server_restart(pulse, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="synd.capture")
    wav = tmp_path / "tone.wav"
    write_wav(wav, tone(1000, 1.0, 48000), 48000)
    inp = DeviceInput("system", rate=RATE)
    inp.start()
    errors = []

    def drain():  # the engine keeps reading throughout
        while not done.is_set():
            try:
                inp.ring.read_new(RATE)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            time.sleep(0.02)

    done = threading.Event()
    reader = threading.Thread(target=drain, daemon=True)
    try:
        wait_for(lambda: inp.ring.written > 0, what="the first captured block")
        reader.start()
        pulse.kill()
        lost_after = wait_for(lambda: not inp.status()["connected"], what="the loss")
        time.sleep(1.5)  # a few failed retries while the server is down
        assert not inp.status()["connected"]
        # PortAudio's fresh device list has no 'pulse' now: reconnecting needs a re-init
        assert "pulse" not in [d["name"] for d in list_inputs()]
        written = inp.ring.written
        pulse.start()
        resumed_after = wait_for(lambda: inp.status()["connected"], what="the reconnect")
        wait_for(lambda: inp.ring.written > written + RATE // 10, what="new samples")
        done.set()
        reader.join()
        inp.ring.read_new(RATE * 5)  # drop what came before
        proc = pulse.play(wav, wait=False)
        audio = collect(inp, until=lambda: proc.poll() is not None)
        status = inp.status()
    finally:
        done.set()
        assert timed_stop(inp) < 2.5
    print(
        f"loss noticed after {lost_after:.2f} s, capture resumed {resumed_after:.2f} s after "
        f"the server restarted; tone after restart {dominant_hz(audio):.2f} Hz"
    )
    assert errors == []
    assert status["reconnects"] == 1 and status["connected"]
    assert dominant_hz(audio) == pytest.approx(1000, abs=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "synd.capture"]
    lost = [m for m in lines if m.startswith("capture lost:")]
    resumed = [m for m in lines if m.startswith("capture resumed:")]
    assert len(lost) == 1 and len(resumed) == 1, lines
    assert "\n" not in lost[0] and "virt" in lost[0]


@requires_pulse
def test_stop_never_hangs(pulse):
    inp = DeviceInput("system", rate=RATE)
    assert timed_stop(inp) < 0.5  # never started
    inp.start()
    wait_for(lambda: inp.ring.written > 0, what="audio")
    assert timed_stop(inp) < 2.5  # running
    assert timed_stop(inp) < 0.5  # twice
    assert not inp.status()["connected"]

    # PortAudio itself hangs (seen with stop(); here abort() blocks): stop still returns
    stuck = DeviceInput("system", rate=RATE)
    stuck.start()
    wait_for(lambda: stuck.ring.written > 0, what="audio")
    release = threading.Event()

    class Hanging:
        def __init__(self, stream):
            self._s = stream

        def __getattr__(self, name):
            return getattr(self._s, name)

        def __hash__(self):  # stands for the stream in the module's set of open streams
            return hash(self._s)

        def __eq__(self, other):
            return other is self or other is self._s

        def abort(self):
            release.wait(10)
            self._s.abort()

    real = stuck._stream
    stuck._stream = Hanging(real)
    assert timed_stop(stuck, timeout=1.0) < 1.3
    release.set()
    wait_for(lambda: real.closed, what="the late close")

    dead = DeviceInput("system", rate=RATE)
    dead.start()
    wait_for(lambda: dead.ring.written > 0, what="audio")
    pulse.kill()
    assert timed_stop(dead) < 2.5  # the server just died, the supervisor may not know yet

    pulse.start()
    dead2 = DeviceInput("system", rate=RATE)
    dead2.start()
    wait_for(lambda: dead2.ring.written > 0, what="audio")
    pulse.kill()
    wait_for(lambda: not dead2.status()["connected"], what="the loss")
    time.sleep(1.2)  # retrying
    assert timed_stop(dead2) < 2.5
    assert timed_stop(dead2) < 0.5


# Capture in a process of its own: it starts, says so, stops when told, says so, exits.
CAPTURE_CHILD = """
import logging, sys, time
logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
from synd.capture import DeviceInput
inp = DeviceInput("system", rate=24000)
inp.start()
while inp.ring.written == 0:
    time.sleep(0.02)
print("capturing", flush=True)
sys.stdin.readline()
inp.stop()
print("stopped", flush=True)
"""


@requires_pulse
def test_a_stream_stuck_on_a_frozen_server_does_not_keep_the_process_alive(pulse):
    """A sound server that freezes under a running stream (SIGSTOP here; a PulseAudio
    killed mid-capture did the same now and then) blocks the stream's abort for ever
    inside the ALSA pulse plugin. stop() returns anyway, and so does the process: it used
    to hang at exit, in sounddevice's exit handler terminating PortAudio, which waited for
    that same stream."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CAPTURE_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = StderrLog(proc)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "capturing", err.text()
        os.kill(pulse.proc.pid, signal.SIGSTOP)
        # the supervisor notices the stall and its close of the stream gets stuck
        err.wait(lambda text: "closing the audio stream did not finish" in text, timeout=60)
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=10)  # the bound the daemon tests give a stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pulse.kill()  # SIGKILL ends a stopped server too
    err.join(5)
    assert proc.returncode == 0, err.text()
    assert proc.stdout.read().strip() == "stopped"


def test_no_audio_device_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PULSE_SOURCE", raising=False)
    assert refresh_devices(), "a capture stream of an earlier test is still open"
    with pytest.raises(CaptureError) as err:
        open_input(None, rate=RATE)
    msg = str(err.value)
    print(msg)
    assert "\n" not in msg
    assert msg.startswith("no audio input found")
    assert "--input FILE" in msg and "PulseAudio" in msg
    assert list_inputs() == []
    with pytest.raises(CaptureError, match="system audio is unavailable"):
        open_input("system", rate=RATE)


# -- FileInput ------------------------------------------------------------------------


def song_file(path, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = 0.3 * rng.standard_normal(int(seconds * RATE)) * np.sin(np.linspace(0, 20, int(seconds * RATE)))
    write_wav(path, x, RATE)
    return load_audio(path, RATE)


def test_file_input_real_time_and_content(tmp_path):
    song = song_file(tmp_path / "song.wav", 2.5)
    inp = FileInput(tmp_path / "song.wav", rate=RATE)
    assert inp.sample_rate == RATE and "song.wav" in inp.description
    inp.start()
    t0 = time.monotonic()
    parts = []
    try:
        time.sleep(1.0)
        fed_s = inp.ring.written / RATE
        wall = time.monotonic() - t0
        while not inp.finished:
            parts.append(inp.ring.read_new(RATE * 5)[0])
            assert time.monotonic() - t0 < WAIT_S
            time.sleep(0.05)
        parts.append(inp.ring.read_new(RATE * 5)[0])
    finally:
        assert timed_stop(inp) < 2.5
    print(f"file input: {fed_s:.3f} s fed after {wall:.3f} s")
    assert 0.6 * wall <= fed_s <= wall + 0.3
    got = np.concatenate(parts)
    np.testing.assert_array_equal(got, song)
    assert inp.finished and inp.status()["finished"]
    assert inp.ring.skipped == 0 and inp.ring.overruns == 0


def test_file_input_loops(tmp_path):
    song = song_file(tmp_path / "short.wav", 0.4)
    inp = FileInput(tmp_path / "short.wav", rate=RATE, loop=True)
    inp.start()
    try:
        wait_for(lambda: inp.ring.written > 2.5 * len(song), what="three passes")
        got = inp.ring.read_new(RATE * 5)[0]
    finally:
        assert timed_stop(inp) < 2.5
    assert not inp.finished
    np.testing.assert_array_equal(got, np.tile(song, 4)[: len(got)])


@requires_pulse
def test_file_input_plays_through_the_speakers(pulse, tmp_path):
    """What the file input feeds (what is seen) is what the speakers play at that moment."""
    seconds, f0, f1 = 2.0, 300.0, 3300.0  # a chirp: its frequency tells the song position
    t = np.arange(int(seconds * RATE)) / RATE
    write_wav(
        tmp_path / "chirp.wav", 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))), RATE
    )
    song = load_audio(tmp_path / "chirp.wav", RATE)
    ear = DeviceInput("system", rate=RATE)  # listens to what the file input plays
    ear.start()
    wait_for(lambda: ear.ring.written > 0, what="the first captured block")
    ear.ring.read_new(RATE * 5)
    inp = open_input(str(tmp_path / "chirp.wav"), rate=RATE, play=True)
    inp.start()
    parts, gaps, loud = [], [], 0
    try:
        assert inp.playing
        t0 = time.monotonic()
        while not inp.finished:
            time.sleep(0.05)
            parts.append(inp.ring.read_new(RATE * 5)[0])
            heard = ear.ring.read_new(RATE * 5)[0]
            loud += int(np.sum(np.abs(heard) > 0.05))
            if len(heard) >= 600 and rms(heard) > 0.1:
                pos = (dominant_hz(heard) - f0) / (f1 - f0) * seconds
                gaps.append(inp.position - pos)
            assert time.monotonic() - t0 < WAIT_S
        parts.append(inp.ring.read_new(RATE * 5)[0])
    finally:
        assert timed_stop(inp) < 2.5
        assert timed_stop(ear) < 2.5
    np.testing.assert_array_equal(np.concatenate(parts), song)
    gap = float(np.median(gaps))
    print(
        f"file played: {loud / len(song):.0%} heard, position fed - position heard: median "
        f"{1000 * gap:+.0f} ms, range {1000 * min(gaps):+.0f}..{1000 * max(gaps):+.0f} ms"
    )
    # Heard throughout (nothing swallowed at the start), and in step with the ring.
    assert loud >= 0.8 * len(song)
    assert abs(gap) < 0.15 and float(np.percentile(np.abs(gaps), 90)) < 0.15


def test_file_input_without_output_device_plays_silently(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    song = song_file(tmp_path / "song.wav", 0.3)
    inp = FileInput(tmp_path / "song.wav", rate=RATE, play=True)
    with caplog.at_level(logging.WARNING, logger="synd.capture"):
        inp.start()
    try:
        assert not inp.playing
        wait_for(lambda: inp.finished, what="the end of the file")
    finally:
        assert timed_stop(inp) < 2.5
    np.testing.assert_array_equal(inp.ring.read_new(RATE)[0], song)
    warnings = [r.getMessage() for r in caplog.records if r.name == "synd.capture"]
    assert len(warnings) == 1 and "continuing without sound" in warnings[0]
    assert "\n" not in warnings[0]


def test_file_input_errors_are_capture_errors(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(CaptureError) as err:
        open_input(str(tmp_path / "bad.wav"))
    assert "bad.wav" in str(err.value) and "\n" not in str(err.value)
