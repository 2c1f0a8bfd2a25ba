"""MIDI control: knobs, faders and pads drive the live daemon through the `Controller`.

`MidiControl(controller, api="auto", port=None, mapping=None, feedback_port=None)` opens a
MIDI input (an existing port by a part of its name, or a virtual port named "synd" that
any program or controller can be connected to), turns each message into a controller
command through a mapping, and, with `feedback_port`, sends the state back (CC values
and pad LEDs) so motor faders and lights follow changes made elsewhere (OSC, the tray,
automatic rotation). MIDI learn binds the next control moved to a parameter or trigger.

The MIDI API is chosen with `api`: "alsa" or "jack" (Linux), "coremidi" (macOS), "winmm"
(Windows), or "auto" (ALSA on Linux when the ALSA sequencer is there, else JACK; CoreMIDI
on macOS; Windows MM on Windows).

Mapping files (TOML)
--------------------

A mapping is a list of `[[bind]]` tables, each binding one control to one action:

    name = "my controller"       # optional, free text

    [[bind]]
    cc = 21                      # a control change number 0..127 (or note = 0..127)
    channel = 1                  # optional: 1..16; omitted = any channel
    param = "intensity"          # a continuous parameter (see synd.control.PARAMS)
    range = [0.0, 2.0]           # optional: the values at CC 0 and CC 127 (default: the
                                 # whole range; [high, low] turns the knob round)
    curve = "linear"             # optional: linear (default), exp (fine at the low end:
                                 # times, gain) or log (fine at the high end)

    [[bind]]
    note = 36                    # a pad or key
    preset = "next"              # next, previous, random or a preset name: on press

    [[bind]]
    note = 40
    trigger = "blackout"         # blackout, freeze, lock (held states) or cut (on press)
    mode = "momentary"           # momentary: on while held; toggle: each press flips it
                                 # (default: momentary for blackout, toggle for freeze, lock)

Every binding has exactly one of `cc` / `note` and exactly one of `param` / `preset` /
`trigger`. Continuous parameters take CCs only; presets and triggers take notes or CCs. A
note-on presses, a note-off (or note-on with velocity 0) releases; a CC presses when it
rises to 64 or more and releases when it falls below 64. An unknown key, a wrong type,
a range outside the parameter's or an unknown name is a one-line error naming the file.

With curve x = CC / 127, the value is low + (high - low) * f(x) where f is x (linear),
(100**x - 1) / 99 (exp) or log(1 + 99 x) / log(100) (log); feedback uses the inverse.

The shipped default (synd/midi_default.toml, `default_mapping()`) fits a generic 8-knob /
8-pad controller: knobs on CC 21-28 (the "undefined" CCs, so a keyboard's mod wheel,
volume or sustain never move a picture), pads on notes 36-43 (the first bank of
MPC-style pads); see that file. The user's own mapping is ~/.config/synd/midi.toml
(`user_mapping_path()`), which MIDI learn writes.

MIDI learn
----------

`learn("hue")` (or `controller.request_learn("hue")`, which reaches every running
`MidiControl`) arms learn mode; the next CC moved (for a parameter) or CC or note pressed
(for a trigger, "cut" or "preset/next", "preset/previous", "preset/random",
"preset/NAME") is bound to it on its channel, replacing the older bindings of that control,
and is not acted on. `save_mapping(path)` writes the mapping (atomically); with
`save_path` every learned binding is saved there at once. `learn_once()` does the same
without a daemon, and `python -m synd.midi learn PARAM` / `python -m synd.midi ports` are
its command line.

Threads: the rtmidi callback (ALSA, CoreMIDI, Windows MM: on the driver's own thread)
only parses a message and puts it on a queue; one worker thread applies the commands in
order and sends the feedback, so a slow controller listener never stalls the MIDI
driver. JACK is the exception: it would run the callback in its real-time process
thread, where Python waits for the GIL, so there the worker reads RtMidi's own queue
every 2 ms instead, from a queue of JACK_QUEUE messages. When messages pile up, a CC that
only drives parameters is applied once with its latest value; with the other APIs at most
MAX_QUEUED messages wait, newer ones are refused. Sysex is ignored. On JACK a guard port
(`_SysexGuard`) sends a lone F7 into synd's input after a quarter of a second without
input: RtMidi would otherwise take everything after a stray sysex start as part of it.

No message, however malformed (a bare status byte, data without a status, an undefined
status such as F4, F5 or FD, a truncated message), and no failing command stops the
worker: each is refused and logged, at most one line per kind every 10 s
(synd.ratelimit), and every 10 s with something refused ends with one line counting them
by kind.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import queue
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from synd.control import PARAMS, TRIGGERS
from synd.files import atomic_write_bytes
from synd.native import explain, quiet_stderr
from synd.paths import config_dir
from synd.ratelimit import RateLimiter, Tally
from synd.tables import reject_unknown

log = logging.getLogger(__name__)

CURVES = ("linear", "exp", "log")
MODES = ("momentary", "toggle")
ACTIONS = (*TRIGGERS, "cut")  # what `trigger = ...` may name
PRESET_WORDS = ("next", "previous", "random")
DEFAULT_MODE = {"blackout": "momentary", "freeze": "toggle", "lock": "toggle"}
APIS = ("auto", "alsa", "jack", "coremidi", "winmm")
VIRTUAL = "virtual"
DEFAULT_FILE = "midi_default.toml"


class MidiError(ValueError):
    """A MIDI set-up problem (API, port), as one line for the user."""


# -- curves ----------------------------------------------------------------------------

_BASE = 100.0


def shape(curve: str, x: float) -> float:
    """Map x in 0..1 to 0..1 along `curve`."""
    x = min(1.0, max(0.0, x))
    if curve == "exp":
        return (_BASE**x - 1.0) / (_BASE - 1.0)
    if curve == "log":
        return math.log1p((_BASE - 1.0) * x) / math.log(_BASE)
    return x


def unshape(curve: str, y: float) -> float:
    """The inverse of `shape`."""
    return shape({"exp": "log", "log": "exp"}.get(curve, curve), y)


# -- the mapping -----------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    """One control (a CC or note, on a channel or any) and what it does; field names are
    the keys of a `[[bind]]` table (see the module docstring)."""

    cc: int | None = None
    note: int | None = None
    channel: int | None = None  # 1..16; None = any
    param: str | None = None
    range: tuple[float, float] | None = None
    curve: str | None = None  # None = linear
    preset: str | None = None
    trigger: str | None = None
    mode: str | None = None  # None = DEFAULT_MODE[trigger]

    @property
    def kind(self) -> str:
        return "cc" if self.cc is not None else "note"

    @property
    def number(self) -> int:
        return self.cc if self.cc is not None else self.note  # type: ignore[return-value]  # parse_binding sets one

    @property
    def target(self) -> str:
        """What it drives, in learn's words: a parameter, trigger, "cut" or "preset/X"."""
        if self.param is not None:
            return self.param
        if self.preset is not None:
            return f"preset/{self.preset}"
        return self.trigger  # type: ignore[return-value]  # parse_binding: else a trigger is set

    @property
    def low_high(self) -> tuple[float, float]:
        if self.range is not None:
            return self.range
        p = PARAMS[self.param]  # type: ignore[index]  # only param bindings are scaled (value, raw)
        return p.low, p.high

    @property
    def held_mode(self) -> str:
        return self.mode or DEFAULT_MODE.get(self.trigger or "", "toggle")

    def matches(self, kind: str, number: int, channel: int) -> bool:
        return (
            self.kind == kind and self.number == number and (self.channel is None or self.channel == channel)
        )

    def value(self, raw: int) -> float:
        """The parameter value for CC value `raw` (0..127)."""
        low, high = self.low_high
        return low + (high - low) * shape(self.curve or "linear", raw / 127.0)

    def raw(self, value: float) -> int:
        """The CC value (0..127) that shows parameter value `value` (the inverse)."""
        low, high = self.low_high
        y = (float(value) - low) / (high - low)
        return int(round(unshape(self.curve or "linear", y) * 127.0))

    def to_toml(self) -> str:
        lines = ["[[bind]]"]
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                lines.append(f"{f.name} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a TOML basic string: JSON's escapes are TOML's


@dataclass(frozen=True)
class Mapping:
    """A whole mapping file: an optional name and the bindings, in order."""

    name: str = ""
    bind: tuple[Binding, ...] = ()

    def lookup(self, kind: str, number: int, channel: int) -> list[Binding]:
        return [b for b in self.bind if b.matches(kind, number, channel)]

    def with_binding(self, new: Binding) -> Mapping:
        """This mapping with `new` added and older bindings of the same control (same CC
        or note, on the same channel or any) removed."""

        def same_control(b: Binding) -> bool:
            return (
                b.kind == new.kind
                and b.number == new.number
                and (b.channel is None or new.channel is None or b.channel == new.channel)
            )

        return replace(self, bind=tuple(b for b in self.bind if not same_control(b)) + (new,))

    def to_toml(self) -> str:
        head = "# synd MIDI mapping (format: python -m pydoc synd.midi)\n"
        if self.name:
            head += f"name = {_toml_value(self.name)}\n"
        return head + "".join("\n" + b.to_toml() for b in self.bind)


def _int(table: dict, key: str, low: int, high: int, where: str) -> int | None:
    v = table.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise ValueError(f"{where}: '{key}' must be a whole number {low}..{high}, got {v!r}")
    return v


def _str(table: dict, key: str, where: str) -> str | None:
    v = table.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"{where}: '{key}' must be a non-empty string, got {v!r}")
    return v.strip()


