"""Live audio input for `synd run`: system audio, a microphone, any device, or a file.

Every input is a `LiveInput`: `start()`, `stop()`, a `ring` (`AudioRing`) that the engine
drains with ``ring.read_new(max_samples, delay_samples)``, `sample_rate` (the rate of
what `read_new` returns: always the rate asked for, 24000 by default), `description`
and `status()`.

* `DeviceInput` captures through PortAudio (sounddevice). "system" is what the computer
  plays: on Linux the monitor of the default PulseAudio/PipeWire sink, reached through
  PortAudio's ALSA ``pulse`` device with PULSE_SOURCE naming the monitor (Debian's
  PortAudio has no native PulseAudio host API); on macOS a BlackHole/Loopback device; on
  Windows WASAPI loopback when the installed sounddevice offers it (0.5 does not), else a
  "Stereo Mix"/"CABLE Output" device. "mic" is the default input; "device" picks one by
  index or name (PulseAudio sources included). A supervisor thread reopens the device
  when it dies (sound server restarted, USB unplugged) and logs one line each way.
* `FileInput` plays a decoded file into the ring in real time (the demo, or testing
  without a sound card), optionally through the speakers.

Resampling: streams are opened at the feature rate directly (PulseAudio, CoreAudio and
MME resample). A device that refuses that rate is opened at its default rate and the ring
resamples on read with a streaming polyphase filter (`AudioRing(out_rate=...)`), so
`sample_rate` is always the rate asked for and the engine never resamples.

Timing pitfall measured with PortAudio 19.6 + ALSA ``pulse``: the first stream started
after PortAudio is initialised delivers its first block only after ~1.7-2 s; later ones
after ~40 ms. The supervisor therefore allows `FIRST_DATA_S` before calling a fresh
stream dead.

Hang pitfall, same set-up: when the sound server dies (or freezes) under a running
stream, aborting or closing that stream can block forever (PortAudio joins its callback
thread, which waits on a lock inside the ALSA pulse plugin that libpulse never
releases). Streams are therefore closed on a worker thread under a timeout, a stream
whose close got stuck is remembered (`_STUCK`), PortAudio is then never terminated
again (neither to refresh the device list nor at exit: sounddevice's own exit handler,
which terminates PortAudio and so closes that stream once more, is replaced by
`_terminate_at_exit`), and nothing that stopping waits for is held across a PortAudio
call.

Errors are `CaptureError`s with one-line messages.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synd.audio import AUDIO_SUFFIXES, StreamResampler
from synd.errors import one_line
from synd.native import explain, quiet_stderr

__all__ = [
    "CaptureError",
    "AudioRing",
    "LiveInput",
    "DeviceInput",
    "FileInput",
    "parse_input",
    "open_input",
    "list_inputs",
    "refresh_devices",
]

log = logging.getLogger(__name__)

BUFFER_S = 10.0  # ring capacity: the longest --delay-ms is a bit less than this
CHECK_S = 0.1  # supervisor poll period
STALL_S = 1.0  # no callback for this long after data flowed: the stream is dead
FIRST_DATA_S = 5.0  # grace for the first block of a fresh stream (see module docstring)
RETRY_S = 1.0  # reopen attempts while disconnected
OUT_AHEAD_S = 0.2  # how far file playback may run ahead of the wall clock
EXIT_S = 1.0  # what terminating PortAudio at exit may take before the process ends anyway
# PortAudio is process-global: re-initialising it (to refresh the device list) while a
# stream is open would free that stream under our feet. Streams opened here are tracked
# and every PortAudio call that could race a re-initialisation holds _PA_LOCK. Stopping
# an input never waits for _PA_LOCK.
_PA_LOCK = threading.RLock()
_OPEN_STREAMS: set = set()
# Streams whose abort/close did not finish in time (a dead sound server): PortAudio would
# wait for them forever when terminated, so it is not terminated any more.
_STUCK: set = set()
_EXITING = threading.Event()  # set at interpreter exit: no more PortAudio calls
_EXIT_HOOKED = False
# PULSE_SOURCE is read from the process environment when a stream opens.
_ENV_LOCK = threading.Lock()


class CaptureError(Exception):
    """An input cannot be opened or found. str() is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


# ------------------------------------------------------------------------------------------
# Ring buffer


