"""OSC control: the `Controller`'s command set over UDP (TouchOSC, Open Stage Control, Max,
Resolume, a lighting desk, `oscsend`).

`OscServer` listens on 127.0.0.1:9000 by default. Every address lives under `/synd/`.
A message to a settable address WITH arguments changes it; the same address with NO
arguments is a query: the current value comes back to the sender's address and port, on
the same address (`/synd/intensity` -> `/synd/intensity 0.8`). Numbers may be sent as
int or float (i, h, f, d) and on/off as i, f or `T`/`F`; on/off values are sent back as
i 0/1, and an empty slot as the empty string.

| Address               | Args  | Effect                                              | Query reply |
|-----------------------|-------|-----------------------------------------------------|-------------|
| /synd/preset          | s     | show preset NAME, crossfading over transition_time  | s preset    |
| /synd/preset/next     | [n]   | the next preset                                     | -           |
| /synd/preset/previous | [n]   | the previous preset                                 | -           |
| /synd/preset/random   | [n]   | a random other preset                               | -           |
| /synd/intensity       | f     | 0..2, how strongly the sound drives the picture     | f           |
| /synd/crossfade       | f     | 0..1, slot A to slot B                              | f           |
| /synd/feedback        | f     | 0..0.99, share of the previous frame                | f           |
| /synd/hue             | f     | 0..1, hue turn on top of the preset's own colours   | f           |
| /synd/flow            | f     | 0..2, how fast the pattern flows with the music     | f           |
| /synd/lines           | f     | 0..1, the picture drawn as glowing contour lines    | f           |
| /synd/ink             | f     | 0..1, the picture printed vivid on black            | f           |
| /synd/mirror          | f     | 0..16, mirrored wedges of a kaleidoscope, 0 off     | f           |
| /synd/tunnel          | f     | 0..1, the picture wrapped into a streaming tunnel   | f           |
| /synd/gain            | f     | 0..8, input gain (sensitivity)                      | f           |
| /synd/transition_time | f     | 0..60 s, length of a preset change or fade          | f           |
| /synd/rotate          | f     | 0..3600 s between automatic preset changes, 0 off   | f           |
| /synd/model/a         | s     | load model or preset NAME into slot A, no fade      | s model     |
| /synd/model/b         | s     | the same for slot B                                 | s model     |
| /synd/fade            | f [f] | crossfader to TARGET over SECONDS (transition_time) | f position  |
| /synd/cut             | [n]   | switch to the other slot on the next beat           | -           |
| /synd/blackout        | i     | 1 press (black frames), 0 release                   | i 0/1       |
| /synd/blackout/toggle | [n]   | toggle blackout                                     | -           |
| /synd/freeze          | i     | 1 press (hold the picture), 0 release               | i 0/1       |
| /synd/freeze/toggle   | [n]   | toggle freeze                                       | -           |
| /synd/lock            | i     | 1 press (no automatic preset rotation), 0 release   | i 0/1       |
| /synd/lock/toggle     | [n]   | toggle lock                                         | -           |
| /synd/output/NAME     | i     | 1 resume, 0 pause output NAME (ndi, record, ...)    | i 0/1       |
| /synd/flash_guard     | i     | 1 on (default), 0 off: the flash guard              | i 0/1       |
| /synd/input           | s     | switch the audio input to one of /synd/inputs       | s input     |
| /synd/midi/learn      | s     | bind the next MIDI control moved to PARAM           | -           |
| /synd/status          |       | query only                                          | see below   |
| /synd/presets         |       | query only                                          | s... names  |
| /synd/models          |       | query only: models and presets for the slots        | s... names  |
| /synd/inputs          |       | query only: audio inputs /synd/input takes          | s... names  |
| /synd/outputs         |       | query only                                          | s... names  |
| /synd/subscribe       | [f [i]] | send me changes for SECONDS (10, at most 60; 0 ends), | see below |
|                       |         | with PREVIEW pictures if 1                            |           |

`[n]`: an action takes no argument, or one number: non-zero fires it, 0 is ignored (the
release of a TouchOSC button, which sends 1 on press and 0 on release).

`/synd/status` is ONE message with eight arguments in this order, a consistent snapshot:
`fps f, latency_ms f (-1 = not known yet), preset s, model_a s, model_b s, crossfade f,
dropped i, guarded i` (frames dropped since the start; frames the flash guard changed).

`/synd/subscribe` is how a control surface that cannot be the one feedback target (the
tray of `synd tray`, a second TouchOSC) follows the show: the sender gets everything a
feedback target gets (below), plus `/synd/status` four times a second, for SECONDS; it
renews by subscribing again. A new subscriber first gets the state in full: the lists
(`/synd/presets`, `/synd/models`, `/synd/inputs`, `/synd/outputs`), every value
(`/synd/intensity f`, ..., `/synd/input s`, `/synd/output/NAME i`) and the status. With
PREVIEW 1 it also gets `/synd/preview b`, the picture as a JPEG of at most 320x180, up
to 15 times a second. At most 8 subscribers at once.

With a feedback target (`feedback=(host, port)`) synd also sends, unasked, from its own
port: `/synd/status ...` every `status_every` seconds; `/synd/beat f` (onset strength)
on every beat; `/synd/NAME value` whenever a parameter, trigger, preset, slot or output
changes (from any surface, so TouchOSC faders follow MIDI and the tray); and
`/synd/midi/learn s` when a MIDI learn is requested.

Bundles (nested too) are unpacked and their messages applied in order on arrival; time
tags are not waited for. OSC address patterns (`/synd/*/toggle`, `/synd/{hue,gain}`)
work: each matching address acts, and queries reply on the matched addresses. OSC 1.1's
`//` (any number of levels) is not supported: such a pattern matches nothing.

Anything wrong (a packet that is not OSC, a truncated one, an unsupported type tag, an
unknown address, wrong argument types or counts, a value the controller refuses, a
sender outside the allow-list) is dropped and logged in one line, at most once per kind
and address every ten seconds and at most ten lines per kind in that time (with a count
of the ones not logged); every ten seconds in which something was dropped ends with one
line counting what was dropped, by kind. The server goes on.

Limits, so that no packet costs much however it is made: a packet is checked before it
is parsed (`_scan`): it has at most MAX_PACKET bytes, bundles nest at most
MAX_BUNDLE_DEPTH deep and carry at most MAX_MESSAGES messages, a message has at most
MAX_ARGS arguments in arrays nested at most MAX_ARRAY_DEPTH deep and an address of at
most MAX_ADDRESS_LEN bytes; each element's size must fit its bundle. Address patterns
are matched by `AddressPattern`, which walks the pattern once per character of an
address (no backtracking regular expression: `/synd/********x` cannot take exponential
time), and refuses patterns with more than MAX_WILDCARDS wildcards. A flood is read
BATCH packets at a time, so timers still run.

Design: one thread of our own, a non-blocking UDP socket and `select` with a wake-up
socket (prompt stop, no polling, works on Windows too). python-osc parses packets
(`OscPacket`, nested bundles included) once `_scan` has passed them, and builds replies.
Its ready-made servers are not used: `ThreadingOSCUDPServer` starts a thread per
message, and all of them drop malformed packets silently and sleep in the receiving
thread until a bundle's time tag, so a bundle dated an hour ahead would stall every
control surface. Replies and feedback are sent from the listening socket (any thread may
send; a datagram never blocks).
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from synd.control import PARAMS, TRIGGERS
from synd.ratelimit import RateLimiter, Tally

try:
    from pythonosc.osc_message_builder import OscMessageBuilder
    from pythonosc.osc_packet import OscPacket
except ImportError:  # python-osc is in the "live" extra; check_bind works without it
    OscMessageBuilder = OscPacket = None  # type: ignore[assignment,misc]  # None: not installed

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
#: A problem of one kind at one address is logged at most once in this many seconds.
LOG_EVERY_S = 10.0
#: At most this many lines per kind of problem in LOG_EVERY_S (many different addresses).
LOG_KINDS_MAX = 10
MAX_DATAGRAM = 65536
#: Larger packets are refused unread: a control surface's are a few hundred bytes, and
#: python-osc reads a string byte by byte in Python (about 4 ms for 64 KiB).
MAX_PACKET = 16384
#: Bundles nested deeper than this are refused (python-osc would recurse without limit).
MAX_BUNDLE_DEPTH = 8
#: Messages in one packet (all its bundles); a control surface sends a handful.
MAX_MESSAGES = 128
#: Arguments of one message, and how deep its arrays may nest (no command takes arrays).
MAX_ARGS = 64
MAX_ARRAY_DEPTH = 4
#: Address patterns with more wildcards than this are refused (bounds the matching work).
MAX_WILDCARDS = 8
MAX_ADDRESS_LEN = 256
#: Packets handled per wake-up before the timer gets a look-in (a flood cannot starve it).
BATCH = 256
#: Replies to one packet: a sender whose address is forged (UDP) must not be able to turn
#: a small query packet ("/*/*" matches every address) into a stream aimed at someone else.
MAX_REPLIES = 16
#: Control surfaces that may subscribe at once (each costs a datagram per change).
MAX_SUBSCRIBERS = 8
SUBSCRIBE_DEFAULT_S = 10.0
SUBSCRIBE_MAX_S = 60.0
#: How often subscribers get `/synd/status` (a fader follows a running fade).
SUBSCRIBER_STATUS_S = 0.25
#: Preview pictures for subscribers that ask: at most this rate and size (one datagram).
PREVIEW_FPS = 15.0
PREVIEW_SIZE = (320, 180)
SUPPORTED_TAGS = frozenset("ihfdsbrmtTFN[]")  # what python-osc decodes
PATTERN_CHARS = frozenset("*?[]{}")


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse (ValueError, one line) to listen on a host other machines can reach,
    unless `allow_remote`: OSC has no authentication, anyone who can reach the port
    controls the show."""
    if allow_remote:
        return
    if not host or not host.strip():
        raise ValueError(
            "OSC host is empty (all interfaces): listen on 127.0.0.1, or allow remote control explicitly"
        )
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve OSC host {host!r}: {exc}") from None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not ip.is_loopback:
            raise ValueError(
                f"OSC on {host} ({ip}) would take commands from other machines: "
                "listen on 127.0.0.1, or allow remote control explicitly"
            )