def parse_binding(table: Any, where: str) -> Binding:
    """A checked Binding from one `[[bind]]` table; errors name `where`."""
    if not isinstance(table, dict):
        raise ValueError(f'{where}: must be a table like {{ cc = 21, param = "hue" }}')
    reject_unknown(Binding, table, where)
    cc, note = _int(table, "cc", 0, 127, where), _int(table, "note", 0, 127, where)
    if (cc is None) == (note is None):
        raise ValueError(f"{where}: give exactly one of 'cc' or 'note'")
    channel = _int(table, "channel", 1, 16, where)
    param, preset = _str(table, "param", where), _str(table, "preset", where)
    trigger, mode = _str(table, "trigger", where), _str(table, "mode", where)
    curve = _str(table, "curve", where)
    if sum(x is not None for x in (param, preset, trigger)) != 1:
        raise ValueError(f"{where}: give exactly one of 'param', 'preset' or 'trigger'")
    rng = table.get("range")
    if param is None:
        extra = [k for k in ("range", "curve") if table.get(k) is not None]
        if extra:
            raise ValueError(f"{where}: '{extra[0]}' only applies to a 'param'")
    if param is not None:
        if param not in PARAMS:
            raise ValueError(f"{where}: unknown parameter {param!r}; parameters: {', '.join(PARAMS)}")
        if note is not None:
            raise ValueError(
                f"{where}: a note cannot drive the continuous parameter {param!r}; bind it to a cc"
            )
        if curve is not None and curve not in CURVES:
            raise ValueError(f"{where}: 'curve' must be one of {', '.join(CURVES)}, got {curve!r}")
        if rng is not None:
            rng = _range(rng, param, where)
    if trigger is not None and trigger not in ACTIONS:
        raise ValueError(f"{where}: unknown trigger {trigger!r}; triggers: {', '.join(ACTIONS)}")
    if mode is not None:
        if trigger not in TRIGGERS:
            raise ValueError(f"{where}: 'mode' only applies to {', '.join(TRIGGERS)}")
        if mode not in MODES:
            raise ValueError(f"{where}: 'mode' must be momentary or toggle, got {mode!r}")
    return Binding(
        cc=cc,
        note=note,
        channel=channel,
        param=param,
        range=rng,
        curve=curve,
        preset=preset,
        trigger=trigger,
        mode=mode,
    )


