"""How the tray and the control window reach the show: the same OSC commands, in or out
of the daemon's process.

A link sends commands as OSC messages (`send("/synd/intensity", 0.8)`) and reports what
changes, wherever the change came from (the window itself, OSC, MIDI, a preset rotation):

* `LocalLink` (`synd run --tray`): the commands go straight through the daemon's
  `synd.osc.Commands`, in its own process; changes arrive as the controller's events,
  the status and the preview picture are read from the engine.
* `OscLink` (`synd tray`): the commands go over UDP to a running daemon's OSC port; the
  link subscribes (`/synd/subscribe`, renewed every few seconds) and receives the state,
  the changes, the status and small preview pictures. When the daemon stops answering,
  the link says so and keeps trying, so a restarted daemon is found again.

Both deliver what they learn as OSC messages into one decoder (`Link.deliver`), which
turns them into Qt signals on the GUI thread: `changed(name, value)` for a value or a
list ("intensity", "preset", "presets", "output/ndi", ...), `status(dict)` (the fields of
`synd.osc.STATUS_FIELDS`), `frame(rgb)` and `connection(bool, text)`. `state` holds the
latest value of everything.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from synd.control import TRIGGERS
from synd.osc import parse_status, status_args

log = logging.getLogger(__name__)

#: Lists a link reports (as Python lists of names).
LISTS = ("presets", "models", "inputs", "outputs")
#: How often a local link reads the engine's status, and its newest picture.
STATUS_EVERY_MS = 250
PREVIEW_EVERY_MS = 33
#: An OSC link renews its subscription this often, for SUBSCRIBE_S each time.
RENEW_EVERY_MS = 3000
SUBSCRIBE_S = 10.0
#: With no message from the daemon for this long, an OSC link reports it lost.
SILENCE_S = 2.0


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """A JPEG (a `/synd/preview` picture) as (h, w, 3) uint8 RGB; None if unreadable."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class Link(QObject):
    """What the tray and the window talk to; see the module docstring."""

    changed = pyqtSignal(str, object)
    status = pyqtSignal(dict)
    frame = pyqtSignal(object)
    beat = pyqtSignal(float)
    connection = pyqtSignal(bool, str)
    #: A command was refused or could not be sent (one line, for a status bar).
    error = pyqtSignal(str)
    # Carries messages from other threads onto the GUI thread (queued connection).
    _incoming = pyqtSignal(str, list)

    #: Whether quitting the tray stops the daemon (it does when they share a process).
    stops_daemon = False
    #: Where the link is connected, for titles and notes.
    description = ""

    def __init__(self) -> None:
        super().__init__()
        self.state: dict[str, Any] = {}
        self.last_status: dict[str, Any] = {}
        self.connected = False
        self._want_frames = False
        self._incoming.connect(self.deliver)

    def start(self) -> None:
        """Begin following the show (call on the GUI thread, with a Qt application)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop following it."""

    def send(self, address: str, *args: Any) -> None:
        """Send one command (an address under /synd/ and its arguments)."""
        raise NotImplementedError

    def want_frames(self, on: bool) -> None:
        """Ask for preview pictures (the `frame` signal) while a preview is visible."""
        self._want_frames = bool(on)

    def deliver(self, address: str, args: list) -> None:
        """Take one OSC message from the show and report what it says (GUI thread)."""
        if not address.startswith("/synd/"):
            return
        name = address[len("/synd/") :]
        if name == "status":
            status = parse_status(args)
            self.last_status = status
            for key in ("preset", "model/a", "model/b", "crossfade"):
                if key in status and self.state.get(key) != status[key]:
                    self.state[key] = status[key]
                    self.changed.emit(key, status[key])
            self.status.emit(status)
        elif name == "preview":
            if args and isinstance(args[0], (bytes, bytearray)):
                rgb = decode_jpeg(bytes(args[0]))
                if rgb is not None:
                    self.frame.emit(rgb)
        elif name == "beat":
            if args:
                self.beat.emit(float(args[0]))
        elif name in LISTS:
            names = [str(a) for a in args]
            self.state[name] = names
            self.changed.emit(name, names)
        elif len(args) == 1:
            value = args[0]
            if name in TRIGGERS or name.startswith("output/"):
                value = bool(value)
            elif name in ("preset", "model/a", "model/b", "input") and value == "":
                value = None
            self.state[name] = value
            self.changed.emit(name, value)

    def _set_connected(self, on: bool, text: str) -> None:
        if on != self.connected:
            self.connected = on
            self.connection.emit(on, text)