class _BadArgs(ValueError):
    """The message's arguments do not fit its address."""


class _Malformed(Exception):
    """The packet is not well-formed OSC."""


class _Unsupported(Exception):
    """The packet uses an OSC type tag python-osc cannot decode."""


def _scan(dgram: bytes) -> int:
    """Check a packet's structure before python-osc parses it, and return how many
    messages it holds. python-osc skips unknown type tags and unidentifiable bundle
    elements with an unthrottled warning on the root logger (and misreads what follows),
    recurses without limit into nested bundles and arrays, and decodes any number of
    arguments; here each of those is refused, at a cost linear in the packet's size."""
    if len(dgram) > MAX_PACKET:
        raise _Malformed(f"{len(dgram)} bytes (at most {MAX_PACKET})")
    return _scan_element(dgram, 0, len(dgram), 0)


def _scan_element(dgram: bytes, start: int, end: int, depth: int) -> int:
    """`_scan` of dgram[start:end] (a packet or a bundle element) at bundle depth `depth`."""
    if dgram.startswith(b"#bundle\0", start, end):
        return _scan_bundle(dgram, start, end, depth)
    if dgram.startswith(b"/", start, end):
        _scan_message(dgram, start, end)
        return 1
    raise _Malformed("neither an OSC message nor a bundle" if end > start else "empty packet")