class AudioRing:
    """A single-writer, single-reader ring of float32 frames, shape (n, channels).

    `write` is called from the audio callback: it announces how far it will write,
    copies into preallocated memory and publishes the new write position, each with one
    atomic attribute store (no lock, no allocation of sample memory, no logging).
    `read_new` runs on the consumer thread; after copying it checks the announcement and
    drops (and counts) frames a concurrent write may have overwritten.

    `rate` is the rate of written frames; `out_rate` (default `rate`) the rate of what
    `read_new` returns. When they differ, a streaming polyphase resampler (same filter as
    ``scipy.signal.resample_poly``, causal: ~0.4 ms of delay) keeps its state between
    reads. `max_samples` and `delay_samples` of `read_new` count `out_rate` samples;
    `skipped` and `overruns` count written (`rate`) frames.
    """

    def __init__(self, capacity_s: float, rate: int, channels: int = 1, out_rate: int | None = None) -> None:
        if rate <= 0 or channels < 1 or not capacity_s > 0:
            raise ValueError(f"bad ring: capacity_s={capacity_s}, rate={rate}, channels={channels}")
        self.rate = int(rate)
        self.out_rate = int(out_rate or rate)
        self.channels = int(channels)
        self.capacity = max(16, math.ceil(capacity_s * self.rate))
        self._buf = np.zeros((self.capacity, self.channels), np.float32)
        self._state = (0, time.monotonic())  # (frames written in all, time of the newest)
        self._writing_to = 0  # end of the write in progress (== head when none is)
        self._read = 0  # absolute index of the next frame to read
        self.skipped = 0
        self.overruns = 0
        self._resampler = StreamResampler(self.rate, self.out_rate) if self.out_rate != self.rate else None

    @property
    def written(self) -> int:
        """Frames written since creation."""
        return self._state[0]

    def write(self, block: np.ndarray, newest_time: float | None = None) -> None:
        """Append `block`, shape (n, channels), (n, 1) (copied to every channel) or (n,)
        for a mono ring. `newest_time` is the `time.monotonic()` at which the block's last
        frame was captured (default: now)."""
        if newest_time is None:
            newest_time = time.monotonic()
        if block.ndim == 1:
            block = block.reshape(-1, 1)
        n = block.shape[0]
        head = self._state[0]
        cap = self.capacity
        if n > cap:  # only the newest frames fit
            block = block[n - cap :]
        m = block.shape[0]
        pos = (head + n - m) % cap
        first = min(m, cap - pos)
        self._writing_to = head + n  # announce: frames before head + n - cap get overwritten
        self._buf[pos : pos + first] = block[:first]
        if m > first:
            self._buf[: m - first] = block[first:]
        self._state = (head + n, newest_time)  # publish (one atomic store)

    def read_new(self, max_samples: int, delay_samples: int = 0) -> tuple[np.ndarray, float]:
        """Everything written since the previous read, as mono float32 at `out_rate`.

        The returned audio ends `delay_samples` before the write head (for --delay-ms).
        If more than `max_samples` are pending, only the newest ones are returned and the
        rest is counted in `skipped`. Frames overwritten before they could be read are
        counted in `overruns`. Returns ``(samples, newest_time)``: the `time.monotonic()`
        at which the newest returned sample was captured (or, when nothing is returned,
        the sample just before the read position).
        """
        head, t_head = self._state
        ratio = self.rate / self.out_rate
        delay = round(max(0, delay_samples) * ratio)
        max_in = max(0, math.ceil(max_samples * ratio))
        end = head - delay
        start = self._read
        oldest = head - self.capacity  # older frames are overwritten
        if start < oldest:
            self.overruns += oldest - start
            start = oldest
        if end <= start:
            if start > self._read:
                self._read = start
            return np.zeros(0, np.float32), t_head - (head - self._read) / self.rate
        if end - start > max_in:
            self.skipped += end - max_in - start
            start = end - max_in
        data = self._copy(start, end)
        # A write that started before or while we copied may have overwritten the oldest
        # frames: it announced how far it goes before touching the buffer.
        oldest2 = self._writing_to - self.capacity
        if start < oldest2:
            lost = min(oldest2, end) - start
            self.overruns += lost
            data = data[lost:]
        self._read = end
        mono = data[:, 0] if self.channels == 1 else data.mean(axis=1, dtype=np.float32)
        if self._resampler is not None:
            mono = self._resampler(mono)
        return np.ascontiguousarray(mono, dtype=np.float32), t_head - (head - end) / self.rate

    def _copy(self, start: int, end: int) -> np.ndarray:
        cap = self.capacity
        a, b = start % cap, end % cap
        if end - start == 0:
            return self._buf[:0].copy()
        if a < b:
            return self._buf[a:b].copy()
        return np.concatenate([self._buf[a:], self._buf[:b]])


# ------------------------------------------------------------------------------------------
# sounddevice / PortAudio helpers


def _sounddevice() -> Any:
    """Import sounddevice lazily (it is an optional extra and reads devices at import)."""
    try:
        with quiet_stderr("PortAudio", log):  # initialises PortAudio: ALSA/JACK chatter
            import sounddevice as sd
    except ImportError:
        raise CaptureError("live audio needs sounddevice: pip install 'synethesia[live]'") from None
    except OSError as exc:  # the PortAudio library is missing
        raise CaptureError(
            f"PortAudio is not available ({exc}); install it (Debian: libportaudio2)"
        ) from None
    _hook_exit(sd)
    return sd


def _hook_exit(sd: Any) -> None:
    """Put `_terminate_at_exit` in place of sounddevice's own exit handler (once)."""
    global _EXIT_HOOKED
    if _EXIT_HOOKED:
        return
    _EXIT_HOOKED = True
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)
    atexit.register(_terminate_at_exit, sd)