class LocalLink(Link):
    """The daemon in this process (`synd run --tray`): `daemon` has `control` (the
    Controller), `engine` and `status()`."""

    stops_daemon = True

    def __init__(self, daemon) -> None:
        super().__init__()
        from synd.osc import Commands

        self.daemon = daemon
        self.commands = Commands(daemon.control)
        self.description = "this process"
        self._seq: int | None = None
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_EVERY_MS)
        self._status_timer.timeout.connect(self._poll_status)
        self._frame_timer = QTimer(self)
        self._frame_timer.setInterval(PREVIEW_EVERY_MS)
        self._frame_timer.timeout.connect(self._poll_frame)
        self._subscribed = False

    def start(self) -> None:
        control = self.daemon.control
        if not self._subscribed:  # the controller has no unsubscribe: subscribe once
            self._subscribed = True
            control.subscribe("changed", lambda name, value: self._incoming.emit(f"/synd/{name}", [value]))
            control.subscribe("learn", lambda param: self._incoming.emit("/synd/midi/learn", [param]))
            control.subscribe("beat", lambda strength: self._incoming.emit("/synd/beat", [strength]))
        for address, args in self.commands.snapshot():
            self.deliver(address, args)
        self._poll_status()
        self._status_timer.start()
        self._frame_timer.start()
        self.connected = True  # the same process: connected for as long as it runs

    def stop(self) -> None:
        self._status_timer.stop()
        self._frame_timer.stop()

    def send(self, address: str, *args: Any) -> None:
        try:
            for reply, reply_args in self.commands.run(address, list(args)):
                self.deliver(reply, reply_args)
        except (ValueError, KeyError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            log.warning("%s: %s", address, text)
            self.error.emit(f"{address}: {text}")

    def _poll_status(self) -> None:
        try:
            args = status_args(self.daemon.status(), self.daemon.control.state())
        except Exception as exc:  # noqa: BLE001 - a status hiccup must not stop the UI
            log.debug("status: %s", exc)
            return
        self.deliver("/synd/status", args)

    def _poll_frame(self) -> None:
        if not self._want_frames:
            return
        frame = self.daemon.engine.last_frame
        if frame is not None and frame.seq != self._seq:
            self._seq = frame.seq
            self.frame.emit(frame.rgb)


class OscLink(Link):
    """A daemon reached over OSC at (`host`, `port`) (`synd tray`)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        from PyQt6.QtNetwork import QHostAddress, QUdpSocket

        self.host, self.port = host, int(port)
        self.description = f"synd at {host}:{port}"
        self._address = QHostAddress(host)
        if self._address.isNull():  # a host name: resolve it once
            import socket

            self._address = QHostAddress(socket.gethostbyname(host))
        self._socket = QUdpSocket(self)
        self._socket.readyRead.connect(self._read)
        self._last_heard = self._started_at = 0.0
        self._told_lost = False
        self._renew = QTimer(self)
        self._renew.setInterval(RENEW_EVERY_MS)
        self._renew.timeout.connect(self._subscribe)
        self._watch = QTimer(self)
        self._watch.setInterval(500)
        self._watch.timeout.connect(self._check_silence)
        self._frames_asked = False

    def start(self) -> None:
        from PyQt6.QtNetwork import QHostAddress

        local = (
            QHostAddress.SpecialAddress.LocalHost
            if self._address.isLoopback()
            else QHostAddress.SpecialAddress.Any
        )
        if not self._socket.bind(QHostAddress(local), 0):
            raise OSError(f"cannot open a UDP socket: {self._socket.errorString()}")
        self._started_at = time.monotonic()
        self._subscribe()
        self._renew.start()
        self._watch.start()

    def stop(self) -> None:
        self._renew.stop()
        self._watch.stop()
        self._send_message("/synd/subscribe", [0.0])  # end the subscription at once
        self._socket.close()

    def want_frames(self, on: bool) -> None:
        super().want_frames(on)
        if bool(on) != self._frames_asked:
            self._subscribe()

    def send(self, address: str, *args: Any) -> None:
        self._send_message(address, list(args))

    def _subscribe(self) -> None:
        self._frames_asked = self._want_frames
        self._send_message("/synd/subscribe", [SUBSCRIBE_S, 1 if self._want_frames else 0])

    def _send_message(self, address: str, args: list) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        builder = OscMessageBuilder(address=address)
        for arg in args:
            builder.add_arg(arg)
        data = builder.build().dgram
        if self._socket.writeDatagram(data, self._address, self.port) < 0:
            text = f"cannot send {address} to {self.description}: {self._socket.errorString()}"
            log.warning("%s", text)
            self.error.emit(text)

    def _read(self) -> None:
        from pythonosc.osc_packet import OscPacket

        while self._socket.hasPendingDatagrams():
            datagram = self._socket.receiveDatagram()
            if datagram.senderPort() != self.port:
                continue  # only the daemon's own port speaks for it
            try:
                messages = [timed.message for timed in OscPacket(datagram.data().data()).messages]
            except Exception as exc:  # noqa: BLE001 - a bad datagram is not fatal
                log.debug("ignoring a datagram: %s", exc)
                continue
            if not self.connected:
                self._told_lost = False
                self._set_connected(True, f"connected to {self.description}")
            self._last_heard = time.monotonic()
            for message in messages:
                self.deliver(message.address, list(message))

    def _check_silence(self) -> None:
        quiet = time.monotonic() - max(self._last_heard, self._started_at)
        if quiet > SILENCE_S and (self.connected or not self._told_lost):
            self._told_lost = True
            self.connected = False
            self.connection.emit(
                False, f"no answer from {self.description}: is synd running with OSC on port {self.port}?"
            )