def _range(value: Any, param: str, where: str) -> tuple[float, float]:
    p = PARAMS[param]
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    if not ok:
        raise ValueError(f"{where}: 'range' must be [low, high] (two numbers), got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not all(math.isfinite(v) and p.low <= v <= p.high for v in (low, high)):
        raise ValueError(f"{where}: 'range' {value!r} is outside {param}'s {p.low:g}..{p.high:g}")
    if low == high:
        raise ValueError(f"{where}: 'range' {value!r} is empty (low and high are the same)")
    return low, high


def parse_mapping(doc: dict, where: str) -> Mapping:
    """A checked Mapping from a parsed TOML document; every error names `where`."""
    reject_unknown(Mapping, doc, where)
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"{where}: 'name' must be a string, got {name!r}")
    binds = doc.get("bind", [])
    if not isinstance(binds, list):
        raise ValueError(f"{where}: 'bind' must be an array of tables ([[bind]])")
    return Mapping(
        name=name, bind=tuple(parse_binding(t, f"{where} bind #{i + 1}") for i, t in enumerate(binds))
    )


def loads_mapping(text: str, where: str) -> Mapping:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{where}: invalid TOML ({e})") from None
    return parse_mapping(doc, where)


def load_mapping(path: str | os.PathLike) -> Mapping:
    """Read and check a mapping file; any problem is a one-line ValueError naming it."""
    path = Path(path)
    where = f"MIDI mapping '{path}'"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: cannot read it ({e})") from None
    return loads_mapping(text, where)


def default_mapping() -> Mapping:
    """The shipped mapping for a generic 8-knob / 8-pad controller (midi_default.toml)."""
    text = resources.files("synd").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
    return loads_mapping(text, f"MIDI mapping '{DEFAULT_FILE}' (shipped)")


def user_mapping_path() -> Path:
    """$XDG_CONFIG_HOME/synd/midi.toml: the user's mapping, which MIDI learn writes."""
    return config_dir() / "midi.toml"


def resolve_mapping(path: str | os.PathLike | None = None) -> Mapping:
    """The mapping to use: `path` (which must exist), else the user's midi.toml when there
    is one, else the shipped default."""
    if path is not None:
        return load_mapping(path)
    user = user_mapping_path()
    return load_mapping(user) if user.is_file() else default_mapping()


def write_mapping(mapping: Mapping, path: str | os.PathLike) -> Path:
    """Write `mapping` as TOML to `path`, atomically."""
    return atomic_write_bytes(path, mapping.to_toml().encode("utf-8"))


def learn_target(target: str) -> Binding:
    """A template Binding (without its control) for learn target `target`: a parameter,
    a trigger, "cut" or "preset/next" | "preset/previous" | "preset/random" | "preset/NAME"."""
    target = str(target).strip()
    if target in PARAMS:
        return Binding(cc=0, param=target)
    if target in ACTIONS:
        return Binding(cc=0, trigger=target)
    if target.startswith("preset/") and target[len("preset/") :].strip():
        return Binding(cc=0, preset=target[len("preset/") :].strip())
    raise ValueError(
        f"cannot learn {target!r}: name a parameter ({', '.join(PARAMS)}), a trigger "
        f"({', '.join(ACTIONS)}) or preset/next, preset/previous, preset/random, preset/NAME"
    )


# -- MIDI APIs and ports ---------------------------------------------------------------


def _rtmidi():
    try:
        import rtmidi
    except ImportError:
        raise MidiError("MIDI needs python-rtmidi: pip install 'synethesia[live]'") from None
    return rtmidi


def _api_constants(rtmidi) -> dict[str, int]:
    return {
        "alsa": rtmidi.API_LINUX_ALSA,
        "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE,
        "winmm": rtmidi.API_WINDOWS_MM,
    }


def compiled_apis() -> list[str]:
    """The names (as `api` takes them) of the MIDI APIs this python-rtmidi was built with."""
    rtmidi = _rtmidi()
    names = {v: k for k, v in _api_constants(rtmidi).items()}
    return [names[a] for a in rtmidi.get_compiled_api() if a in names]