def _terminate_at_exit(sd: Any) -> None:
    """Terminate PortAudio at interpreter exit unless that could hang the exit.

    sounddevice's handler calls Pa_Terminate, which closes every open stream: with a
    stream whose close is stuck (see `_STUCK`) it waited for ever, and the process never
    ended (seen after a PulseAudio restart). Here PortAudio is left to the operating
    system when a close is stuck or the supervisor holds PortAudio for longer than
    `EXIT_S`; otherwise sounddevice's handler runs on a daemon thread for at most
    `EXIT_S`.
    """
    _EXITING.set()
    if _STUCK:
        log.debug("leaving PortAudio to the system at exit: %d stream(s) could not be closed", len(_STUCK))
        return
    if not _PA_LOCK.acquire(timeout=EXIT_S):
        log.debug("leaving PortAudio to the system at exit: it is busy")
        return
    try:
        handler = getattr(sd, "_exit_handler", None)
        if handler is None:
            return
        worker = threading.Thread(target=handler, name="synd-portaudio-exit", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # no new threads at this stage of the exit: leave it to the system
            return
        worker.join(EXIT_S)
        if worker.is_alive():
            log.debug("terminating PortAudio did not finish within %.1f s: exiting anyway", EXIT_S)
    finally:
        _PA_LOCK.release()


def refresh_devices() -> bool:
    """Re-initialise PortAudio so that its device list is current.

    PortAudio lists devices once, when it is initialised (at ``import sounddevice``): a
    sound server started later stays invisible until this is called. Skipped (returns
    False) while a stream opened by this module is still open (terminating PortAudio
    would close it; for a stream whose close got stuck, that would hang) and once the
    interpreter exits.
    """
    sd = _sounddevice()
    with _PA_LOCK, quiet_stderr("PortAudio", log):
        if _OPEN_STREAMS or _EXITING.is_set():
            return False
        try:
            while sd._initialized > 0:
                sd._terminate()
            sd._initialize()
        except Exception as exc:  # noqa: BLE001 - PortAudio reports many kinds of failure
            log.debug("re-initialising PortAudio failed: %s", exc)
            return False
    return True


def _close_stream(stream: Any, timeout: float) -> bool:
    """abort() then close() in a daemon worker thread; True if it finished within `timeout`.

    stop() can hang (seen with an input and an output stream open), and so can abort()
    of a stream whose sound server died or froze (for ever: see the module docstring):
    such a stream is left to its worker and counted in `_STUCK` until it closes.
    """
    if stream is None:
        return True

    def work() -> None:
        with contextlib.suppress(Exception):
            stream.abort()
        with contextlib.suppress(Exception):
            stream.close()
        _OPEN_STREAMS.discard(stream)
        _STUCK.discard(stream)

    worker = threading.Thread(target=work, name="synd-capture-close", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout))
    if worker.is_alive():
        _STUCK.add(stream)
        if not worker.is_alive():  # it finished just now: not stuck after all
            _STUCK.discard(stream)
            return True
        log.debug("closing the audio stream did not finish within %.1f s", timeout)
        return False
    return True


@contextlib.contextmanager
def _pulse_source(name: str | None) -> Iterator[None]:
    """Set PULSE_SOURCE while a stream opens (the ALSA pulse plugin reads it then)."""
    if name is None:
        yield
        return
    with _ENV_LOCK:
        old = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = name
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("PULSE_SOURCE", None)
            else:
                os.environ["PULSE_SOURCE"] = old


def _pactl(*args: str) -> str | None:
    """stdout of a successful pactl call, or None (no pactl, no server, error)."""
    exe = shutil.which("pactl")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _pulse_info() -> dict | None:
    """Default sink/source and server name of the PulseAudio/PipeWire server, or None."""
    out = _pactl("info")
    if out is None:
        return None
    info = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return {
        "sink": info.get("Default Sink") or None,
        "source": info.get("Default Source") or None,
        "server": "PipeWire" if "PipeWire" in info.get("Server Name", "") else "PulseAudio",
    }


def _pulse_sources() -> list[dict]:
    """The server's sources: name, description, channels, monitor flag."""
    out = _pactl("--format=json", "list", "sources")
    if out is not None:
        try:
            sources = []
            for s in json.loads(out):
                spec = str(s.get("sample_specification", ""))
                ch = next((int(w[:-2]) for w in spec.split() if w.endswith("ch") and w[:-2].isdigit()), 2)
                sources.append(
                    {
                        "name": s["name"],
                        "description": s.get("description") or s["name"],
                        "channels": ch,
                        "monitor": bool(s.get("monitor_source")) and s.get("monitor_source") != "n/a",
                    }
                )
            return sources
        except (ValueError, KeyError, TypeError):
            pass
    out = _pactl("list", "short", "sources") or ""
    sources = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            ch = next(
                (int(w[:-2]) for w in " ".join(parts[3:4]).split() if w.endswith("ch") and w[:-2].isdigit()),
                2,
            )
            sources.append(
                {
                    "name": parts[1],
                    "description": parts[1],
                    "channels": ch,
                    "monitor": parts[1].endswith(".monitor"),
                }
            )
    return sources


