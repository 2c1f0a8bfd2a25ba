"""OSC for tests: `osc` (a message's bytes, built with python-osc), `Client` (a UDP socket
that sends and reads replies), liblo's `oscsend` and `OscDump` (oscdump on a free port),
`free_udp_port`, and `RecordingEngine` (an engine's control side that records every call)
with the `PRESETS` it is tested with.

Importing this module skips the importing test module (or test) when python-osc is not
installed, as the OSC tests do.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

pytest.importorskip("pythonosc")
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from synd.presets import Look

PRESETS = ["calm", "storm", "neon"]


class RecordingEngine:
    """Stands in for synd.engine.Engine's control side: records every call."""

    def __init__(self):
        self.look = Look()
        self.model_name = "calm"
        self.outputs = [
            SimpleNamespace(name="ndi", enabled=True),
            SimpleNamespace(name="record", enabled=True),
        ]
        self.calls = []
        self.crossfade = 0.0
        self.slots = {"a": "calm", "b": None}
        self.on_beat = None
        self._lock = threading.Lock()

    def _record(self, *call):
        with self._lock:
            self.calls.append(call)

    def recorded(self, method):
        with self._lock:
            return [c[1:] for c in self.calls if c[0] == method]

    def set_look(self, **changes):
        self.look = replace(self.look, **changes)
        self._record("set_look", changes)

    def set_crossfade(self, x):
        self.crossfade = x
        self._record("set_crossfade", x)

    def set_gain(self, gain):
        self._record("set_gain", gain)

    def set_flag(self, name, on):
        self._record("set_flag", name, on)

    def set_rotation(self, seconds, rotate):
        self._record("set_rotation", seconds)

    def switch_to(self, load, name, seconds, done=None):
        self._record("switch_to", name, seconds)

    def load_slot(self, slot, load, name):
        self.slots[slot] = name
        self._record("load_slot", slot, name)

    def fade(self, target, seconds):
        self.crossfade = target
        self._record("fade", target, seconds)

    def cut_on_beat(self):
        self._record("cut_on_beat")

    def mix_state(self):
        return {"crossfade": self.crossfade, "a": self.slots["a"], "b": self.slots["b"], "mix": "a"}

    def status(self):
        return {"fps": 29.5, "latency_ms_median": 12.5}


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def osc(address, *args) -> bytes:
    """An OSC message to `address` with `args` (types as python-osc infers them)."""
    builder = OscMessageBuilder(address=address)
    for a in args:
        builder.add_arg(a)
    return builder.build().dgram


class Client:
    """A plain UDP socket that sends OSC and reads replies (parsed with python-osc)."""

    def __init__(self, server, host="127.0.0.1"):
        self.to = server.address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(5.0)

    def send(self, address, *args):
        self.sock.sendto(osc(address, *args), self.to)

    def raw(self, data):
        self.sock.sendto(data, self.to)

    def ask(self, address):
        self.send(address)
        msg = OscMessage(self.sock.recvfrom(65536)[0])
        return msg.address, msg.params

    def close(self):
        self.sock.close()


class OscDump:
    """liblo's oscdump on a free UDP port, its lines collected by a reader thread."""

    def __init__(self):
        self.port = free_udp_port()
        self.proc = subprocess.Popen(
            ["oscdump", "-L", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        # Wait until it listens: probe until a probe comes out.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            deadline = time.monotonic() + 10
            while not self.messages("/probe"):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("oscdump did not start")
                probe.sendto(osc("/probe"), ("127.0.0.1", self.port))
                time.sleep(0.05)

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def messages(self, address):
        """[(types, [values])] of every message to `address` so far."""
        with self._lock:
            lines = list(self.lines)
        found = []
        for line in lines:
            parts = shlex.split(line)  # "<timetag> /address types values..."
            if len(parts) >= 2 and parts[1] == address:
                types = parts[2] if len(parts) > 2 else ""
                found.append((types, parts[3:]))
        return found

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)


def oscsend(port, address, types="", *values):
    """Send one message to 127.0.0.1:`port` with liblo's oscsend (another OSC
    implementation than synd's); `types` is its type string ("f", "sf", ...)."""
    subprocess.run(
        ["oscsend", "127.0.0.1", str(port), address, types, *map(str, values)],
        check=True,
        timeout=10,
        capture_output=True,
    )