def choose_api(api: str = "auto") -> tuple[str, int]:
    """(name, rtmidi constant) for `api`; a one-line MidiError when it is unknown or missing."""
    rtmidi = _rtmidi()
    consts = _api_constants(rtmidi)
    api = str(api).strip().lower()
    if api not in APIS:
        raise MidiError(f"unknown MIDI API {api!r}; choose {', '.join(APIS)}")
    have = compiled_apis()
    if api == "auto":
        if sys.platform == "darwin":
            order = ["coremidi"]
        elif sys.platform == "win32":
            order = ["winmm"]
        else:  # the ALSA sequencer when the kernel has it (not in many containers), else JACK
            order = ["alsa", "jack"] if os.path.exists("/dev/snd/seq") else ["jack", "alsa"]
        api = next((a for a in order if a in have), have[0] if have else "")
        if not api:
            raise MidiError("python-rtmidi was built without any MIDI API")
    if api not in have:
        raise MidiError(
            f"MIDI API {api} is not available here; this python-rtmidi has: {', '.join(have) or 'none'}"
        )
    return api, consts[api]


def _open(cls, api: str, const: int, client: str, **options):
    said = None  # libjack and ALSA print their own complaints: to the debug log
    try:
        with quiet_stderr(f"MIDI ({api})", log) as said:
            return cls(const, name=client, **options)
    except Exception as e:  # noqa: BLE001 - rtmidi.SystemError: no JACK server, no ALSA sequencer, ...
        hint = " (start jackd first)" if api == "jack" else ""
        raise MidiError(f"cannot open MIDI API {api}: {explain(e, said)}{hint}") from None


def _find_port(ports: list[str], wanted: str, what: str) -> int:
    w = wanted.strip().lower()
    for i, p in enumerate(ports):
        if p.lower() == w:
            return i
    hits = [i for i, p in enumerate(ports) if w in p.lower()]
    if not hits:
        raise MidiError(
            f"no MIDI {what} port matches {wanted!r}; ports: {', '.join(repr(p) for p in ports) or 'none'}"
        )
    if len(hits) > 1:
        log.info(
            "MIDI %s %r matches %s; using the first", what, wanted, ", ".join(repr(ports[i]) for i in hits)
        )
    return hits[0]


def list_ports(api: str = "auto", client_name: str = "synd-ports") -> tuple[list[str], list[str]]:
    """(input ports, output ports) of MIDI API `api`."""
    rtmidi = _rtmidi()
    name, const = choose_api(api)
    mi, mo = _open(rtmidi.MidiIn, name, const, client_name), None
    try:
        mo = _open(rtmidi.MidiOut, name, const, client_name)
        return list(mi.get_ports()), list(mo.get_ports())
    finally:
        for m in (mi, mo):
            if m is not None:
                m.delete()


# -- rate-limited complaints -----------------------------------------------------------

#: A problem of one kind is logged at most once in this many seconds; a summary line
#: counts them all once per period.
LOG_EVERY_S = 10.0


class _Complaints:
    """Failures and bad input: `complaints(what, exc)` logs at most one line per `what`
    every LOG_EVERY_S (synd.ratelimit) and counts it; `tally` sums them up by kind in
    one line per period. `count` is the number of complaints so far."""

    def __init__(self, every: float = LOG_EVERY_S):
        self.limiter = RateLimiter(log, every)
        self.tally = Tally(log, "MIDI: messages refused or commands failed", every)
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self.count += 1
        self.tally.add(what)
        self.limiter(what, None, f"MIDI {what}: {exc}")


# -- the control surface ---------------------------------------------------------------

_STOP = object()
POLL_SECONDS = 0.002  # how often the worker reads a JACK input (see MidiControl)
#: RtMidi's queue for a JACK input: a flood from another JACK client arrives a period at
#: a time (thousands of events); RtMidi prints a line on stderr for each one that does
#: not fit. About 40 bytes an entry.
JACK_QUEUE = 16384
#: Messages the driver's callback may queue for the worker (other APIs); beyond, a flood
#: is refused rather than held in memory.
MAX_QUEUED = 4096
#: JACK: a lone F7 goes into synd's own input after this long without input (_SysexGuard).
UNSTICK_S = 0.25


@dataclass
class _Event:
    """A parsed channel message: kind "cc" or "note", channel 1..16, number, value
    (CC value or note velocity; a note-off is velocity 0)."""

    kind: str
    channel: int
    number: int
    value: int


#: Data bytes after each status: channel messages by their high nibble, system messages
#: by the whole byte (None: a sysex, any length; missing: undefined, F4 F5 F9 FD).
_CHANNEL_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA = {
    0xF0: None,
    0xF1: 1,
    0xF2: 2,
    0xF3: 1,
    0xF6: 0,
    0xF7: 0,
    0xF8: 0,
    0xFA: 0,
    0xFB: 0,
    0xFC: 0,
    0xFE: 0,
    0xFF: 0,
}


def parse_message(message: list[int] | tuple[int, ...]) -> _Event | None:
    """A CC, note-on or note-off as an _Event; None for any other well-formed message
    (program change, clock, sysex, ...). ValueError (one line) for a malformed one:
    empty, data without a status byte (each message carries its own), an undefined
    status, a data byte above 127, or the wrong number of data bytes."""
    check_message(message)
    if len(message) != 3:
        return None
    status, a, b = message
    kind, channel = status & 0xF0, (status & 0x0F) + 1
    if kind == 0xB0:
        return _Event("cc", channel, a, b)
    if kind == 0x90:
        return _Event("note", channel, a, b)
    if kind == 0x80:
        return _Event("note", channel, a, 0)
    return None


