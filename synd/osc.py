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
| /synd/hue             | f     | 0..1, hue turn of the whole picture                 | f           |
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
| /synd/midi/learn      | s     | bind the next MIDI control moved to PARAM           | -           |
| /synd/status          |       | query only                                          | see below   |

`[n]`: an action takes no argument, or one number: non-zero fires it, 0 is ignored (the
release of a TouchOSC button, which sends 1 on press and 0 on release).

`/synd/status` is ONE message with six arguments in this order, a consistent snapshot:
`fps f, latency_ms f (-1 = not known yet), preset s, model_a s, model_b s, crossfade f`.

With a feedback target (`feedback=(host, port)`) synd also sends, unasked, from its own
port: `/synd/status ...` every `status_every` seconds; `/synd/beat f` (onset strength)
on every beat; `/synd/NAME value` whenever a parameter, trigger, preset, slot or output
changes (from any surface, so TouchOSC faders follow MIDI and the tray); and
`/synd/midi/learn s` when a MIDI learn is requested.

Bundles (nested too) are unpacked and their messages applied in order on arrival; time
tags are not waited for. OSC address patterns (`/synd/*/toggle`, `/synd/{hue,gain}`)
work: each matching address acts, and queries reply on the matched addresses.

Anything wrong (a packet that is not OSC, a truncated one, an unsupported type tag, an
unknown address, wrong argument types or counts, a value the controller refuses, a
sender outside the allow-list) is dropped and logged in one line, at most once per kind
and address every ten seconds (with a count of the ones not logged); the server goes on.

Design: one thread of our own, a non-blocking UDP socket and `select` with a wake-up
socket (prompt stop, no polling, works on Windows too). python-osc parses packets
(`OscPacket`, nested bundles included) and resolves addresses and patterns
(`Dispatcher.handlers_for_address`). Its ready-made servers are not used:
`ThreadingOSCUDPServer` starts a thread per message, and all of them drop malformed
packets silently and sleep in the receiving thread until a bundle's time tag, so a
bundle dated an hour ahead would stall every control surface. Replies and feedback are
sent from the listening socket (any thread may send; a datagram never blocks).
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from synd.control import PARAMS, TRIGGERS

try:
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_message_builder import OscMessageBuilder
    from pythonosc.osc_packet import OscPacket
except ImportError:  # python-osc is in the "live" extra; check_bind works without it
    Dispatcher = OscMessageBuilder = OscPacket = None

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
#: A problem of one kind at one address is logged at most once in this many seconds.
LOG_EVERY_S = 10.0
#: At most this many lines per kind of problem in LOG_EVERY_S (many different addresses).
LOG_KINDS_MAX = 10
MAX_DATAGRAM = 65536
MAX_BUNDLE_DEPTH = 8
#: Address patterns with more wildcards than this are refused (bounds the matching work).
MAX_WILDCARDS = 8
MAX_ADDRESS_LEN = 256
#: Packets handled per wake-up before the timer gets a look-in (a flood cannot starve it).
BATCH = 256
SUPPORTED_TAGS = frozenset("ihfdsbrmtTFN[]")  # what python-osc decodes
PATTERN_CHARS = frozenset("*?[]{}")


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse (ValueError, one line) to listen on a host other machines can reach,
    unless `allow_remote`: OSC has no authentication, anyone who can reach the port
    controls the show."""
    if allow_remote:
        return
    if not host or not host.strip():
        raise ValueError("OSC host is empty (all interfaces): listen on 127.0.0.1, or allow "
                         "remote control explicitly")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve OSC host {host!r}: {exc}") from None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not ip.is_loopback:
            raise ValueError(f"OSC on {host} ({ip}) would take commands from other machines: "
                             "listen on 127.0.0.1, or allow remote control explicitly")


class _Throttle:
    """Logs a problem at most once per (kind, key) every `every` seconds, and at most
    `per_kind` lines per kind in that time; counts what it holds back."""

    def __init__(self, every: float = LOG_EVERY_S, per_kind: int = LOG_KINDS_MAX,
                 clock: Callable[[], float] = time.monotonic):
        self.every, self.per_kind, self.clock = every, per_kind, clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, Any], list] = {}  # (kind, key) -> [last logged, held back]
        self._recent: dict[str, deque[float]] = {}

    def __call__(self, kind: str, key: Any, message: str, level: int = logging.WARNING) -> bool:
        now = self.clock()
        with self._lock:
            entry = self._seen.get((kind, key))
            if entry is not None and now - entry[0] < self.every:
                entry[1] += 1
                return False
            recent = self._recent.setdefault(kind, deque())
            while recent and now - recent[0] >= self.every:
                recent.popleft()
            if len(recent) >= self.per_kind:
                if entry is not None:
                    entry[1] += 1
                return False
            recent.append(now)
            held = entry[1] if entry is not None else 0
            self._seen[(kind, key)] = [now, 0]
            if len(self._seen) > 4096:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.every}
        if held:
            message += f" ({held} more like this not logged)"
        log.log(level, "%s", message)
        return True


class _BadArgs(Exception):
    """The message's arguments do not fit its address."""