def _portaudio_inputs(sd: Any) -> list[dict]:
    """PortAudio's input devices (the list as of PortAudio's last initialisation)."""
    with _PA_LOCK:
        try:
            devices = sd.query_devices()
            apis = sd.query_hostapis()
            default_in = sd.default.device[0]
        except Exception as exc:  # noqa: BLE001 - PortAudio fails in many ways: then no devices
            log.debug("cannot list audio devices: %s", exc)
            return []
    if not isinstance(default_in, int) or default_in < 0:
        default_in = next((a["default_input_device"] for a in apis if a["default_input_device"] >= 0), -1)
    return [
        {
            "name": d["name"],
            "index": i,
            "channels": int(d["max_input_channels"]),
            "default": i == default_in,
            "host_api": apis[d["hostapi"]]["name"],
            "description": d["name"],
            "default_rate": float(d["default_samplerate"]),
        }
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def _pulse_device(inputs: list[dict]) -> dict | None:
    """PortAudio's ALSA `pulse` device, the way into PulseAudio/PipeWire here."""
    return next((d for d in inputs if d["name"] == "pulse" and d["host_api"] == "ALSA"), None)


def _gather_inputs(sd: Any) -> list[dict]:
    inputs = _portaudio_inputs(sd)
    pulse = _pulse_device(inputs)
    if pulse is not None:
        info = _pulse_info() or {}
        for s in _pulse_sources():
            inputs.append(
                {
                    "name": s["name"],
                    "index": None,
                    "channels": s["channels"],
                    "default": s["name"] == info.get("source"),
                    "host_api": info.get("server", "PulseAudio"),
                    "description": s["description"],
                    "via": pulse["index"],
                    "default_rate": pulse["default_rate"],
                }
            )
    return inputs


def list_inputs() -> list[dict]:
    """Every audio input that can be captured, for `synd info` and error messages.

    Each entry: ``name``, ``index`` (PortAudio index; None for a PulseAudio/PipeWire
    source reached through the ALSA ``pulse`` device), ``channels``, ``default``,
    ``host_api`` and ``description``. Refreshes PortAudio's device list when no stream is
    open. Empty without sounddevice or without any device.
    """
    try:
        sd = _sounddevice()
    except CaptureError:
        return []
    refresh_devices()
    keys = ("name", "index", "channels", "default", "host_api", "description")
    return [{k: d[k] for k in keys} for d in _gather_inputs(sd)]


def _names(inputs: list[dict]) -> str:
    """'0 pulse (ALSA), fakemic (PulseAudio), ...' for one-line messages."""
    if not inputs:
        return "none"
    return ", ".join(
        (f"{d['index']} " if d["index"] is not None else "") + f"'{d['name']}' ({d['host_api']})"
        for d in inputs
    )


# ------------------------------------------------------------------------------------------
# Device resolution


@dataclass(frozen=True)
class _Target:
    """What to open: a PortAudio device, maybe with a PulseAudio source to pick."""

    device: int
    channels: int
    default_rate: float
    description: str
    pulse_source: str | None = None
    extra_settings: Any = None


def _resolve(sd: Any, kind: str, device: int | str | None) -> _Target:
    inputs = _gather_inputs(sd)
    if kind == "system":
        return _system_target(sd, inputs)
    if kind == "mic":
        return _mic_target(inputs)
    if kind == "device":
        return _device_target(inputs, device)
    raise ValueError(f"kind must be 'system', 'mic' or 'device', got {kind!r}")


def _entry_target(d: dict, what: str) -> _Target:
    if d["index"] is None:  # a PulseAudio/PipeWire source through the ALSA pulse device
        return _Target(
            d["via"],
            max(1, min(2, d["channels"])),
            d["default_rate"],
            f"{what}: {d['host_api']} source '{d['name']}' ({d['description']})",
            pulse_source=d["name"],
        )
    return _Target(
        d["index"],
        min(2, d["channels"]),
        d["default_rate"],
        f"{what}: device {d['index']} '{d['name']}' ({d['host_api']})",
    )


def _system_target(sd: Any, inputs: list[dict]) -> _Target:
    if sys.platform.startswith("linux"):
        pulse = _pulse_device(inputs)
        info = _pulse_info() if shutil.which("pactl") else None
        if pulse is not None and info and info["sink"]:
            monitor = info["sink"] + ".monitor"
            return _Target(
                pulse["index"],
                2,
                pulse["default_rate"],
                f"system audio: monitor of sink '{info['sink']}' ({info['server']})",
                pulse_source=monitor,
            )
        native = [d for d in inputs if d["index"] is not None and "monitor" in d["name"].lower()]
        if native:  # a PortAudio built with a native PulseAudio host API lists monitors
            return _entry_target(native[0], "system audio")
        if shutil.which("pactl") is None:
            why = "pactl is not installed (Debian: pulseaudio-utils)"
        elif info is None:
            why = "no PulseAudio or PipeWire server answers"
        elif not info["sink"]:
            why = "the sound server has no default sink"
        else:
            why = "PortAudio has no 'pulse' device (Debian: libasound2-plugins)"
        raise CaptureError(f"system audio is unavailable: {why}")
    if sys.platform == "darwin":
        loop = [d for d in inputs if any(k in d["name"].lower() for k in ("blackhole", "loopback"))]
        if loop:
            return _entry_target(loop[0], "system audio")
        raise CaptureError(
            "system audio is unavailable: no BlackHole or Loopback device; install "
            "BlackHole and send the output to it, or use --input mic"
        )
    if sys.platform == "win32":
        params = inspect.signature(sd.WasapiSettings).parameters
        if "loopback" in params:
            with _PA_LOCK:
                out = sd.query_devices(kind="output")
            index = sd.query_devices().index(out) if isinstance(out, dict) else None
            if index is not None:
                return _Target(
                    index,
                    min(2, int(out["max_output_channels"])),
                    float(out["default_samplerate"]),
                    f"system audio: WASAPI loopback of '{out['name']}'",
                    extra_settings=sd.WasapiSettings(loopback=True),
                )
        mix = [
            d
            for d in inputs
            if any(k in d["name"].lower() for k in ("stereo mix", "cable output", "loopback"))
        ]
        if mix:
            return _entry_target(mix[0], "system audio")
        raise CaptureError(
            f"system audio is unavailable: sounddevice {sd.__version__} offers no "
            "WASAPI loopback; enable 'Stereo Mix' or install VB-CABLE and use "
            "--input 'CABLE Output', or use --input mic"
        )
    raise CaptureError(f"system audio is unavailable on {sys.platform}; use --input mic")


def _mic_target(inputs: list[dict]) -> _Target:
    default = next((d for d in inputs if d["default"] and d["index"] is not None), None)
    if default is None:
        raise CaptureError(f"no microphone: there is no default input device (inputs: {_names(inputs)})")
    target = _entry_target(default, "microphone")
    source = next((d for d in inputs if d["index"] is None and d["default"]), None)
    if source is not None and default["name"] in ("pulse", "default"):
        # The ALSA pulse/default device records PulseAudio's default source: name it.
        target = _Target(
            target.device,
            target.channels,
            target.default_rate,
            f"microphone: {source['host_api']} default source '{source['name']}' ({source['description']})",
        )
    return target


def _device_target(inputs: list[dict], device: int | str | None) -> _Target:
    if device is None:
        raise CaptureError(f"no device given: use an index or part of a name (inputs: {_names(inputs)})")
    if isinstance(device, int) or str(device).strip().isdigit():
        index = int(device)
        match = [d for d in inputs if d["index"] == index]
        if not match:
            raise CaptureError(f"no input device {index} (inputs: {_names(inputs)})")
        return _entry_target(match[0], "input")
    text = str(device).strip().lower()
    match = [d for d in inputs if d["name"].lower() == text]
    if not match:
        match = [d for d in inputs if text in d["name"].lower() or text in d["description"].lower()]
    if not match:
        raise CaptureError(f"no input device matches {device!r} (inputs: {_names(inputs)})")
    sources = [d for d in match if d["index"] is None]
    if len(match) > 1 and len(sources) == 1:
        # The same hardware often appears as an ALSA device and as a sound-server source;
        # the server holds the hardware, so its source is the one that can be opened.
        match = sources
    if len(match) > 1:
        raise CaptureError(
            f"input device {device!r} is ambiguous, it matches {_names(match)}; use a longer name or an index"
        )
    return _entry_target(match[0], "input")


# ------------------------------------------------------------------------------------------
# Inputs


class LiveInput:
    """The interface the engine uses. Subclasses set `ring`, `sample_rate`, `description`.

    `start()` begins capturing into `ring`; `stop(timeout)` ends it and never blocks for
    longer than `timeout` (it may be called on a dead input, and more than once);
    `status()` returns ``connected``, ``device``, ``overflows`` (PortAudio input
    overflows), ``overruns`` and ``skipped`` (frames lost in the ring) and ``reconnects``.
    """

    ring: AudioRing
    sample_rate: int
    description: str

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 2.0) -> None:
        raise NotImplementedError

    def status(self) -> dict:
        raise NotImplementedError

    def __enter__(self) -> LiveInput:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class DeviceInput(LiveInput):
    """Capture from an audio device through PortAudio, reconnecting when it dies.

    `kind` is "system" (what the computer plays), "mic" (the default input) or "device"
    (`device` = PortAudio index or a case-insensitive part of a device or PulseAudio
    source name). The device is found when the input is created (CaptureError if it
    does not exist, naming the candidates); `start()` opens it.

    When the stream dies (it stops, or no block arrives for `STALL_S`), one line is
    logged, `connected` turns False and a supervisor thread retries every `RETRY_S`:
    it re-initialises PortAudio (so a restarted sound server is seen), finds the device
    again and reopens it; "capture resumed: ..." is logged when audio flows again.
    Meanwhile `ring.read_new` simply returns nothing.
    """

    def __init__(
        self, kind: str = "mic", device: int | str | None = None, rate: int = 24000, block: int = 256
    ) -> None:
        if kind not in ("system", "mic", "device"):
            raise ValueError(f"kind must be 'system', 'mic' or 'device', got {kind!r}")
        self._sd = _sounddevice()
        refresh_devices()  # see a sound server started after PortAudio was initialised
        self.kind, self.device = kind, device
        self.sample_rate = int(rate)
        self._target = _resolve(self._sd, kind, device)
        self.description = self._target.description
        dev_rate = self._pick_rate(self._target)
        self.block = max(16, round(block * dev_rate / self.sample_rate))
        self.ring = AudioRing(BUFFER_S, dev_rate, max(1, self._target.channels), out_rate=self.sample_rate)
        self.connected = False
        self.overflows = 0
        self.reconnects = 0
        self._stream: Any = None
        self._gen = 0  # identifies the current stream; callbacks of older ones abort
        self._opened_at = 0.0
        self._last_cb = 0.0
        self._stop_evt = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()  # start/stop against each other
        self._swap = threading.Lock()  # taking `_stream` (never held across a PortAudio call)

    def _pick_rate(self, target: _Target) -> int:
        """The feature rate if the device takes it, else its default rate (resampled)."""
        try:
            with _PA_LOCK, _pulse_source(target.pulse_source), quiet_stderr("PortAudio", log):
                self._sd.check_input_settings(
                    device=target.device,
                    channels=target.channels,
                    samplerate=self.sample_rate,
                    extra_settings=target.extra_settings,
                )
            return self.sample_rate
        except Exception as exc:  # noqa: BLE001 - any refusal: fall back to the device's rate
            rate = int(target.default_rate) or self.sample_rate
            if rate != self.sample_rate:
                log.info(
                    "%s refuses %d Hz (%s): capturing at %d Hz and resampling",
                    target.description,
                    self.sample_rate,
                    exc,
                    rate,
                )
            return rate

    # -- the audio callback (PortAudio's thread: no allocation, no logging, no locks) --

    def _make_callback(self, gen: int):
        ring, sd = self.ring, self._sd

        def callback(indata, frames, time_info, status) -> None:
            if gen != self._gen:
                raise sd.CallbackAbort  # a stream we gave up on
            if status.input_overflow:
                self.overflows += 1
            # The block's arrival time stands for the capture time of its newest frame
            # (true capture is earlier by the input latency, ~10-40 ms): the ADC times
            # PortAudio reports through ALSA -> PulseAudio were 0.2-0.6 s off here.
            now = time.monotonic()
            ring.write(indata, now)
            self._last_cb = now

        return callback

    # -- lifecycle ---------------------------------------------------------------------

    def _open(self, target: _Target) -> bool:
        """Open and start a stream on `target` (supervisor or start(); raises).

        False when stop() came meanwhile: the new stream is closed again at once.
        """
        sd = self._sd
        self._gen += 1
        self._opened_at = time.monotonic()  # before any callback can run
        with _PA_LOCK, _pulse_source(target.pulse_source), quiet_stderr("PortAudio", log) as self._said:
            if _EXITING.is_set():
                raise CaptureError("the process is exiting")
            stream = sd.InputStream(
                device=target.device,
                samplerate=self.ring.rate,
                channels=min(self.ring.channels, max(1, target.channels)),
                dtype="float32",
                blocksize=self.block,
                callback=self._make_callback(self._gen),
                extra_settings=target.extra_settings,
            )
            _OPEN_STREAMS.add(stream)
            try:
                stream.start()
            except BaseException:
                _close_stream(stream, 1.0)
                raise
        if self._stop_evt.is_set():  # stop() came while we were opening
            self._gen += 1
            _close_stream(stream, 1.0)
            return False
        with self._swap:
            self._stream = stream
        self._target = target
        self.description = target.description
        if self._stop_evt.is_set():  # stop() came just now and may have missed the stream
            _close_stream(self._take_stream(stream), 1.0)
            return False
        return True

    def _take_stream(self, stream: Any = None) -> Any:
        """Take the current stream (only if it is `stream`, when given); None if gone."""
        with self._swap:
            current = self._stream
            if current is None or (stream is not None and current is not stream):
                return None
            self._stream = None
            self._gen += 1  # late callbacks of this stream abort
            return current

    def start(self) -> None:
        """Open the device and start capturing (CaptureError if it cannot be opened)."""
        with self._lock:
            if self._supervisor is not None:
                return
            self._stop_evt.clear()
            try:
                opened = self._open(self._target)
            except Exception as exc:  # noqa: BLE001 - PortAudio's many failures, as one CaptureError
                raise CaptureError(
                    f"cannot open {self.description}: {explain(exc, getattr(self, '_said', None))}"
                ) from None
            if not opened:  # stopped while starting
                return
            self.connected = True
            self._supervisor = threading.Thread(target=self._supervise, name="synd-capture", daemon=True)
            self._supervisor.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop capturing; returns within `timeout` even if PortAudio hangs.

        Wherever the supervisor is (waiting, re-initialising PortAudio, opening a stream,
        stuck in a close), stopping waits for it at most half of `timeout`: a stream it
        opens after that is closed by the supervisor itself, and a close that hangs is
        left to a daemon thread (see `_close_stream`).
        """
        deadline = time.monotonic() + timeout
        self._stop_evt.set()
        # start() holds _lock while opening a stream: never wait for it beyond `timeout`
        # (the stop event makes that start close its stream again).
        if not self._lock.acquire(timeout=max(0.0, timeout / 2)):
            log.debug("stopping %s: a start is still opening the stream", self.description)
            self.connected = False
            return
        try:
            supervisor, self._supervisor = self._supervisor, None
            if supervisor is not None and supervisor is not threading.current_thread():
                supervisor.join(max(0.0, (deadline - time.monotonic()) / 2))
                if supervisor.is_alive():
                    log.debug("stopping %s: the supervisor is still reopening; not waiting", self.description)
            _close_stream(self._take_stream(), max(0.0, deadline - time.monotonic()))
            self.connected = False
        finally:
            self._lock.release()

    def _dead_reason(self, stream: Any, now: float) -> str | None:
        try:
            active = stream.active
        except Exception:  # noqa: BLE001 - a stream that cannot say is taken as stopped
            active = False
        if not active:
            return "the stream stopped"
        last = self._last_cb
        if last < self._opened_at:
            if now - self._opened_at > FIRST_DATA_S:
                return f"no audio for {now - self._opened_at:.1f} s after opening"
        elif now - last > STALL_S:
            return f"no audio for {now - last:.1f} s"
        return None

    def _supervise(self) -> None:
        """Watch the stream; after a loss, reopen it every RETRY_S until stopped.

        Every wait is on the stop event, and the stop event is checked between the steps
        of a reopen, so a stop is never kept waiting by a retry.
        """
        lost = False
        next_try = 0.0
        while not self._stop_evt.wait(CHECK_S):
            try:
                now = time.monotonic()
                stream = self._stream
                if stream is not None:
                    reason = self._dead_reason(stream, now)
                    if reason is None:
                        if lost and self._last_cb >= self._opened_at:
                            lost = False
                            self.connected = True
                            self.reconnects += 1
                            log.info("capture resumed: %s", self.description)
                        continue
                    if not lost:
                        log.warning(
                            "capture lost: %s: %s; retrying every %g s", self.description, reason, RETRY_S
                        )
                        lost = True
                    self.connected = False
                    _close_stream(self._take_stream(stream), 1.0)
                    next_try = time.monotonic() + RETRY_S
                elif now >= next_try:
                    next_try = now + RETRY_S
                    self._reopen()
            except Exception as exc:  # noqa: BLE001 - keep supervising whatever happens
                log.debug("capture: reopening %s failed: %s", self.description, exc)

    def _reopen(self) -> None:
        """Find the device again and open it, giving up as soon as stop() is called."""
        if self._stop_evt.is_set():
            return
        refresh_devices()
        if self._stop_evt.is_set():
            return
        target = _resolve(self._sd, self.kind, self.device)
        if self._stop_evt.is_set():
            return
        self._open(target)  # closes the stream again itself when stop() came meanwhile

    def status(self) -> dict:
        """connected, device, overflows, overruns, skipped, reconnects (thread-safe)."""
        return {
            "connected": self.connected,
            "device": self.description,
            "overflows": self.overflows,
            "overruns": self.ring.overruns,
            "skipped": self.ring.skipped,
            "reconnects": self.reconnects,
            "device_rate": self.ring.rate,
        }


class FileInput(LiveInput):
    """Play a decoded audio file into the ring in real time.

    A thread feeds the ring paced by `time.monotonic()` (sample i is due at start + i /
    rate, so no drift builds up). `loop` restarts at the end; otherwise `finished` turns
    True once the whole file was fed. With `play`, the file also sounds through the
    default output device and the ring follows the playback position minus the output
    latency, so what is seen matches what is heard; without an output device one line is
    logged and the file is fed silently.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        rate: int = 24000,
        play: bool = False,
        loop: bool = False,
        block: int = 256,
    ) -> None:
        from synd.audio import AudioError, load_audio

        try:
            self.samples = load_audio(path, rate)
        except AudioError as exc:
            raise CaptureError(str(exc)) from None
        self.path = Path(path)
        self.sample_rate = int(rate)
        self.play, self.loop, self.block = play, loop, int(block)
        self.ring = AudioRing(BUFFER_S, self.sample_rate, 1)
        self.description = f"file '{self.path.name}'" + (" (looping)" if loop else "")
        self.finished = False
        self.playing = False  # True while sounding through an output device
        self._fed = 0  # absolute index (counting loops) of the next sample to feed
        self._out_pos = 0  # absolute index of the next sample to play
        self._out_t0: float | None = None  # time of the first output callback
        self._latency = 0.0
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._started = False

    @property
    def position(self) -> float:
        """Seconds of audio fed so far (counting loops)."""
        return self._fed / self.sample_rate

    def _feed_until(self, target: int, newest_time: float) -> None:
        """Write song samples [_fed, target) into the ring (absolute indices)."""
        n = len(self.samples)
        if not self.loop:
            target = min(target, n)
        while self._fed < target:
            i = self._fed % n
            k = min(target - self._fed, n - i)
            end_time = newest_time - (target - self._fed - k) / self.sample_rate
            self.ring.write(self.samples[i : i + k], end_time)
            self._fed += k
        if not self.loop and self._fed >= n:
            self.finished = True

    def _pace(self) -> None:
        rate = self.sample_rate
        t0 = time.monotonic() - self._fed / rate
        while not self._stop_evt.is_set() and not self.finished:
            due = int((time.monotonic() - t0) * rate)
            if due > self._fed:
                self._feed_until(due, t0 + (due - 1) / rate)
            self._stop_evt.wait(self.block / rate)

    def _out_callback(self, outdata, frames, time_info, status) -> None:
        # Fill the output with the song (zeros after the end), then feed the ring up to
        # the sample being heard now: the first one of this block plays `lat` from now.
        now = time.monotonic()
        if self._out_t0 is None:
            self._out_t0 = now
        song, n = self.samples, len(self.samples)
        a0 = self._out_pos
        # Should PortAudio call back far faster than real time (it did here with small
        # blocks, discarding the audio), the song never runs ahead of the wall clock by
        # more than OUT_AHEAD_S: silence fills in.
        allowed = int((now - self._out_t0 + OUT_AHEAD_S) * self.sample_rate) - a0
        take = max(0, min(frames, allowed))
        k = 0
        while k < take:
            i = (a0 + k) % n if self.loop else a0 + k
            if i >= n:
                break
            m = min(take - k, n - i)
            outdata[k : k + m] = song[i : i + m, None]
            k += m
        outdata[k:] = 0
        self._out_pos = a0 + (take if self.loop or a0 < n else frames)
        lat = time_info.outputBufferDacTime - time_info.currentTime
        if not 0.0 <= lat < 1.0:
            lat = self._latency
        heard = a0 - int(lat * self.sample_rate)
        if heard > self._fed:
            self._feed_until(heard, now)

    def _open_output(self) -> bool:
        said = None
        try:
            sd = _sounddevice()
            refresh_devices()
            with _PA_LOCK, quiet_stderr("PortAudio", log) as said:
                # Variable blocks and 100 ms of buffer: with 256-frame blocks PortAudio's
                # ALSA -> PulseAudio output fell into storms of underflowing callbacks
                # (swallowing up to 30 s of audio in 1.5 s); these settings never did.
                stream = sd.OutputStream(
                    samplerate=self.sample_rate,
                    channels=1,
                    dtype="float32",
                    blocksize=0,
                    latency=0.1,
                    callback=self._out_callback,
                )
                _OPEN_STREAMS.add(stream)
                self._latency = float(stream.latency)
                stream.start()
        except Exception as exc:  # noqa: BLE001 - any failure: play silently
            log.warning("cannot play %s (%s): continuing without sound", self.path.name, explain(exc, said))
            return False
        self._stream = stream
        return True

    def start(self) -> None:
        """Begin feeding (and playing, with `play`)."""
        if self._started:
            return
        self._started = True
        self._stop_evt.clear()
        if self.play and self._open_output():
            self.playing = True
            self.description += ", playing on the default output"
            return
        self._thread = threading.Thread(target=self._pace, name="synd-file-input", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop feeding and playing; returns within `timeout`."""
        deadline = time.monotonic() + timeout
        self._stop_evt.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            self._thread = None
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_stream(stream, deadline - time.monotonic())
        self.playing = False

    def status(self) -> dict:
        """connected, device, overflows, overruns, skipped, reconnects, finished, position."""
        return {
            "connected": self._started and not self._stop_evt.is_set(),
            "device": self.description,
            "overflows": 0,
            "overruns": self.ring.overruns,
            "skipped": self.ring.skipped,
            "reconnects": 0,
            "finished": self.finished,
            "position": self.position,
        }


# ------------------------------------------------------------------------------------------
# Choosing an input from the command line


def parse_input(text: str | None) -> dict:
    """Interpret --input: returns ``{"kind": ..., "device": ..., "path": ...}``.

    kind is "auto" (None, "" or "auto": system audio if available, else the microphone),
    "system", "mic" ("mic" or "microphone"), "file" (an existing file, or something that
    looks like an audio file path: CaptureError if it does not exist), or "device" with
    `device` an int index or a name substring.
    """
    spec: dict[str, Any] = {"kind": "auto", "device": None, "path": None}
    t = "" if text is None else str(text).strip()
    low = t.lower()
    if low in ("", "auto"):
        return spec
    if low == "system":
        return spec | {"kind": "system"}
    if low in ("mic", "microphone"):
        return spec | {"kind": "mic"}
    p = Path(t).expanduser()
    if p.is_file():
        return spec | {"kind": "file", "path": str(p)}
    if p.suffix.lower() in AUDIO_SUFFIXES or os.sep in t or (os.altsep and os.altsep in t):
        raise CaptureError(f"no such audio file: {t!r}")
    if t.isdigit():
        return spec | {"kind": "device", "device": int(t)}
    return spec | {"kind": "device", "device": t}


def open_input(text: str | None, rate: int = 24000, play: bool = False, loop: bool = False) -> LiveInput:
    """The input --input names (see `parse_input`), not started yet.

    `play` and `loop` apply to files. Raises CaptureError (one line) when the input does
    not exist; with no input named and no audio device at all, the message lists what
    exists and how to choose.
    """
    spec = parse_input(text)
    if spec["kind"] == "file":
        return FileInput(spec["path"], rate=rate, play=play, loop=loop)
    sd = _sounddevice()
    if spec["kind"] in ("system", "mic", "device"):
        return DeviceInput(spec["kind"], spec["device"], rate=rate)
    reasons = []
    for kind in ("system", "mic"):
        try:
            return DeviceInput(kind, rate=rate)
        except CaptureError as exc:
            reasons.append(str(exc))
    hint = {
        "linux": "start PulseAudio or PipeWire",
        "darwin": "connect a microphone",
        "win32": "connect a microphone",
    }.get(sys.platform, "connect a microphone")
    raise CaptureError(
        f"no audio input found (devices: {_names(_gather_inputs(sd))}; "
        f"{reasons[0]}); use --input FILE to play a song, --input NAME or "
        f"INDEX to pick a device, or {hint}"
    )