def check_message(message: list[int] | tuple[int, ...]) -> None:
    """ValueError (one line, "malformed message ...") unless `message` is one well-formed
    MIDI message."""
    if not message:
        raise ValueError("malformed message: empty")
    status, data = message[0], message[1:]
    if not isinstance(status, int) or not 0x80 <= status <= 0xFF:
        raise ValueError(f"malformed message: no status byte: {_hex(message)}")
    wanted: int | None  # None: a sysex, of any length
    if status < 0xF0:
        wanted = _CHANNEL_DATA[status & 0xF0]
    elif status in _SYSTEM_DATA:
        wanted = _SYSTEM_DATA[status]
    else:
        raise ValueError(f"malformed message: undefined status {status:02X}")
    if wanted is None:  # a sysex: F0, data, F7; ignored, so its data is not read through
        if not data or data[-1] != 0xF7:
            raise ValueError(
                f"malformed message: a sysex without its end (F7), {len(message)} bytes: {_hex(message)}"
            )
        return
    if len(data) != wanted:
        raise ValueError(
            f"malformed message: status {status:02X} takes {wanted} data "
            f"bytes, got {len(data)}: {_hex(message)}"
        )
    if not all(isinstance(x, int) and 0 <= x <= 127 for x in data):
        raise ValueError(f"malformed message: a data byte above 127: {_hex(message)}")


def _hex(message, limit: int = 8) -> str:
    text = " ".join(f"{x:02X}" if isinstance(x, int) else "?" for x in message[:limit])
    return text + (" ..." if len(message) > limit else "")


class _SysexGuard:
    """Keeps a JACK input from going deaf after a stray sysex start.

    RtMidi's JACK input takes every event after a sysex start that does not end in F7
    (a bare F0, a sysex cut short) as more of that sysex until an event ends in F7, and
    with sysex ignored drops them all (measured: one `F0 01 02` from a client silenced
    every later CC). This JACK client of our own, connected to synd's input port, sends
    a lone F7 (End of Exclusive: nothing outside a sysex) after UNSTICK_S without input,
    which ends such a sysex. Made before synd's input port is opened, it connects to the
    one input port that appeared since (`connect`).
    """

    def __init__(self, rtmidi, const: int, client_name: str):
        with quiet_stderr("MIDI (jack)", log):
            self._out = rtmidi.MidiOut(const, name=f"{client_name}-guard")
        self._before = set(self._out.get_ports())
        self._last = time.monotonic()

    def connect(self) -> bool:
        """Connect to the input port opened since; False when that is not exactly one."""
        ports = self._out.get_ports()
        new = [i for i, p in enumerate(ports) if p not in self._before]
        if len(new) != 1:
            return False
        self._out.open_port(new[0], "sysex guard")
        return True

    def poke(self, last_input: float) -> None:
        """Send the F7 when nothing came in (and nothing was sent) for UNSTICK_S."""
        now = time.monotonic()
        if now - max(last_input, self._last) >= UNSTICK_S:
            self._last = now
            self._out.send_message([0xF7])

    def close(self) -> None:
        try:
            self._out.close_port()
        finally:
            self._out.delete()