class _Malformed(Exception):
    """The packet is not well-formed OSC."""


class _Unsupported(Exception):
    """The packet uses an OSC type tag python-osc cannot decode."""


def _scan(dgram: bytes, depth: int = 0) -> None:
    """Check a packet's structure before python-osc parses it: python-osc skips unknown
    type tags and unidentifiable bundle elements with an unthrottled warning on the root
    logger (and misreads what follows), and recurses without limit into nested bundles."""
    if dgram.startswith(b"#bundle\0"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise _Malformed(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        i = 16
        while i < len(dgram):
            if i + 4 > len(dgram):
                raise _Malformed("truncated bundle")
            n = int.from_bytes(dgram[i:i + 4], "big", signed=True)
            i += 4
            if n <= 0 or i + n > len(dgram):
                raise _Malformed("truncated bundle element")
            _scan(dgram[i:i + n], depth + 1)
            i += n
    elif dgram.startswith(b"/"):
        end = dgram.find(b"\0")
        if end < 0:
            raise _Malformed("unterminated address")
        i = (end // 4 + 1) * 4
        if dgram[i:i + 1] == b",":
            tend = dgram.find(b"\0", i)
            if tend < 0:
                raise _Malformed("unterminated type tags")
            tags = dgram[i + 1:tend].decode("ascii", "replace")
            bad = sorted(set(tags) - SUPPORTED_TAGS)
            if bad:
                address = dgram[:end].decode("utf-8", "replace")
                raise _Unsupported(f"{_show(address)} uses type tag {','.join(bad)}")
    else:
        raise _Malformed("neither an OSC message nor a bundle" if dgram else "empty packet")


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


class OscServer:
    """Speaks OSC for a `synd.control.Controller`; see the module docstring.

    `allow`: sender IPs, host names or networks ("192.168.1.0/24") whose packets are
    taken; others are dropped. `feedback`: (host, port) that gets status, beats and
    changes unasked. `status()`: live numbers (fps, latency_ms_median), by default the
    controller's engine's `status()`.
    """

    def __init__(self, controller, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 allow: list[str] | None = None, feedback: tuple[str, int] | None = None,
                 status: Callable[[], dict] | None = None, status_every: float = 1.0):
        if OscPacket is None:
            raise RuntimeError("OSC needs python-osc: pip install 'synethesia[live]'")
        self.controller = controller
        self.host, self.port = host, int(port)
        self.allow = list(allow) if allow is not None else None
        self.feedback = feedback
        engine_status = getattr(controller.engine, "status", None)
        self._status = status or (engine_status if callable(engine_status) else dict)
        self.status_every = float(status_every)
        self._throttle = _Throttle()
        self._dispatcher = self._routes()
        self._sock: socket.socket | None = None
        self._wake_r = self._wake_w = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._allowed: tuple[set, list] | None = None
        self._feedback_to: tuple | None = None
        self.received = 0  # packets taken (after the allow-list), for tests and status
        self.dropped = 0   # packets refused: not allowed, malformed or unsupported

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
            info = socket.getaddrinfo(self.host or None, self.port, type=socket.SOCK_DGRAM,
                                      flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            try:
                sock.bind(info[4])
                sock.setblocking(False)
                allowed = self._resolve_allow(sock.family) if self.allow is not None else None
                feedback_to = None
                if self.feedback is not None:
                    feedback_to = self._resolve(self.feedback[0], self.feedback[1], sock.family)
                    if _same_place(feedback_to, sock.getsockname()):
                        raise ValueError("the OSC feedback target is synd's own OSC port "
                                         "(every change would come back as a command)")
            except BaseException:
                sock.close()
                raise
            self._sock, self._allowed, self._feedback_to = sock, allowed, feedback_to
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            if feedback_to is not None:
                self.controller.subscribe("beat", self._on_beat)
                self.controller.subscribe("changed", self._on_changed)
                self.controller.subscribe("learn", self._on_learn)
            self._thread = threading.Thread(target=self._run, name="synd-osc", daemon=True)
            self._thread.start()
        host, port = self.address
        log.info("OSC: listening on %s:%d%s", host, port,
                 f", feedback to {self.feedback[0]}:{self.feedback[1]}" if self.feedback else "")

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the server thread and close the socket (idempotent, from any thread)."""
        with self._lifecycle:
            if self._stopping.is_set():
                return
            self._stopping.set()
            thread = self._thread
        if thread is None:
            return
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if thread is not threading.current_thread():
            thread.join(timeout)
        for s in (self._sock, self._wake_r, self._wake_w):
            s.close()

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

    def _resolve_allow(self, family: int) -> tuple[set, list]:
        ips, networks = set(), []
        for entry in self.allow:
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
        every = self.status_every
        periodic = self._feedback_to is not None and every > 0
        next_status = time.monotonic() + every if periodic else None
        while not self._stopping.is_set():
            try:
                timeout = None if next_status is None else max(0.0, next_status - time.monotonic())
                ready, _, _ = select.select([self._sock, self._wake_r], [], [], timeout)
                if self._stopping.is_set():
                    break
                if self._sock in ready:
                    self._drain()
                if next_status is not None and time.monotonic() >= next_status:
                    next_status = max(next_status + every, time.monotonic())
                    self._periodic_status()
            except Exception as exc:  # noqa: BLE001 - the server thread must not die
                if self._stopping.is_set():
                    break
                self._throttle("failed", "loop", f"OSC server: {type(exc).__name__}: {exc}",
                               logging.ERROR)
                time.sleep(0.01)  # a persistent failure must not spin

    def _periodic_status(self) -> None:
        try:
            self.send_status(self._feedback_to)
        except Exception as exc:  # noqa: BLE001 - a failing status() must not stop OSC
            self._throttle("failed", "/synd/status", f"OSC: status feedback failed: "
                           f"{type(exc).__name__}: {exc}", logging.ERROR)

    def _drain(self) -> None:
        for _ in range(BATCH):
            try:
                data, sender = self._sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # Windows reports an earlier reply's ICMP "port unreachable" here
                continue
            self._packet(data, sender)

    def _packet(self, data: bytes, sender: tuple) -> None:
        if not self._allowed_sender(sender):
            self.dropped += 1
            self._throttle("denied", sender[0], f"OSC: dropping packets from {sender[0]} "
                           "(not in the allow-list)")
            return
        try:
            _scan(data)
            messages = [timed.message for timed in OscPacket(data).messages]
        except _Unsupported as exc:
            self.dropped += 1
            self._throttle("unsupported", None, f"OSC: dropped a packet from {sender[0]}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - _Malformed, python-osc's ParseError, ...
            self.dropped += 1
            self._throttle("malformed", None, f"OSC: dropped a malformed packet from "
                           f"{sender[0]} ({len(data)} bytes): {exc}")
            return
        self.received += 1
        for message in messages:
            self._message(message.address, list(message), sender)

    def _message(self, address: str, args: list, sender: tuple) -> None:
        handlers = self._handlers(address)
        if not handlers:
            self._throttle("unknown", address, f"OSC: unknown address {_show(address)} "
                           "(addresses are under /synd/, see synd.osc)")
            return
        for route, fn in handlers:
            try:
                fn(sender, args)
            except _BadArgs as exc:
                self._throttle("arguments", route, f"OSC: {route} {exc}, got {_describe(args)}")
            except (ValueError, KeyError) as exc:
                text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                self._throttle("refused", route, f"OSC: {route}: {text}")
            except Exception as exc:  # noqa: BLE001 - a failing command must not stop OSC
                self._throttle("failed", route, f"OSC: {route} failed: "
                               f"{type(exc).__name__}: {exc}", logging.ERROR)

    def _handlers(self, address: str) -> list[tuple[str, Callable]]:
        """(route, handler) for every address `address` names (it may be a pattern)."""
        if len(address) > MAX_ADDRESS_LEN or sum(c in "*?[{" for c in address) > MAX_WILDCARDS:
            return []
        found = [(h.args[0], h.args[1]) for h in self._dispatcher.handlers_for_address(address)]
        prefix = "/synd/output/"
        if not found and address.startswith(prefix):
            name = address[len(prefix):]
            if name and "/" not in name and not PATTERN_CHARS & set(name):
                found = [(address, self._output(name))]  # the controller names the outputs
        return found

    # -- the address space -----------------------------------------------------------------

    def _routes(self) -> Dispatcher:
        c = self.controller
        routes: dict[str, Callable[[tuple, list], None]] = {
            "/synd/preset": self._query_or("preset", lambda a: c.select_preset(_one_string(a))),
            "/synd/model/a": self._query_or("model/a", lambda a: c.load("a", _one_string(a))),
            "/synd/model/b": self._query_or("model/b", lambda a: c.load("b", _one_string(a))),
            "/synd/fade": self._query_or("crossfade", self._fade, "/synd/fade"),
            "/synd/cut": self._action(c.cut),
            "/synd/midi/learn": lambda sender, a: c.request_learn(_one_string(a)),
            "/synd/status": self._status_query,
        }
        for which in ("next", "previous", "random"):
            routes[f"/synd/preset/{which}"] = self._action(lambda w=which: c.select_preset(w))
        for name in PARAMS:
            routes[f"/synd/{name}"] = self._query_or(
                name, lambda a, n=name: c.set(n, _one_number(a)))
        for name in TRIGGERS:
            routes[f"/synd/{name}"] = self._query_or(
                name, lambda a, n=name: c.trigger(n, bool(_one_number(a, "one i (1 or 0)"))))
            routes[f"/synd/{name}/toggle"] = self._action(lambda n=name: c.trigger(n, None))
        for runner in getattr(c.engine, "outputs", []):
            routes[f"/synd/output/{runner.name}"] = self._output(runner.name)
        dispatcher = Dispatcher()
        for route, fn in routes.items():
            dispatcher.map(route, _never, route, fn)  # we call fn ourselves, with the route
        return dispatcher

    def _query_or(self, name: str, change: Callable[[list], Any],
                  route: str | None = None) -> Callable[[tuple, list], None]:
        route = route or f"/synd/{name}"

        def handle(sender: tuple, args: list) -> None:
            if args:
                change(args)
            else:
                self._send(sender, route, [_osc_value(self.controller.get(name))])
        return handle

    @staticmethod
    def _action(fire: Callable[[], Any]) -> Callable[[tuple, list], None]:
        def handle(sender: tuple, args: list) -> None:
            if _fires(args):
                fire()
        return handle

    def _output(self, name: str) -> Callable[[tuple, list], None]:
        return self._query_or(f"output/{name}", lambda a: self.controller.set_output(
            name, bool(_one_number(a, "one i (1 or 0)"))))

    def _fade(self, args: list) -> None:
        if len(args) not in (1, 2) or not all(_is_number(a) for a in args):
            raise _BadArgs("expects a target and optionally seconds (f [f])")
        self.controller.fade(args[0], args[1] if len(args) == 2 else None)

    def _status_query(self, sender: tuple, args: list) -> None:
        if args:
            raise _BadArgs("is a query and takes no arguments")
        self.send_status(sender)

    # -- sending ---------------------------------------------------------------------------

    def status_args(self) -> list:
        """The `/synd/status` arguments: fps, latency_ms, preset, model_a, model_b, crossfade."""
        live = self._status() or {}
        state = self.controller.state()
        latency = live.get("latency_ms_median")
        return [float(live.get("fps") or 0.0), float(latency) if latency is not None else -1.0,
                _osc_value(state.get("preset")), _osc_value(state.get("model/a")),
                _osc_value(state.get("model/b")), float(state.get("crossfade") or 0.0)]

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
                self._throttle("send", (target[0], target[1]),
                               f"OSC: cannot send {address} to {target[0]}:{target[1]}: {exc}")

    def _feedback(self, address: str, args: list) -> None:
        try:
            self._send(self._feedback_to, address, args)
        except Exception as exc:  # noqa: BLE001 - runs on the engine's thread: never raise
            self._throttle("send", address, f"OSC: cannot send {address}: {exc}")

    def _on_beat(self, strength: float) -> None:
        self._feedback("/synd/beat", [float(strength)])

    def _on_changed(self, name: str, value: Any) -> None:
        self._feedback(f"/synd/{name}", [_osc_value(value)])

    def _on_learn(self, param: str) -> None:
        self._feedback("/synd/midi/learn", [str(param)])


def _never(*args: Any) -> None:
    """The Dispatcher's callback slot; OscServer calls the routes itself."""


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
