"""A private PulseAudio server for tests: the `pulse` fixture, the `requires_pulse` mark,
and `pulse_server()` for code outside a fixture.

Usage, as a pytest fixture (tests/conftest.py loads this module through `pytest_plugins`,
so a test only names it)::

    from tests.helpers.pulse import requires_pulse

    @requires_pulse
    def test_something(pulse):
        pulse.play(wav_path)                # into the null sink "virt"
        fifo = pulse.add_pipe_mic("fakemic")
        with pulse.feed(fifo, tone_48k):    # a live "microphone"
            ...
        pulse.kill(); pulse.restart()

or as a context manager: ``with pulse_server() as srv: ...``.

The server runs in a short temporary folder (a unix socket path must stay under 108
bytes) with a null sink ``virt`` (48000 Hz, stereo) and module-always-sink. While it is
active, PULSE_SERVER, PULSE_RUNTIME_PATH, PULSE_STATE_PATH and HOME point at it in
``os.environ`` (so this process and its children talk to it, PortAudio's ALSA ``pulse``
device included); PULSE_SOURCE and PULSE_SINK are cleared. Everything is restored and
the server stopped at the end.

PortAudio reads its device list when it is initialised (at ``import sounddevice``):
code that imported sounddevice before the server started must re-initialise PortAudio
(``synd.capture.refresh_devices()``) to see the ``pulse`` device.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

__all__ = ["PulseServer", "MicFeeder", "pulse_server", "pulse", "requires_pulse", "PULSEAUDIO"]

PULSEAUDIO = shutil.which("pulseaudio")
requires_pulse = pytest.mark.skipif(
    PULSEAUDIO is None or shutil.which("pactl") is None,
    reason="pulseaudio/pactl not installed (Debian: pulseaudio pulseaudio-utils libasound2-plugins)",
)

SINK = "virt"
SINK_RATE = 48000
_ENV_KEYS = ("PULSE_SERVER", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH", "HOME", "PULSE_SOURCE", "PULSE_SINK")


class PulseServer:
    """One private PulseAudio server in folder `root` (see the module docstring).

    `env` holds the variables a client needs; `log` is the server's log file.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.socket = self.root / "native"
        self.log = self.root / "log"
        self.env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.root),
            "PULSE_STATE_PATH": str(self.root),
            "HOME": str(self.root),
        }
        self.proc: subprocess.Popen | None = None
        self._feeders: list[MicFeeder] = []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers (about 0.1 s here)."""
        if self.running:
            return
        env = os.environ | self.env
        self.proc = subprocess.Popen(
            [
                PULSEAUDIO or "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                f"--log-target=file:{self.log}",
                f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                f"--load=module-null-sink sink_name={SINK} rate={SINK_RATE}",
                "--load=module-always-sink",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with {self.proc.returncode}; see {self.log}")
            if self.socket.exists() and _quiet_ok(["pactl", "info"], env):
                return
            time.sleep(0.02)
        raise RuntimeError(f"pulseaudio did not answer within {timeout:g} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the server (a crash: clients see the connection die)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, timeout: float = 10.0) -> None:
        """Kill the server if it runs and start a fresh one on the same socket."""
        self.kill()
        self.start(timeout)

    def stop(self) -> None:
        """Stop the feeders and the server (SIGTERM, then SIGKILL)."""
        for feeder in self._feeders:
            feeder.stop()
        self._feeders.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def pactl(self, *args: str) -> str:
        """Run pactl against this server; returns its stdout (raises on failure)."""
        return subprocess.run(
            ["pactl", *args],
            env=os.environ | self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def play(self, wav: str | os.PathLike, wait: bool = True, device: str = SINK) -> subprocess.Popen:
        """Play a sound file into `device` (the null sink) with paplay.

        With `wait` (default) returns when playback ended; otherwise returns the running
        process (the caller waits or kills it).
        """
        proc = subprocess.Popen(
            ["paplay", f"--device={device}", os.fspath(wav)],
            env=os.environ | self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if wait:
            _, err = proc.communicate(timeout=60)
            if proc.returncode:
                raise RuntimeError(f"paplay failed: {err.decode(errors='replace').strip()}")
        return proc

    def add_pipe_mic(self, name: str = "fakemic", rate: int = SINK_RATE, channels: int = 2) -> Path:
        """Load a pipe source `name` (s16le); returns the FIFO to write PCM into.

        The pipe source only produces audio while something writes into the FIFO (use
        `feed`). Loading it makes it the server's default source.
        """
        fifo = self.root / f"{name}.fifo"
        self.pactl(
            "load-module",
            "module-pipe-source",
            f"source_name={name}",
            f"file={fifo}",
            "format=s16le",
            f"rate={rate}",
            f"channels={channels}",
        )
        return fifo

    def feed(
        self,
        fifo: str | os.PathLike,
        samples: np.ndarray,
        rate: int = SINK_RATE,
        channels: int = 2,
        loop: bool = True,
    ) -> MicFeeder:
        """Start writing float `samples` (mono, [-1, 1]) into a pipe mic in real time.

        Returns the running `MicFeeder` (a context manager; stopped by `stop()` too).
        """
        feeder = MicFeeder(fifo, samples, rate, channels, loop)
        self._feeders.append(feeder)
        return feeder


class MicFeeder:
    """A thread writing s16le PCM into a pipe source's FIFO, paced by the clock."""

    def __init__(
        self, fifo: str | os.PathLike, samples: np.ndarray, rate: int, channels: int, loop: bool
    ) -> None:
        pcm = np.round(np.clip(np.asarray(samples, np.float64), -1, 1) * 32767).astype("<i2")
        self._pcm = np.repeat(pcm[:, None], channels, axis=1).tobytes()
        self._frame = 2 * channels
        self._rate = rate
        self._loop = loop
        self._fd = os.open(fifo, os.O_WRONLY)  # the pipe source holds the FIFO open: no block
        self._stop = threading.Event()
        self.written = 0  # frames
        self._thread = threading.Thread(target=self._run, name="mic-feeder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chunk = self._rate // 100 * self._frame  # 10 ms
        t0 = time.monotonic()
        pos = 0
        try:
            while not self._stop.is_set():
                if pos >= len(self._pcm):
                    if not self._loop:
                        break
                    pos = 0
                os.write(self._fd, self._pcm[pos : pos + chunk])
                n = min(chunk, len(self._pcm) - pos)
                pos += n
                self.written += n // self._frame
                # keep ~50 ms ahead of real time, never more
                ahead = self.written / self._rate - (time.monotonic() - t0) - 0.05
                if ahead > 0:
                    self._stop.wait(ahead)
        except OSError:  # the server died (EPIPE)
            pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def __enter__(self) -> MicFeeder:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _quiet_ok(cmd: list[str], env: dict) -> bool:
    try:
        return (
            subprocess.run(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def pulse_server() -> Iterator[PulseServer]:
    """Start a private server, point this process's environment at it, clean up after."""
    if PULSEAUDIO is None:
        pytest.skip("pulseaudio is not installed")
    root = Path(tempfile.mkdtemp(prefix="pa-", dir="/tmp"))
    server = PulseServer(root)
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    try:
        for k in ("PULSE_SOURCE", "PULSE_SINK"):
            os.environ.pop(k, None)
        os.environ.update(server.env)
        server.start()
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pulse() -> Iterator[PulseServer]:
    """A private PulseAudio server for one test (see `pulse_server`)."""
    with pulse_server() as server:
        yield server