class MidiControl:
    """A MIDI control surface for a `Controller`; see the module docstring.

    `api`: auto, alsa, jack, coremidi or winmm. `port`: part of the name of an existing
    MIDI input port, or None / "virtual" for a virtual input port named `client_name`.
    `mapping`: a Mapping (default: the shipped one). `feedback_port`: part of the name of a
    MIDI output port to send the state to, "virtual" for a virtual port named
    "<client_name> out", or None for no feedback. `save_path`: where learned bindings are
    saved at once (None: only with `save_mapping`). `controller` may be None (learn only).
    """

    def __init__(
        self,
        controller,
        api: str = "auto",
        port: str | None = None,
        mapping: Mapping | None = None,
        feedback_port: str | None = None,
        client_name: str = "synd",
        *,
        save_path: str | os.PathLike | None = None,
    ):
        self.controller = controller
        self.api = api
        self.port = port
        self.feedback_port = feedback_port
        self.client_name = client_name
        self.save_path = Path(save_path) if save_path is not None else None
        self._mapping = mapping if mapping is not None else default_mapping()
        self._lock = threading.Lock()
        self._learned = threading.Condition(self._lock)
        self._learning: str | None = None
        self._last_learned: Binding | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._in = None
        self._out = None
        self._io = threading.Lock()  # held while a port is used or deleted
        self._poll = False
        self._guard: _SysexGuard | None = None
        self._last_input = time.monotonic()  # when the worker last read a JACK message
        self._running = False
        self._subscribed = False
        self._pressed: dict[tuple[int, int], bool] = {}  # CC (channel, number) -> pressed
        self._cc_seen: dict[tuple[int, int], int] = {}  # last CC value in or out
        self.complaints = _Complaints()
        self.received = 0  # channel messages taken from the input
        self.in_port_name = ""
        self.out_port_name = ""

    # -- the mapping -------------------------------------------------------------------

    @property
    def mapping(self) -> Mapping:
        return self._mapping

    @mapping.setter
    def mapping(self, mapping: Mapping) -> None:
        with self._lock:
            self._mapping = mapping

    def save_mapping(self, path: str | os.PathLike) -> Path:
        """Write the current mapping (with learned bindings) to `path`, atomically."""
        return write_mapping(self.mapping, path)

    # -- learn -------------------------------------------------------------------------

    def learn(self, target: str | None) -> None:
        """Bind the next control moved to `target` (see `learn_target`); None cancels."""
        if target is not None:
            learn_target(target)  # checks the name now, in the caller's thread
            log.info("MIDI learn: move a control for %s", target)
        with self._learned:
            self._learning = None if target is None else str(target).strip()
            self._last_learned = None
            self._learned.notify_all()

    @property
    def learning(self) -> str | None:
        """The target learn mode waits for a control for, or None."""
        return self._learning

    def wait_learned(self, timeout: float | None = None) -> Binding | None:
        """Wait until the last learn armed has bound a control and return that Binding;
        None when it timed out or was cancelled."""
        with self._learned:
            self._learned.wait_for(lambda: self._learning is None, timeout)
            return self._last_learned if self._learning is None else None

    def _try_learn(self, ev: _Event) -> bool:
        """Bind `ev`'s control to the armed target; True when `ev` was used for that."""
        with self._lock:
            target = self._learning
            if target is None:
                return False
            template = learn_target(target)
            if ev.kind == "note" and (ev.value == 0 or template.param is not None):
                return False  # a release, or a note for a continuous parameter
            cc, note = (ev.number, None) if ev.kind == "cc" else (None, ev.number)
            binding = replace(template, channel=ev.channel, cc=cc, note=note)
            self._mapping = self._mapping.with_binding(binding)
            self._learning = None
            self._last_learned = binding
            self._learned.notify_all()
        if ev.kind == "cc":
            self._pressed[(ev.channel, ev.number)] = ev.value >= 64
            self._cc_seen[(ev.channel, ev.number)] = ev.value
        log.info(
            "MIDI learn: %s %d on channel %d -> %s",
            ev.kind.upper() if ev.kind == "cc" else "note",
            ev.number,
            ev.channel,
            binding.target,
        )
        if self.save_path is not None:
            try:
                self.save_mapping(self.save_path)
            except OSError as e:
                self.complaints("mapping save", e)
        return True

    # -- start and stop ----------------------------------------------------------------

    def start(self) -> MidiControl:
        """Open the ports and start handling messages; MidiError (one line) when the API
        or a port is missing."""
        if self._running:
            return self
        rtmidi = _rtmidi()
        api, const = choose_api(self.api)
        virtual_in = self.port is None or str(self.port).strip().lower() == VIRTUAL
        fb = None if self.feedback_port is None else str(self.feedback_port).strip()
        virtual_out = fb is not None and fb.lower() == VIRTUAL
        if (virtual_in or virtual_out) and api == "winmm":
            raise MidiError(
                "Windows MM has no virtual MIDI ports: name an existing port "
                "(one made by loopMIDI, for instance)"
            )
        jack = api == "jack"
        midi_in = _open(
            rtmidi.MidiIn, api, const, self.client_name, **({"queue_size_limit": JACK_QUEUE} if jack else {})
        )
        midi_out = None
        guard = self._make_guard(rtmidi, const) if jack else None
        try:
            # Real ports first, so that a name never matches one of our own virtual ports.
            if not virtual_in:
                ports = midi_in.get_ports()
                i = _find_port(ports, str(self.port), "input")
                self.in_port_name = ports[i]
                midi_in.open_port(i, f"{self.client_name} in")
            if fb is not None:
                midi_out = _open(rtmidi.MidiOut, api, const, self.client_name)
                if virtual_out:
                    midi_out.open_virtual_port(f"{self.client_name} out")
                    self.out_port_name = f"{self.client_name} out"
                else:
                    ports = midi_out.get_ports()
                    j = _find_port(ports, fb, "output")
                    self.out_port_name = ports[j]
                    midi_out.open_port(j, f"{self.client_name} out")
            if virtual_in:
                midi_in.open_virtual_port(self.client_name)
                self.in_port_name = self.client_name
            midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
            if guard is not None and not guard.connect():
                log.info(
                    "MIDI: cannot tell synd's own JACK input port among the new ports; "
                    "no guard against a stray sysex start"
                )
                guard.close()
                guard = None
        except Exception as e:
            if guard is not None:
                guard.close()
            for m in (midi_in, midi_out):
                if m is not None:
                    m.delete()
            if isinstance(e, MidiError):
                raise
            raise MidiError(f"cannot open MIDI port: {e}") from None
        self._in, self._out, self._guard = midi_in, midi_out, guard
        self._queue = queue.SimpleQueue()
        self._running = True
        # JACK calls an input callback in its real-time process thread, where Python must
        # wait for the GIL: that stalls the JACK graph, and in bursts python-rtmidi then
        # hands over stale bytes (measured: about one burst of 129 CCs in four arrived with
        # repeated values). So a JACK input is read by the worker from RtMidi's queue
        # instead; the other APIs call back on a thread of their own.
        self._poll = jack
        self._worker = threading.Thread(target=self._work, name="synd-midi", daemon=True)
        self._worker.start()
        if not self._poll:
            midi_in.set_callback(self._on_message)
        if self.controller is not None and not self._subscribed:
            self.controller.subscribe("learn", self._on_learn_request)
            self.controller.subscribe("changed", self._on_changed)
            self._subscribed = True
        if midi_out is not None:
            self._queue.put(("sync",))
        log.info(
            "MIDI (%s): listening on %s%s",
            api,
            self.in_port_name,
            f", feedback to {self.out_port_name}" if midi_out is not None else "",
        )
        return self

    def _make_guard(self, rtmidi, const: int) -> _SysexGuard | None:
        try:
            return _SysexGuard(rtmidi, const, self.client_name)
        except Exception as e:  # noqa: BLE001 - JACK refused one more client: go on without
            log.info("MIDI: no guard against a stray sysex start (%s)", e)
            return None

    def stop(self, timeout: float = 2.0) -> None:
        """Close the ports and stop the worker (idempotent)."""
        with self._lock:
            if not self._running:
                return
            self._running = False
        self._queue.put(_STOP)
        worker, self._worker = self._worker, None
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
        with self._io:  # a worker stuck in a slow command cannot touch a deleted port
            for port in (self._in, self._out):
                if port is None:
                    continue
                try:
                    if port is self._in:
                        port.cancel_callback()
                    port.close_port()
                finally:
                    port.delete()
            if self._guard is not None:
                self._guard.close()
            self._in = self._out = self._guard = None
        self.complaints.tally.report(force=True)

    def __enter__(self) -> MidiControl:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
        return {
            "running": self._running,
            "input": self.in_port_name,
            "feedback": self.out_port_name or None,
            "received": self.received,
            "errors": self.complaints.count,
            "learning": self._learning,
        }

    # -- threads -----------------------------------------------------------------------

    def _on_message(self, event, _data=None) -> None:
        """rtmidi's callback (the driver's thread): parse and hand over, nothing more."""
        try:
            ev = parse_message(event[0])
            if ev is None:
                return
            if self._queue.qsize() >= MAX_QUEUED:  # the worker is behind: refuse, not hoard
                self.complaints(
                    "overflow", OverflowError(f"{MAX_QUEUED} messages waiting; dropping new ones")
                )
                return
            self._queue.put(ev)
        except Exception as e:  # noqa: BLE001 - a bad message must never kill the callback
            self.complaints("input", e)

    def _on_learn_request(self, target: str) -> None:
        if self._running:
            self.learn(target)

    def _on_changed(self, name: str, value: Any) -> None:
        if self._running and self._out is not None:
            self._queue.put(("changed", name, value))

    def _read_input(self) -> list[_Event]:
        """The messages waiting in RtMidi's queue (JACK: see `start`)."""
        events: list[_Event] = []
        with self._io:
            midi_in = self._in
            for _ in range(JACK_QUEUE):  # all that waits: RtMidi's queue fills while we work
                got = midi_in.get_message() if midi_in is not None else None
                if got is None:
                    break
                self._last_input = time.monotonic()
                try:
                    ev = parse_message(got[0])
                except Exception as e:  # noqa: BLE001 - a bad message is skipped
                    self.complaints("input", e)
                    continue
                if ev is not None:
                    events.append(ev)
        return events

    def _work(self) -> None:
        while True:
            batch: list = self._read_input() if self._poll else []
            if not batch:
                try:
                    batch.append(self._queue.get(timeout=self._idle_wait()))
                except queue.Empty:
                    self._idle()
                    continue
            while True:  # take everything waiting: a fast knob sweep is applied once
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in self._coalesce(batch):
                if item is _STOP:
                    return
                try:
                    if isinstance(item, _Event):
                        try:
                            self._handle(item)
                        finally:
                            self.received += 1  # counted once handled (tests wait on it)
                    elif item[0] == "changed":
                        self._feedback(item[1], item[2])
                    elif item[0] == "sync":
                        self._sync()
                except Exception as e:  # noqa: BLE001 - logged, the next message goes on
                    self.complaints("command", e)
            self.complaints.tally.report()

    def _idle_wait(self) -> float | None:
        """How long the worker may wait for the queue: a JACK input is read every
        POLL_SECONDS; otherwise until the complaints' summary line is due."""
        if self._poll:
            return POLL_SECONDS
        due = self.complaints.tally.due()
        return None if due is None else max(0.0, due - time.monotonic())

    def _idle(self) -> None:
        """Nothing came in: the summary line when due, the sysex guard's F7 (JACK)."""
        self.complaints.tally.report()
        if self._guard is not None:
            with self._io:
                if self._guard is not None:
                    try:
                        self._guard.poke(self._last_input)
                    except Exception as e:  # noqa: BLE001 - the guard is a help, not a must
                        self.complaints("sysex guard", e)

    def _coalesce(self, batch: list) -> list:
        """Drop a CC that drives only continuous parameters when a later CC of the same
        control is in the same batch (the last value wins; presses are never dropped)."""
        if len(batch) < 3:
            return batch
        mapping, last = self._mapping, {}
        for i, item in enumerate(batch):
            if isinstance(item, _Event) and item.kind == "cc":
                last[(item.channel, item.number)] = i
        out = []
        for i, item in enumerate(batch):
            if (
                isinstance(item, _Event)
                and item.kind == "cc"
                and last[(item.channel, item.number)] != i
                and self._learning is None
            ):
                bound = mapping.lookup("cc", item.number, item.channel)
                if bound and all(b.param is not None for b in bound):
                    self.received += 1
                    continue
            out.append(item)
        return out

    def _handle(self, ev: _Event) -> None:
        if self._try_learn(ev):
            return
        key = (ev.channel, ev.number)
        if ev.kind == "cc":
            self._cc_seen[key] = ev.value
            was = self._pressed.get(key, False)
            pressed = ev.value >= 64
            self._pressed[key] = pressed
            edge = None if pressed == was else pressed
        else:
            edge = ev.value > 0
        ctl = self.controller
        if ctl is None:
            return
        for b in self._mapping.lookup(ev.kind, ev.number, ev.channel):
            try:
                if b.param is not None:
                    ctl.set(b.param, b.value(ev.value))
                elif edge is None:
                    continue
                elif b.preset is not None:
                    if edge:
                        ctl.select_preset(b.preset)
                elif b.trigger == "cut":
                    if edge:
                        ctl.cut()
                elif b.held_mode == "momentary":
                    ctl.trigger(b.trigger, edge)
                elif edge:
                    ctl.trigger(b.trigger, None)
            except Exception as e:  # noqa: BLE001 - one binding failing does not stop the rest
                self.complaints(f"{b.kind} {b.number} -> {b.target}", e)

    # -- feedback ----------------------------------------------------------------------

    def _send(self, message: list[int]) -> None:
        with self._io:
            if self._out is not None:
                self._out.send_message(message)

    def _feedback(self, name: str, value: Any) -> None:
        for b in self._mapping.bind:
            ch = (b.channel or 1) - 1
            if b.param is not None and b.param == name:
                raw = b.raw(value)
                key = (b.channel or 1, b.number)
                if self._cc_seen.get(key) == raw:
                    continue  # the control is already there (it probably sent this value)
                self._cc_seen[key] = raw
                self._send([0xB0 | ch, b.number, raw])
            elif b.trigger is not None and b.trigger == name and name in TRIGGERS:
                if b.kind == "cc":
                    self._send([0xB0 | ch, b.number, 127 if value else 0])
                else:
                    self._send([0x90 | ch, b.number, 127] if value else [0x80 | ch, b.number, 0])

    def _sync(self) -> None:
        """Send every mapped parameter and trigger state (at start: faders and LEDs)."""
        state = self.controller.state() if self.controller is not None else {}
        names = {b.param or b.trigger for b in self._mapping.bind}
        for name in names:
            if name is not None and name in state:
                self._feedback(name, state[name])


