"""MIDI with real parts: the `jack` fixture (a JACK server of the test's own, dummy
driver, and the test's MIDI clients on it), `Pads` (the test's controller, a JACK client
sending to synd's input), `opening` (retries a client JACK refuses on a busy machine),
`controller` (a Controller on a `FakeEngine` that records its calls), `mapping` (a MIDI
mapping from TOML text) and the status bytes `CC`, `NOTE_ON`, `NOTE_OFF`."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
import time

import pytest

from synd import midi as M
from synd.control import Controller
from synd.presets import Look
from tests.helpers.wait import wait_for

JACKD = shutil.which("jackd")
_servers = itertools.count()
CC, NOTE_ON, NOTE_OFF = 0xB0, 0x90, 0x80


class FakeEngine:
    """Records what the Controller asks of the engine (the engine methods it calls)."""

    def __init__(self):
        self.look = Look()
        self.model_name = "a"
        self.outputs = []
        self.on_beat = None
        self.crossfade = 0.0
        self.calls = []

    def set_look(self, **changes):
        self.calls.append(("set_look", changes))

    def set_crossfade(self, x):
        self.crossfade = x
        self.calls.append(("set_crossfade", x))

    def set_gain(self, gain):
        self.calls.append(("set_gain", gain))

    def set_flag(self, name, on):
        self.calls.append(("set_flag", name, on))

    def set_rotation(self, seconds, rotate):
        self.calls.append(("set_rotation", seconds))

    def switch_to(self, load, name, seconds, done=None):
        self.calls.append(("switch_to", name, seconds))

    def load_slot(self, which, load, name, done=None):
        self.calls.append(("load_slot", which, name))

    def fade(self, x, seconds):
        self.calls.append(("fade", x, seconds))

    def cut_on_beat(self):
        self.calls.append(("cut_on_beat",))

    def mix_state(self):
        return {"crossfade": self.crossfade, "a": self.model_name, "b": None, "mix": "crossfade"}


def controller(presets=("a", "b", "c")):
    """A Controller on a `FakeEngine` (`controller().engine.calls`), current preset "a"."""
    engine = FakeEngine()
    return Controller(
        engine, list(presets), load=lambda name: (None, Look()), current="a", rng=random.Random(0)
    )


def mapping(text):
    """A MIDI mapping parsed from TOML `text` (errors name 'test.toml')."""
    return M.loads_mapping(text, "MIDI mapping 'test.toml'")


def opening(open_client, attempts=3):
    """JACK 2 on an overloaded machine (several test runs on two cores) now and then refuses
    to open a client ("Cannot open ... client"); that is the test rig, so try again."""
    for attempt in range(attempts):
        try:
            return open_client()
        except OSError as e:  # rtmidi.SystemError is an OSError; MidiError wraps it
            if "JACK server not running" not in str(e) or attempt == attempts - 1:
                raise
        except M.MidiError as e:
            if "JACK server not running" not in str(e) or attempt == attempts - 1:
                raise
        time.sleep(0.2)


class Jack:
    """A JACK server of its own, and the test's own MIDI clients on it."""

    def __init__(self, name):
        import rtmidi

        self.rtmidi = rtmidi
        self.name = name
        self.clients = []
        self.surfaces = []

    def surface(self, ctl, **kw):
        """A started MidiControl on this server (stopped before the server goes)."""
        kw.setdefault("api", "jack")
        midi = M.MidiControl(ctl, **kw)
        self.surfaces.append(midi)
        return opening(midi.start)

    def client(self, cls, name):
        c = opening(lambda: cls(self.rtmidi.API_UNIX_JACK, name=name))
        self.clients.append(c)
        return c

    def close(self):
        """Every client goes before the server does (libjack does not survive a server
        that vanishes under its clients)."""
        for midi in self.surfaces:
            midi.stop()
        for c in self.clients:
            c.close_port()
            c.delete()


@pytest.fixture
def jack(monkeypatch, tmp_path):
    """A JACK server (dummy driver) for this test, as the default server of this process;
    yields its `Jack`. Skips without jackd or python-rtmidi."""
    if JACKD is None:
        pytest.skip("jackd is not installed (Debian: apt install jackd2)")
    pytest.importorskip("rtmidi", reason="python-rtmidi is not installed (pip install 'synethesia[live]')")
    name = f"synd-test-{os.getpid()}-{next(_servers)}"
    log_path = tmp_path / "jackd.log"
    with open(log_path, "wb") as log_file:
        # -t: a generous client timeout, so that a busy test machine does not get the
        # test's clients thrown out of the graph
        proc = subprocess.Popen(
            [JACKD, "-n", name, "--no-realtime", "-t", "10000", "-d", "dummy", "-r", "48000", "-p", "1024"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    server = None
    try:
        server = Jack(name)
        wait_for(lambda: proc.poll() is not None or _server_up(server), 10, "the JACK server")
        if proc.poll() is not None:
            raise AssertionError(f"jackd exited: {log_path.read_text(errors='replace')[-500:]}")
        yield server
    finally:
        if server is not None:
            server.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        # Shown with a failing test's output: what the server saw (timeouts, lost clients).
        lines = log_path.read_text(errors="replace").splitlines()
        print("jackd:", *[ln for ln in lines if "XRun" not in ln][-30:], sep="\n  ")


def _server_up(server):
    try:
        server.rtmidi.MidiOut(server.rtmidi.API_UNIX_JACK, name="probe-up").delete()
        return True
    except Exception:  # noqa: BLE001 - not yet
        return False


class Pads:
    """The test's MIDI controller: a JACK client that sends to synd's input. `flush()`
    waits until synd's worker has taken every message sent so far."""

    def __init__(self, jack, midi, port=None, name="pads"):
        self.midi = midi
        self.out = jack.client(jack.rtmidi.MidiOut, name)
        if port is not None:  # synd opened our virtual port itself
            self.out.open_virtual_port(port)
            self._handshake()
            return
        ports = self.out.get_ports()
        mine = [i for i, p in enumerate(ports) if p.endswith(f":{midi.client_name}")]
        assert mine, f"synd's virtual port is not among {ports}"
        self.out.open_port(mine[0], "to synd")
        self._handshake()

    def _handshake(self):
        """Send an unmapped CC (channel 16, CC 119) until synd has received one."""
        deadline, before = time.monotonic() + 10, self.midi.received
        while self.midi.received == before:
            assert time.monotonic() < deadline, "no message reached synd"
            self.out.send_message([CC | 15, 119, 0])
            time.sleep(0.05)
        self.sent = self.midi.received

    def send(self, *message, channel=1, counted=True):
        status, *data = message
        if status < 0xF0:
            status |= channel - 1
        self.out.send_message([status, *data])
        self.sent += counted

    def cc(self, number, value, channel=1):
        self.send(CC, number, value, channel=channel)
        self.flush()

    def note(self, number, on=True, channel=1, velocity=100):
        self.send(NOTE_ON, number, velocity, channel=channel) if on else self.send(
            NOTE_OFF, number, 0, channel=channel
        )
        self.flush()

    def flush(self):
        wait_for(lambda: self.midi.received >= self.sent, 10, "synd to take the messages")