def _scan_bundle(dgram: bytes, start: int, end: int, depth: int) -> int:
    if depth >= MAX_BUNDLE_DEPTH:
        raise _Malformed(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    if end - start < 16:
        raise _Malformed("truncated bundle (no time tag)")
    messages, i = 0, start + 16
    while i < end:
        if i + 4 > end:
            raise _Malformed("truncated bundle")
        n = int.from_bytes(dgram[i : i + 4], "big", signed=True)
        i += 4
        if n <= 0 or i + n > end:
            raise _Malformed("truncated bundle element" if n > 0 else f"bundle element of size {n}")
        messages += _scan_element(dgram, i, i + n, depth + 1)
        if messages > MAX_MESSAGES:
            raise _Malformed(f"more than {MAX_MESSAGES} messages in one packet")
        i += n
    return messages


def _scan_message(dgram: bytes, start: int, end: int) -> None:
    nul = dgram.find(b"\0", start, end)
    if nul < 0:
        raise _Malformed("unterminated address")
    if nul - start > MAX_ADDRESS_LEN:
        raise _Malformed(f"address longer than {MAX_ADDRESS_LEN} bytes")
    i = start + ((nul - start) // 4 + 1) * 4
    if not dgram.startswith(b",", i, end):
        return  # no type tags: no arguments (OSC 1.0 allows it)
    tend = dgram.find(b"\0", i, end)
    if tend < 0:
        raise _Malformed("unterminated type tags")
    tags = dgram[i + 1 : tend].decode("latin-1")
    bad = sorted(set(tags) - SUPPORTED_TAGS)
    if bad:
        address = dgram[start:nul].decode("utf-8", "replace")
        shown = ",".join(c if c.isascii() and c.isprintable() else f"\\x{ord(c):02x}" for c in bad)
        raise _Unsupported(f"{_show(address)} uses type tag {shown}")
    if len(tags) - tags.count("[") - tags.count("]") > MAX_ARGS:
        raise _Malformed(f"more than {MAX_ARGS} arguments")
    level = 0
    for tag in tags:
        level += (tag == "[") - (tag == "]")
        if level > MAX_ARRAY_DEPTH:
            raise _Malformed(f"arrays nested deeper than {MAX_ARRAY_DEPTH}")


def _show(text: str, limit: int = 80) -> str:
    """An address from the network, safe and short for a log line."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return repr(text)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bool (T/F) is an int too


def _one_number(args: list, what: str = "one number") -> float:
    if len(args) != 1 or not _is_number(args[0]):
        raise _BadArgs(f"expects {what}")
    return args[0]


def _one_string(args: list) -> str:
    if len(args) != 1 or not isinstance(args[0], str):
        raise _BadArgs("expects one string")
    return args[0]


def _fires(args: list) -> bool:
    """An action: no argument, or one number (non-zero fires, 0 is a button's release)."""
    if not args:
        return True
    return bool(_one_number(args, "no argument or one number"))


def _osc_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return ""
    return value


def _describe(args: list) -> str:
    tags = {bool: "T/F", int: "i", float: "f", str: "s", bytes: "b", type(None): "N", list: "[]"}
    return ",".join(tags.get(type(a), type(a).__name__) for a in args) or "none"


class AddressPattern:
    """An OSC 1.0 address pattern (`?`, `*`, `[abc]`, `[!a-z]`, `{foo,bar}`), matched
    without backtracking.

    `parse(pattern)` is None for a pattern that cannot match anything (an unclosed `[` or
    `{`, OSC 1.1's `//`, more than MAX_WILDCARDS wildcards, longer than MAX_ADDRESS_LEN).
    `match(address)` compares part by part (parts between slashes); within a part it
    keeps the set of pattern positions reached after each character, so the work is at
    most (characters + 1) x (tokens + alternatives + 1) per part, whatever the pattern.
    `steps` counts that work (the tests bound it).
    """

    def __init__(self, parts: list[list[tuple]]):
        self.parts = parts
        self.steps = 0
        self._matched: dict[tuple[int, str], bool] = {}  # (part, name) -> matches

    @classmethod
    def parse(cls, pattern: str) -> AddressPattern | None:
        """The pattern, or None when it cannot match anything (see the class)."""
        if (
            len(pattern) > MAX_ADDRESS_LEN
            or not pattern.startswith("/")
            or sum(c in "*?[{" for c in pattern) > MAX_WILDCARDS
        ):
            return None
        texts = pattern[1:].split("/")
        if "" in texts[:-1]:
            return None  # `//`
        parts = [_tokens(text) for text in texts]
        known = [p for p in parts if p is not None]
        return cls(known) if len(known) == len(parts) else None

    def match(self, address: str) -> bool:
        """Whether `address` (a plain address, no pattern) matches."""
        names = address[1:].split("/")
        if len(names) != len(self.parts):
            return False
        for i, (tokens, name) in enumerate(zip(self.parts, names)):
            key = (i, name)
            if key not in self._matched:  # "synd" is the first part of every address
                self._matched[key] = self._match_part(tokens, name)
            if not self._matched[key]:
                return False
        return True

    def _match_part(self, tokens: list[tuple], name: str) -> bool:
        n, end = len(name), len(tokens)
        reach: list[set[int]] = [set() for _ in range(n + 1)]  # token positions at each char
        reach[0].add(0)
        for p in range(n + 1):
            todo = list(reach[p])
            while todo:
                i = todo.pop()
                self.steps += 1
                if i == end:
                    continue
                kind, arg = tokens[i]
                if kind == "*":
                    if p < n:
                        reach[p + 1].add(i)
                    if i + 1 not in reach[p]:
                        reach[p].add(i + 1)
                        todo.append(i + 1)
                elif kind == "{":
                    for alt in arg:
                        self.steps += 1
                        if not name.startswith(alt, p):
                            continue
                        if alt:
                            reach[p + len(alt)].add(i + 1)
                        elif i + 1 not in reach[p]:
                            reach[p].add(i + 1)
                            todo.append(i + 1)
                elif p < n and _one_char(kind, arg, name[p]):
                    reach[p + 1].add(i + 1)
        return end in reach[n]


def _tokens(text: str) -> list[tuple] | None:
    """One part of an address pattern as tokens (kind, argument); None when malformed.
    Kinds: "c" a character, "?" any one, "*" any run, "[" one of a set (argument:
    negated, characters, ranges), "{" one of some strings (argument: the strings)."""
    tokens: list[tuple] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "[":
            close = text.find("]", i + 1)
            if close < 0:
                return None
            tokens.append(("[", _char_set(text[i + 1 : close])))
            i = close + 1
            continue
        if c == "{":
            close = text.find("}", i + 1)
            if close < 0 or any(x in text[i + 1 : close] for x in "*?[]{"):
                return None
            tokens.append(("{", tuple(dict.fromkeys(text[i + 1 : close].split(",")))))
            i = close + 1
            continue
        if c in "]}":
            return None
        if c == "*" and tokens and tokens[-1][0] == "*":
            i += 1  # "**" is "*"
            continue
        tokens.append((c if c in "*?" else "c", c))
        i += 1
    return tokens


def _char_set(body: str) -> tuple[bool, frozenset, tuple]:
    """A `[...]` body as (negated, characters, ranges): `!` first negates, `a-z` is a
    range, a `-` first or last is itself."""
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    chars, ranges, i = set(), [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            ranges.append((body[i], body[i + 2]))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return negated, frozenset(chars), tuple(ranges)


def _one_char(kind: str, arg: Any, c: str) -> bool:
    if kind == "c":
        return c == arg
    if kind == "?":
        return True
    negated, chars, ranges = arg
    return (c in chars or any(lo <= c <= hi for lo, hi in ranges)) != negated


class Commands:
    """The `/synd/` address space over a `Controller`, without a network: what a message
    does and what a query answers. `OscServer` serves it over UDP; the control window of
    `synd run --tray` sends its commands through it directly, so every surface speaks
    exactly the same commands.
    """

    def __init__(self, controller):
        self.controller = controller
        self._routes = self._make_routes()

    def handlers(self, address: str) -> list[tuple[str, Callable[[list], list]]]:
        """(route, handler) for every address `address` names (it may be a pattern);
        `handler(args)` applies the message and returns the replies, a list of
        (address, args). Empty for an unknown address or a pattern that names none."""
        if len(address) > MAX_ADDRESS_LEN:
            return []
        fn = self._routes.get(address)
        if fn is not None:
            return [(address, fn)]
        if PATTERN_CHARS & set(address):
            pattern = AddressPattern.parse(address)
            if pattern is None:
                return []
            return [(route, fn) for route, fn in self._routes.items() if pattern.match(route)]
        prefix = "/synd/output/"
        if address.startswith(prefix):
            name = address[len(prefix) :]
            if name and "/" not in name:
                return [(address, self._output(name))]  # the controller names the outputs
        return []

    def run(self, address: str, args: list) -> list[tuple[str, list]]:
        """Apply one message; returns the replies. Raises KeyError for an unknown
        address and ValueError (one line) for arguments or values that are refused."""
        handlers = self.handlers(address)
        if not handlers:
            raise KeyError(f"unknown address {_show(address)}")
        replies: list[tuple[str, list]] = []
        for _route, fn in handlers:
            replies += fn(list(args))
        return replies

    def snapshot(self) -> list[tuple[str, list]]:
        """Every list and value a control surface shows, as the messages that carry them:
        sent to a new subscriber so that it starts in step."""
        c = self.controller
        messages = [
            ("/synd/presets", list(c.presets)),
            ("/synd/models", c.models()),
            ("/synd/inputs", c.inputs()),
            ("/synd/outputs", c.outputs()),
        ]
        for name, value in c.state().items():
            if name != "mix":
                messages.append((f"/synd/{name}", [_osc_value(value)]))
        return messages

    def _make_routes(self) -> dict[str, Callable[[list], list]]:
        c = self.controller
        routes: dict[str, Callable[[list], list]] = {
            "/synd/preset": self._query_or("preset", lambda a: c.select_preset(_one_string(a))),
            "/synd/model/a": self._query_or("model/a", lambda a: c.load("a", _one_string(a))),
            "/synd/model/b": self._query_or("model/b", lambda a: c.load("b", _one_string(a))),
            "/synd/input": self._query_or("input", lambda a: c.set_input(_one_string(a))),
            "/synd/fade": self._query_or("crossfade", self._fade, "/synd/fade"),
            "/synd/cut": self._action(c.cut),
            "/synd/flash_guard": self._query_or(
                "flash_guard", lambda a: c.set_flash_guard(bool(_one_number(a, "one i (1 or 0)")))
            ),
            "/synd/midi/learn": lambda a: c.request_learn(_one_string(a)) or [],
            "/synd/presets": self._list("/synd/presets", lambda: c.presets),
            "/synd/models": self._list("/synd/models", c.models),
            "/synd/inputs": self._list("/synd/inputs", c.inputs),
            "/synd/outputs": self._list("/synd/outputs", c.outputs),
        }
        for which in ("next", "previous", "random"):
            routes[f"/synd/preset/{which}"] = self._action(partial(c.select_preset, which))
        for name in PARAMS:
            routes[f"/synd/{name}"] = self._param(name)
        for name in TRIGGERS:
            routes[f"/synd/{name}"] = self._trigger(name)
            routes[f"/synd/{name}/toggle"] = self._action(partial(c.trigger, name, None))
        for name in c.outputs():
            routes[f"/synd/output/{name}"] = self._output(name)
        return routes

    def _query_or(
        self, name: str, change: Callable[[list], Any], route: str | None = None
    ) -> Callable[[list], list]:
        route = route or f"/synd/{name}"

        def handle(args: list) -> list:
            if args:
                change(args)
                return []
            return [(route, [_osc_value(self.controller.get(name))])]

        return handle

    @staticmethod
    def _list(route: str, names: Callable[[], list[str]]) -> Callable[[list], list]:
        def handle(args: list) -> list:
            if args:
                raise _BadArgs("is a query and takes no arguments")
            return [(route, [str(n) for n in names()])]

        return handle

    @staticmethod
    def _action(fire: Callable[[], Any]) -> Callable[[list], list]:
        def handle(args: list) -> list:
            if _fires(args):
                fire()
            return []

        return handle

    def _param(self, name: str) -> Callable[[list], list]:
        return self._query_or(name, lambda a: self.controller.set(name, _one_number(a)))

    def _trigger(self, name: str) -> Callable[[list], list]:
        return self._query_or(
            name, lambda a: self.controller.trigger(name, bool(_one_number(a, "one i (1 or 0)")))
        )

    def _output(self, name: str) -> Callable[[list], list]:
        return self._query_or(
            f"output/{name}",
            lambda a: self.controller.set_output(name, bool(_one_number(a, "one i (1 or 0)"))),
        )

    def _fade(self, args: list) -> None:
        if len(args) not in (1, 2) or not all(_is_number(a) for a in args):
            raise _BadArgs("expects a target and optionally seconds (f [f])")
        self.controller.fade(args[0], args[1] if len(args) == 2 else None)


class OscServer:
    """Speaks OSC for a `synd.control.Controller`; see the module docstring.

    `allow`: sender IPs, host names or networks ("192.168.1.0/24") whose packets are
    taken; others are dropped. `feedback`: (host, port) that gets status, beats and
    changes unasked. `status()`: live numbers (fps, latency_ms_median, dropped_frames),
    by default the controller's engine's `status()`.
    """

    def __init__(
        self,
        controller,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        allow: list[str] | None = None,
        feedback: tuple[str, int] | None = None,
        status: Callable[[], dict] | None = None,
        status_every: float = 1.0,
    ):
        if OscPacket is None:
            raise RuntimeError("OSC needs python-osc: pip install 'synethesia[live]'")
        self.controller = controller
        self.host, self.port = host, int(port)
        self.allow = list(allow) if allow is not None else None
        self.feedback = feedback
        self._status = status or controller.status
        self.status_every = float(status_every)
        self._throttle = RateLimiter(log, LOG_EVERY_S, LOG_KINDS_MAX)
        #: What was dropped or refused, by kind: one summary line per LOG_EVERY_S.
        self.tally = Tally(log, "OSC: dropped or refused", LOG_EVERY_S)
        self.commands = Commands(controller)
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None  # wakes the server thread to stop
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._allowed: tuple[set, list] | None = None
        self._feedback_to: tuple | None = None
        # Subscribers (/synd/subscribe): sender -> [expires at, wants preview pictures].
        self._subscribers: dict[tuple, list] = {}
        self._subscribers_lock = threading.RLock()
        self._preview_seq: int | None = None
        self._thumbnailer: Any = None
        self.received = 0  # packets taken (after the allow-list), for tests and status
        self.dropped = 0  # packets refused: not allowed, malformed or unsupported
        self.refused = 0  # messages refused: unknown address, arguments, values, failures

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with port 0, the port the system chose."""
        if self._sock is None:
            raise RuntimeError("the OSC server is not started")
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Bind and start the server thread (OSError if the port is taken, ValueError
        for an allow-list or feedback host that does not resolve)."""
        with self._lifecycle:
            if self._thread is not None or self._stopping.is_set():
                raise RuntimeError("an OSC server starts once")
            info = socket.getaddrinfo(
                self.host or None, self.port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            try:
                sock.bind(info[4])
                sock.setblocking(False)
                allowed = self._resolve_allow(self.allow, sock.family) if self.allow is not None else None
                feedback_to = None
                if self.feedback is not None:
                    feedback_to = self._resolve(self.feedback[0], self.feedback[1], sock.family)
                    if _same_place(feedback_to, sock.getsockname()):
                        raise ValueError(
                            "the OSC feedback target is synd's own OSC port "
                            "(every change would come back as a command)"
                        )
            except BaseException:
                sock.close()
                raise
            self._sock, self._allowed, self._feedback_to = sock, allowed, feedback_to
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self.controller.subscribe("beat", self._on_beat)
            self.controller.subscribe("changed", self._on_changed)
            self.controller.subscribe("learn", self._on_learn)
            self._thread = threading.Thread(target=self._run, name="synd-osc", daemon=True)
            self._thread.start()
        host, port = self.address
        log.info(
            "OSC: listening on %s:%d%s",
            host,
            port,
            f", feedback to {self.feedback[0]}:{self.feedback[1]}" if self.feedback else "",
        )

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the server thread and close the socket (idempotent, from any thread)."""
        with self._lifecycle:
            if self._stopping.is_set():
                return
            self._stopping.set()
            thread = self._thread
        if thread is None:
            return
        sock, wake_r, wake_w = self._sock, self._wake_r, self._wake_w
        assert sock is not None and wake_r is not None and wake_w is not None  # made before the thread
        try:
            wake_w.send(b"x")
        except OSError:
            pass
        if thread is not threading.current_thread():
            thread.join(timeout)
        for s in (sock, wake_r, wake_w):
            s.close()
        self.tally.report(force=True)

    def __enter__(self) -> OscServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def _resolve(host: str, port: int, family: int) -> tuple:
        try:
            return socket.getaddrinfo(host, int(port), family=family, type=socket.SOCK_DGRAM)[0][4]
        except OSError as exc:
            raise ValueError(f"cannot resolve OSC host {host!r}: {exc}") from None

    def _resolve_allow(self, allow: list[str], family: int) -> tuple[set, list]:
        ips, networks = set(), []
        for entry in allow:
            entry = str(entry).strip()
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                ips.add(_plain_ip(self._resolve(entry, 0, family)[0]))
                continue
            if net.num_addresses == 1:
                ips.add(_plain_ip(str(net.network_address)))
            else:
                networks.append(net)
        return ips, networks

    def _allowed_sender(self, sender: tuple) -> bool:
        if self._allowed is None:
            return True
        ips, networks = self._allowed
        ip = _plain_ip(sender[0])
        return ip in ips or any(ipaddress.ip_address(ip) in net for net in networks)

    # -- the server thread -----------------------------------------------------------------

    def _run(self) -> None:
        sock, wake_r = self._sock, self._wake_r
        assert sock is not None and wake_r is not None  # start() makes them before this thread
        now = time.monotonic()
        next_status = now + self.status_every if self.status_every > 0 else None
        next_update = now + SUBSCRIBER_STATUS_S
        next_preview = now
        while not self._stopping.is_set():
            try:
                deadlines = []
                if next_status is not None and self._feedback_to is not None:
                    deadlines.append(next_status)
                subscribers, previews = self._live_subscribers()
                if subscribers:
                    deadlines.append(next_update)
                if previews:
                    deadlines.append(next_preview)
                report_at = self.tally.due()
                if report_at is not None:
                    deadlines.append(report_at)
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                ready, _, _ = select.select([sock, wake_r], [], [], timeout)
                if self._stopping.is_set():
                    break
                if sock in ready:
                    self._drain(sock)
                now = time.monotonic()
                if next_status is not None and now >= next_status:
                    next_status = max(next_status + self.status_every, now)
                    if self._feedback_to is not None:
                        self._periodic_status([self._feedback_to])
                if now >= next_update:
                    next_update = max(next_update + SUBSCRIBER_STATUS_S, now)
                    self._periodic_status(self._live_subscribers()[0])
                if now >= next_preview:
                    next_preview = max(next_preview + 1.0 / PREVIEW_FPS, now)
                    previews = self._live_subscribers()[1]
                    if previews:
                        self._send_preview(previews)
                self.tally.report()
            except Exception as exc:  # noqa: BLE001 - the server thread must not die
                if self._stopping.is_set():
                    break
                self._throttle("failed", "loop", f"OSC server: {type(exc).__name__}: {exc}", logging.ERROR)
                time.sleep(0.01)  # a persistent failure must not spin

    def _periodic_status(self, targets: list[tuple]) -> None:
        if not targets:
            return
        try:
            args = self.status_args()
        except Exception as exc:  # noqa: BLE001 - a failing status() must not stop OSC
            self._throttle(
                "failed",
                "/synd/status",
                f"OSC: status feedback failed: {type(exc).__name__}: {exc}",
                logging.ERROR,
            )
            return
        for target in targets:
            self._send(target, "/synd/status", args)

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                data, sender = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # Windows reports an earlier reply's ICMP "port unreachable" here
                continue
            self._packet(data, sender)

    def _packet(self, data: bytes, sender: tuple) -> None:
        if not self._allowed_sender(sender):
            self._drop("denied")
            self._throttle(
                "denied", sender[0], f"OSC: dropping packets from {sender[0]} (not in the allow-list)"
            )
            return
        try:
            _scan(data)
            messages = [timed.message for timed in OscPacket(data).messages]
        except _Unsupported as exc:
            self._drop("unsupported")
            self._throttle("unsupported", None, f"OSC: dropped a packet from {sender[0]}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - _Malformed, python-osc's ParseError, ...
            self._drop("malformed")
            self._throttle(
                "malformed",
                None,
                f"OSC: dropped a malformed packet from {sender[0]} ({len(data)} bytes): {exc}",
            )
            return
        self.received += 1
        budget = [MAX_REPLIES]
        for message in messages:
            self._message(message.address, list(message), sender, budget)

    def _drop(self, kind: str) -> None:
        """Count a packet dropped whole (see `tally` for the summary line)."""
        self.dropped += 1
        self.tally.add(kind)

    def _refuse(self, kind: str) -> None:
        """Count a message refused within a packet that was taken."""
        self.refused += 1
        self.tally.add(kind)

    def _message(self, address: str, args: list, sender: tuple, budget: list[int]) -> None:
        """Handle one message; replies go to `sender`, at most `budget[0]` more for its packet."""
        if address == "/synd/status" or address == "/synd/subscribe":
            handlers = [(address, lambda a: self._own(address, a, sender))]
        else:
            handlers = self.commands.handlers(address)
        if not handlers:
            self._refuse("unknown")
            self._throttle(
                "unknown",
                address,
                f"OSC: unknown address {_show(address)} (addresses are under /synd/, see synd.osc)",
            )
            return
        for route, fn in handlers:
            try:
                # A new subscriber's snapshot is not counted: it comes once per subscriber,
                # and there are at most MAX_SUBSCRIBERS.
                counted = route != "/synd/subscribe"
                for reply_address, reply_args in fn(args):
                    if counted and budget[0] <= 0:
                        self._refuse("replies")
                        self._throttle(
                            "replies",
                            None,
                            f"OSC: a packet from {sender[0]} asked "
                            f"for more than {MAX_REPLIES} replies; the rest withheld",
                        )
                        break
                    budget[0] -= counted
                    self._send(sender, reply_address, reply_args)
            except _BadArgs as exc:
                self._refuse("arguments")
                self._throttle("arguments", route, f"OSC: {route} {exc}, got {_describe(args)}")
            except (ValueError, KeyError) as exc:
                text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                self._refuse("refused")
                self._throttle("refused", route, f"OSC: {route}: {text}")
            except Exception as exc:  # noqa: BLE001 - a failing command must not stop OSC
                self._refuse("failed")
                self._throttle(
                    "failed", route, f"OSC: {route} failed: {type(exc).__name__}: {exc}", logging.ERROR
                )

    def _own(self, route: str, args: list, sender: tuple) -> list:
        """The addresses that concern the connection, not the show: status and subscribe."""
        if route == "/synd/status":
            if args:
                raise _BadArgs("is a query and takes no arguments")
            return [("/synd/status", self.status_args())]
        if len(args) > 2 or not all(_is_number(a) for a in args):
            raise _BadArgs("expects [seconds [preview 0/1]]")
        seconds = min(SUBSCRIBE_MAX_S, max(0.0, float(args[0]))) if args else SUBSCRIBE_DEFAULT_S
        preview = bool(args[1]) if len(args) == 2 else False
        with self._subscribers_lock:
            known = sender in self._subscribers
            if seconds == 0:
                self._subscribers.pop(sender, None)
                return []
            if not known and len(self._live_subscribers()[0]) >= MAX_SUBSCRIBERS:
                raise ValueError(f"already {MAX_SUBSCRIBERS} subscribers")
            self._subscribers[sender] = [time.monotonic() + seconds, preview]
        if known:
            return []
        log.info("OSC: %s:%d subscribed%s", sender[0], sender[1], " with preview" if preview else "")
        return [*self.commands.snapshot(), ("/synd/status", self.status_args())]

    def _live_subscribers(self) -> tuple[list[tuple], list[tuple]]:
        """(subscribers, those that asked for preview pictures), expired ones dropped."""
        now = time.monotonic()
        with self._subscribers_lock:
            for sender in [s for s, (until, _) in self._subscribers.items() if until <= now]:
                del self._subscribers[sender]
            return (list(self._subscribers), [s for s, (_, preview) in self._subscribers.items() if preview])

    # -- sending ---------------------------------------------------------------------------

    def status_args(self) -> list:
        """The `/synd/status` arguments: fps, latency_ms, preset, model_a, model_b,
        crossfade, dropped."""
        return status_args(self._status() or {}, self.controller.state())

    def send_status(self, target: tuple) -> None:
        self._send(target, "/synd/status", self.status_args())

    def _send(self, target: tuple, address: str, args: list) -> None:
        """Send one message from the listening socket (any thread; never blocks)."""
        sock = self._sock
        if sock is None or self._stopping.is_set():
            return
        builder = OscMessageBuilder(address=address)
        for arg in args:
            builder.add_arg(arg)
        try:
            sock.sendto(builder.build().dgram, target)
        except OSError as exc:  # a full buffer, a closed socket, an unreachable network
            if not self._stopping.is_set():
                self._throttle(
                    "send",
                    (target[0], target[1]),
                    f"OSC: cannot send {address} to {target[0]}:{target[1]}: {exc}",
                )

    def _send_preview(self, targets: list[tuple]) -> None:
        """The newest frame as a small JPEG (`/synd/preview b`) to `targets`."""
        frame = self.controller.last_frame()
        if frame is None or frame.seq == self._preview_seq:
            return
        self._preview_seq = frame.seq
        jpeg = self._thumbnail(frame.rgb)
        for target in targets:
            self._send(target, "/synd/preview", [jpeg])

    def _thumbnail(self, rgb) -> bytes:
        import cv2

        from synd.video import FrameScaler

        h, w = rgb.shape[:2]
        scale = min(PREVIEW_SIZE[0] / w, PREVIEW_SIZE[1] / h, 1.0)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if self._thumbnailer is None or (self._thumbnailer.width, self._thumbnailer.height) != size:
            self._thumbnailer = FrameScaler(*size, "bgr24")
        ok, data = cv2.imencode(".jpg", self._thumbnailer.array(rgb), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise ValueError("cannot encode the preview picture")
        return data.tobytes()

    def _feedback(self, address: str, args: list) -> None:
        targets = self._live_subscribers()[0]
        if self._feedback_to is not None:
            targets.append(self._feedback_to)
        for target in targets:
            try:
                self._send(target, address, args)
            except Exception as exc:  # noqa: BLE001 - runs on the engine's thread: never raise
                self._throttle("send", address, f"OSC: cannot send {address}: {exc}")

    def _on_beat(self, strength: float) -> None:
        self._feedback("/synd/beat", [float(strength)])

    def _on_changed(self, name: str, value: Any) -> None:
        self._feedback(f"/synd/{name}", [_osc_value(value)])

    def _on_learn(self, param: str) -> None:
        self._feedback("/synd/midi/learn", [str(param)])


#: The `/synd/status` arguments, in order.
STATUS_FIELDS = ("fps", "latency_ms", "preset", "model/a", "model/b", "crossfade", "dropped", "guarded")


def status_args(live: dict, state: dict) -> list:
    """`/synd/status` arguments from an engine status (`live`) and a controller state."""
    latency = live.get("latency_ms_median")
    return [
        float(live.get("fps") or 0.0),
        float(latency) if latency is not None else -1.0,
        _osc_value(state.get("preset")),
        _osc_value(state.get("model/a")),
        _osc_value(state.get("model/b")),
        float(state.get("crossfade") or 0.0),
        int(live.get("dropped_frames") or 0),
        int(live.get("guarded_frames") or 0),
    ]


def parse_status(args: list) -> dict:
    """A `/synd/status` message's arguments as a dict keyed by `STATUS_FIELDS` (latency
    None when not known yet, empty slots None); fields a sender left off are missing."""
    status = dict(zip(STATUS_FIELDS, args))
    if "latency_ms" in status and (not _is_number(status["latency_ms"]) or status["latency_ms"] < 0):
        status["latency_ms"] = None
    for slot in ("model/a", "model/b"):
        if status.get(slot) == "":
            status[slot] = None
    return status


def _plain_ip(ip: str) -> str:
    """An IP without a zone, IPv4-mapped IPv6 as IPv4 (the form senders are compared in)."""
    ip = str(ip).split("%")[0]
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def _same_place(target: tuple, bound: tuple) -> bool:
    """Whether datagrams sent to `target` would arrive at the socket bound to `bound`."""
    if target[1] != bound[1]:
        return False
    ip, own = ipaddress.ip_address(_plain_ip(target[0])), ipaddress.ip_address(_plain_ip(bound[0]))
    return ip == own or own.is_unspecified