# -- learn without a daemon ------------------------------------------------------------


def learn_once(
    target: str,
    *,
    api: str = "auto",
    port: str | None = None,
    mapping_path: str | os.PathLike | None = None,
    timeout: float | None = 30.0,
    client_name: str = "synd-learn",
    ready: Callable[[MidiControl], None] | None = None,
) -> tuple[Binding, Path]:
    """Wait for the next control moved on `port` (None: a virtual port named `client_name`),
    bind it to `target` in the mapping at `mapping_path` (default: the user's midi.toml,
    starting from the shipped mapping when it does not exist yet) and save it.

    Returns (the binding, the file written); ValueError (one line) on a bad target, port or
    file, TimeoutError when nothing was moved within `timeout` seconds. `ready(midi)` is
    called once the port is open.
    """
    learn_target(target)
    path = Path(mapping_path) if mapping_path is not None else user_mapping_path()
    mapping = load_mapping(path) if path.is_file() else default_mapping()
    midi = MidiControl(None, api=api, port=port, mapping=mapping, client_name=client_name)
    midi.learn(target)
    with midi:
        if ready is not None:
            ready(midi)
        binding = midi.wait_learned(timeout)
    if binding is None:
        raise TimeoutError(f"no MIDI control was moved within {timeout:g} s")
    return binding, midi.save_mapping(path)


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The `ports` and `learn` commands on `parser`: the one definition behind both
    `synd midi` and `python -m synd.midi`; `run_command` carries them out."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", default="auto", help=f"MIDI API: {', '.join(APIS)}")
    sub = parser.add_subparsers(dest="midi_command", metavar="ACTION", required=True)
    sub.add_parser("ports", parents=[common], help="list the MIDI input and output ports")
    lp = sub.add_parser(
        "learn", parents=[common], help="bind the next control moved to a parameter or trigger"
    )
    lp.add_argument("target", help="a parameter, trigger, cut or preset/next|previous|random|NAME")
    lp.add_argument("--port", default=None, help="part of an input port's name (default: a virtual port)")
    lp.add_argument("--mapping", default=None, help=f"mapping file (default: {user_mapping_path()})")
    lp.add_argument("--timeout", type=float, default=60.0)


def run_command(args: argparse.Namespace) -> int:
    """Carry out a command parsed by `add_commands`; errors are one line on stderr."""
    try:
        if args.midi_command == "ports":
            ins, outs = list_ports(args.api)
            print("inputs:  " + (", ".join(ins) or "none"))
            print("outputs: " + (", ".join(outs) or "none"))
            return 0

        def ready(midi: MidiControl) -> None:
            print(f"move a control for {args.target} (on {midi.in_port_name}) ...", flush=True)

        binding, path = learn_once(
            args.target,
            api=args.api,
            port=args.port,
            mapping_path=args.mapping,
            timeout=args.timeout,
            ready=ready,
        )
        print(
            f"{binding.kind} {binding.number} (channel {binding.channel}) -> {binding.target}; saved {path}"
        )
        return 0
    except (ValueError, TimeoutError, OSError) as e:
        print(f"synd midi: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    """`python -m synd.midi ports | learn TARGET`."""
    ap = argparse.ArgumentParser(prog="python -m synd.midi", description="synd MIDI tools")
    add_commands(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
