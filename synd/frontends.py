"""Frontends: the ways a person steers a running `synd run` (OSC, MIDI, the tray).

Each is built from its own table of `config.toml` (`[osc]`, `[midi]`, `[tray]`), steers
the show through the daemon's `synd.control.Controller` (the one command set every
surface shares), and keeps one small contract:

* built (`FRONTENDS[name](config, daemon)`), before anything loads: settings are
  checked, nothing is opened; a setting that cannot work (an address that cannot be bound, a tray with
  no display) raises ValueError (one line) before anything loads; a frontend turned
  off is not built (the builder returns None);
* `start()`: opens what it needs; trouble at this point (a port taken, no MIDI
  device) is one warning line and the frontend stays off: the show goes on;
* `stop()`: closes it (safe if it never started);
* `status()`: a small dict of what it is doing, for the control API and logs.

`Daemon` starts them in order after the engine and stops them before it; a new
frontend is one class here and one entry in `FRONTENDS`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from synd.config import Config, is_off, parse_host_port
from synd.errors import error_line

log = logging.getLogger("synd.daemon")


class Frontend(Protocol):
    """What the daemon asks of every frontend; see the module docstring."""

    name: str
    #: True when it must run on the main thread's Qt event loop (the tray).
    needs_qt: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> dict: ...


class OscFrontend:
    """The OSC server (`synd.osc.OscServer`) on `[osc] listen`."""

    name = "osc"
    needs_qt = False

    def __init__(self, config: Config, daemon) -> None:
        from synd.osc import check_bind

        osc = config.osc
        self.daemon = daemon
        self.address = osc.listen
        self.host, self.port = parse_host_port(osc.listen, "osc")
        check_bind(self.host, osc.remote)
        self.allow = [a.strip() for a in osc.allow.split(",") if a.strip()] or None
        self.feedback = parse_host_port(osc.feedback, "osc feedback") if osc.feedback else None
        self.server: Any = None

    def start(self) -> None:
        from synd.osc import OscServer

        try:
            self.server = OscServer(
                self.daemon.control,
                self.host,
                self.port,
                allow=self.allow,
                feedback=self.feedback,
                status=self.daemon.status,
            )
            self.server.start()  # it logs where it listens
        except (OSError, ValueError) as exc:  # a taken port: the show goes on
            log.error("OSC: cannot listen on %s: %s (control over OSC is off)", self.address, exc)
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def status(self) -> dict:
        return {"listening": self.address if self.server is not None else None}


class MidiFrontend:
    """MIDI control (`synd.midi.MidiControl`): `[midi] port = "auto"` takes the first
    input port, else a virtual port named synd."""

    name = "midi"
    needs_qt = False

    def __init__(self, config: Config, daemon) -> None:
        self.settings = config.midi
        self.daemon = daemon
        self.control: Any = None
        self.port: str | None = None

    def start(self) -> None:
        midi = self.settings
        choice = midi.port.strip()
        # Never let libjack start a JACK server of its own just because synd looked for one.
        os.environ.setdefault("JACK_NO_START_SERVER", "1")
        try:
            from synd.midi import MidiControl, list_ports, resolve_mapping, user_mapping_path

            port = None if choice.lower() in ("auto", "virtual") else choice
            if choice.lower() == "auto":
                inputs = [p for p in list_ports(midi.api)[0] if "synd" not in p.lower()]
                port = inputs[0] if inputs else None
            map_path = Path(midi.map).expanduser() if midi.map else None
            control = MidiControl(
                self.daemon.control,
                midi.api,
                port,
                resolve_mapping(map_path),
                feedback_port=midi.feedback or None,
                save_path=map_path or user_mapping_path(),
            )
            control.start()
        except Exception as exc:  # noqa: BLE001 - no MIDI is not a reason to stop the show
            log.warning("MIDI: off (%s)", error_line(exc))
            return
        self.control, self.port = control, port
        log.info("MIDI: listening on %s", port or "a virtual port named synd")

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()

    def status(self) -> dict:
        if self.control is None:
            return {"port": None}
        return {"port": self.port or "virtual"}


class TrayFrontend:
    """The tray icon and control window (`synd.tray.Tray`), shown on the main thread."""

    name = "tray"
    needs_qt = True

    def __init__(self, config: Config, daemon) -> None:
        from synd.bridges.preview import display_problem

        problem = display_problem()  # fail before anything loads when no window can open
        if problem:
            raise ValueError(f"cannot show the tray: {problem}")
        self.daemon = daemon
        self.tray: Any = None

    def start(self) -> None:
        from synd.link import LocalLink
        from synd.tray import Tray, application

        application()
        link = LocalLink(self.daemon)
        self.tray = Tray(link, on_quit=self.daemon.stop)
        link.start()
        self.tray.show()

    def stop(self) -> None:
        if self.tray is not None:
            self.tray.hide()

    def status(self) -> dict:
        return {"shown": self.tray is not None}


def _osc(config: Config, daemon) -> Frontend | None:
    return None if is_off(config.osc.listen) else OscFrontend(config, daemon)


def _midi(config: Config, daemon) -> Frontend | None:
    return None if is_off(config.midi.port) else MidiFrontend(config, daemon)


def _tray(config: Config, daemon) -> Frontend | None:
    return TrayFrontend(config, daemon) if config.tray.show else None


#: Every frontend by name, in the order the daemon starts them. `daemon` is the
#: `synd.daemon.Daemon` (its `control`, `status` and `stop`).
FRONTENDS: dict[str, Callable[[Config, Any], Frontend | None]] = {"osc": _osc, "midi": _midi, "tray": _tray}


def build_frontends(config: Config, daemon) -> list[Frontend]:
    """The frontends `config` turns on, built (checked, not started)."""
    built = (make(config, daemon) for make in FRONTENDS.values())
    return [f for f in built if f is not None]
