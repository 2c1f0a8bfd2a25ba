"""Config tables of the frontends ([osc], [midi], [tray]), the old [run] keys' notices,
and the frontends' contract (`synd.frontends`), with real sockets."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace

import pytest

from synd.config import Config, MidiConfig, OscConfig, TrayConfig, apply_overrides, parse_config, with_values
from synd.control import Controller
from synd.frontends import FRONTENDS, OscFrontend, build_frontends
from synd.presets import Look


def test_old_run_keys_land_in_their_tables_with_a_notice(caplog):
    with caplog.at_level(logging.WARNING, logger="synd.config"):
        c = parse_config(
            {"run": {"osc": "127.0.0.1:9100", "midi_api": "jack", "tray": True, "fps": 60}}, "config 'x'"
        )
    assert c.osc == OscConfig(listen="127.0.0.1:9100")
    assert c.midi == MidiConfig(api="jack") and c.tray == TrayConfig(show=True)
    assert c.run.fps == 60.0
    notices = [r.getMessage() for r in caplog.records]
    assert "config 'x': [run] osc is now [osc] listen (the old key works until the next release)" in notices
    assert len(notices) == 3 and all("\n" not in n for n in notices)


def test_a_new_table_wins_over_an_old_key():
    c = parse_config({"run": {"osc": "127.0.0.1:1"}, "osc": {"listen": "127.0.0.1:2"}}, "x")
    assert c.osc.listen == "127.0.0.1:2"


def test_tables_are_type_checked_and_must_be_tables():
    with pytest.raises(ValueError, match=r"\[osc\]: 'remote' must be bool"):
        parse_config({"osc": {"remote": "yes"}}, "x")
    with pytest.raises(ValueError, match="'midi' must be a table"):
        parse_config({"midi": "off"}, "x")
    with pytest.raises(ValueError, match="listn"):
        parse_config({"osc": {"listn": "off"}}, "x")


def test_overrides_reach_every_table(caplog):
    with caplog.at_level(logging.WARNING, logger="synd.config"):
        c = apply_overrides(
            Config(),
            [
                "osc.listen=off",
                "midi=virtual",
                "fps=25",
                "tray.show=true",
                "run.size=640x360",
                "preset=prism",
            ],
        )
    assert (c.osc.listen, c.midi.port, c.run.fps, c.tray.show, c.run.size, c.preset) == (
        "off",
        "virtual",
        25.0,
        True,
        "640x360",
        "prism",
    )
    assert [r.getMessage() for r in caplog.records] == [
        "override -o midi: now midi.port (the old name works until the next release)"
    ]
    with pytest.raises(ValueError, match=r"no table \[nope\]"):
        apply_overrides(Config(), ["nope.x=1"])


def test_with_values_sets_keys_directly_and_checks_types():
    c = with_values(Config(), {("osc", "remote"): True, ("run", "fps"): 50, (None, "device"): "cpu"})
    assert c.osc.remote is True and c.run.fps == 50.0 and c.device == "cpu"
    with pytest.raises(ValueError, match="flags"):
        with_values(Config(), {("run", "fps"): "fast"}, "flags")


class _Daemon:
    """What a frontend uses of the daemon."""

    def __init__(self):
        # A real Controller; the engine is not reached by building or starting a frontend.
        engine = SimpleNamespace(outputs=[], look=Look(), model_name="prism", on_beat=None)
        self.control = Controller(engine, ["prism"], load=lambda name: None)
        self.stopped = False

    def status(self) -> dict:
        return {}

    def stop(self) -> None:
        self.stopped = True


def test_frontends_turned_off_are_not_built():
    off = Config(osc=OscConfig(listen="off"), midi=MidiConfig(port="off"), tray=TrayConfig(show=False))
    assert build_frontends(off, _Daemon()) == []
    assert list(FRONTENDS) == ["osc", "midi", "tray"]


def test_a_bad_osc_address_fails_when_built():
    with pytest.raises(ValueError, match="HOST:PORT"):
        build_frontends(Config(osc=OscConfig(listen="nowhere"), midi=MidiConfig(port="off")), _Daemon())
    with pytest.raises(ValueError, match="other machines"):
        build_frontends(Config(osc=OscConfig(listen="0.0.0.0:9000"), midi=MidiConfig(port="off")), _Daemon())


def test_a_taken_osc_port_is_one_line_and_the_frontend_stays_off(caplog):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        frontend = OscFrontend(Config(osc=OscConfig(listen=f"127.0.0.1:{port}")), _Daemon())
        with caplog.at_level(logging.ERROR, logger="synd.daemon"):
            frontend.start()
        assert frontend.status() == {"listening": None}
        frontend.stop()  # safe: it never started
    finally:
        taken.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"OSC: cannot listen on 127.0.0.1:{port}")
