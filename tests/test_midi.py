"""MIDI control with real parts: a JACK server (dummy driver) per test, synd's real rtmidi
ports, and a second JACK client playing the controller (and listening to the feedback)."""

import logging
import math
import threading
import time

import pytest

from synd import midi as M
from synd.control import PARAMS, Controller
from synd.presets import Look
from tests.helpers.midi import CC, NOTE_OFF, NOTE_ON, Pads, controller, mapping
from tests.helpers.wait import wait_for


class Lights:
    """The test's MIDI listener (LEDs, motor faders): a JACK client reading what synd sends.
    It reads RtMidi's queue rather than taking a callback (see synd.midi, MidiControl.start)."""

    def __init__(self, jack, name="lights"):
        self.midi_in = jack.client(jack.rtmidi.MidiIn, name)
        self._heard = []

    @property
    def heard(self):
        while (got := self.midi_in.get_message()) is not None:
            self._heard.append(got[0])
        return self._heard

    def wait(self, message, after=0):
        wait_for(lambda: message in self.heard[after:], 10, f"feedback {message}")


KNOBS = mapping("""
[[bind]]
cc = 21
param = "intensity"
range = [0.0, 2.0]

[[bind]]
cc = 25
param = "gain"
range = [0.0, 8.0]
curve = "exp"

[[bind]]
cc = 26
param = "hue"
range = [0.8, 0.2]
curve = "log"
""")


# -- with a JACK server ----------------------------------------------------------------


def test_knobs_set_parameters_through_their_range_and_curve(jack):
    ctl = controller()
    midi = jack.surface(ctl, mapping=KNOBS)
    pads = Pads(jack, midi)
    pads.cc(21, 127)
    assert ctl.get("intensity") == pytest.approx(2.0)
    pads.cc(21, 0)
    assert ctl.get("intensity") == pytest.approx(0.0)
    pads.cc(21, 64)
    assert ctl.get("intensity") == pytest.approx(2.0 * 64 / 127)
    assert ctl.engine.calls[-1] == ("set_look", {"intensity": pytest.approx(2.0 * 64 / 127)})
    pads.cc(25, 64)  # exp: (100**x - 1) / 99
    assert ctl.get("gain") == pytest.approx(8.0 * (100 ** (64 / 127) - 1) / 99)
    assert ("set_gain", pytest.approx(ctl.get("gain"))) in ctl.engine.calls
    pads.cc(26, 32)  # log, turned round: 0.8 at CC 0, 0.2 at CC 127
    assert ctl.get("hue") == pytest.approx(0.8 - 0.6 * math.log(1 + 99 * 32 / 127) / math.log(100))
    # A fast sweep, sent as quickly as the client can: the knob ends where it stopped.
    for v in range(128):
        pads.send(CC, 21, v)
    pads.send(CC, 21, 96)
    pads.flush()
    assert ctl.get("intensity") == pytest.approx(2.0 * 96 / 127)


def test_pads_of_the_default_mapping_change_presets_and_hold_triggers(jack):
    ctl = controller()
    midi = jack.surface(ctl)  # the shipped mapping
    pads = Pads(jack, midi)
    pads.note(37)
    pads.note(37, on=False)
    assert ctl.get("preset") == "b"
    assert ("switch_to", "b", 2.0) in ctl.engine.calls
    pads.note(36)
    assert ctl.get("preset") == "a"
    pads.note(38)
    assert ctl.get("preset") in ("b", "c")
    pads.note(39)
    assert ctl.engine.calls[-1] == ("cut_on_beat",)
    # Momentary blackout: on while held; note-off or note-on with velocity 0 lets go.
    pads.note(40)
    assert ctl.get("blackout") is True and ctl.engine.calls[-1] == ("set_flag", "blackout", True)
    pads.note(40, on=False)
    assert ctl.get("blackout") is False
    pads.note(40)
    assert ctl.get("blackout") is True
    pads.note(40, velocity=0)
    assert ctl.get("blackout") is False
    # Toggled freeze: press flips it, release does nothing.
    pads.note(41)
    pads.note(41, on=False)
    assert ctl.get("freeze") is True
    pads.note(41)
    pads.note(41, on=False)
    assert ctl.get("freeze") is False
    # A burst of presses, as fast as the client can send them: none lost, none doubled.
    before = sum(c[:2] == ("set_flag", "freeze") for c in ctl.engine.calls)
    for _ in range(45):
        pads.send(NOTE_ON, 41, 100)
        pads.send(NOTE_OFF, 41, 0)
    pads.flush()
    assert sum(c[:2] == ("set_flag", "freeze") for c in ctl.engine.calls) - before == 45
    assert ctl.get("freeze") is True
    pads.note(43)
    assert ctl.get("freeze") is True
    pads.note(43, on=False)  # the held freeze pad lets go of it
    assert ctl.get("freeze") is False
    # The knobs: CC 22 is the crossfader (read back from the engine's mix state).
    pads.cc(22, 127)
    assert ctl.get("crossfade") == pytest.approx(1.0)
    pads.cc(27, 0)
    assert ctl.get("rotate") == 0.0 and ctl.engine.calls[-1] == ("set_rotation", 0.0)


def test_cc_buttons_press_when_they_rise_past_64(jack):
    ctl = controller()
    midi = jack.surface(
        ctl,
        mapping=mapping("""
        [[bind]]
        cc = 64
        trigger = "lock"
        [[bind]]
        cc = 65
        trigger = "blackout"
        mode = "momentary"
        [[bind]]
        cc = 66
        preset = "next"
    """),
    )
    pads = Pads(jack, midi)
    pads.cc(64, 127)
    assert ctl.get("lock") is True
    pads.cc(64, 100)  # still held: no second press
    pads.cc(64, 0)
    assert ctl.get("lock") is True
    pads.cc(64, 127)
    assert ctl.get("lock") is False
    pads.cc(65, 127)
    assert ctl.get("blackout") is True
    pads.cc(65, 10)
    assert ctl.get("blackout") is False
    pads.cc(66, 127)
    pads.cc(66, 127)
    assert ctl.get("preset") == "b"  # one press, one step
    pads.cc(66, 0)
    pads.cc(66, 90)
    assert ctl.get("preset") == "c"


def test_channel_filters(jack):
    ctl = controller()
    midi = jack.surface(
        ctl,
        mapping=mapping("""
        [[bind]]
        cc = 21
        channel = 2
        param = "intensity"
        [[bind]]
        cc = 21
        channel = 3
        param = "hue"
        [[bind]]
        note = 36
        channel = 10
        preset = "next"
    """),
    )
    pads = Pads(jack, midi)
    pads.cc(21, 0, channel=1)
    pads.note(36, channel=1)
    assert (ctl.get("intensity"), ctl.get("hue"), ctl.get("preset")) == (1.0, 0.0, "a")
    assert ctl.engine.calls == []
    pads.cc(21, 0, channel=2)
    assert (ctl.get("intensity"), ctl.get("hue")) == (0.0, 0.0)
    pads.cc(21, 127, channel=3)
    assert (ctl.get("intensity"), ctl.get("hue")) == (0.0, 1.0)
    pads.note(36, channel=10)
    assert ctl.get("preset") == "b"


def test_learn_binds_the_next_control_and_the_saved_mapping_reloads(jack, tmp_path):
    ctl = controller()
    saved = tmp_path / "conf" / "midi.toml"
    midi = jack.surface(ctl, save_path=saved)
    pads = Pads(jack, midi)

    ctl.request_learn("hue")  # as OSC or the tray would
    assert midi.learning == "hue"
    pads.note(50)  # a note cannot drive a continuous parameter: still waiting
    assert midi.learning == "hue"
    pads.cc(30, 10, channel=3)
    assert midi.learning is None
    assert midi.wait_learned(0) == M.Binding(cc=30, channel=3, param="hue")
    assert ctl.get("hue") == 0.0  # the learning move itself does nothing
    pads.cc(30, 127, channel=3)
    assert ctl.get("hue") == pytest.approx(1.0)
    pads.cc(30, 0, channel=4)  # learned on channel 3 only
    assert ctl.get("hue") == pytest.approx(1.0)

    # A pad that selected the previous preset becomes the blackout button.
    midi.learn("blackout")
    pads.note(36)
    pads.note(36, on=False)
    assert ctl.get("preset") == "a" and ctl.get("blackout") is False
    pads.note(36)
    assert ctl.get("blackout") is True and ctl.get("preset") == "a"
    pads.note(36, on=False)
    assert ctl.get("blackout") is False

    # wait_learned reports the binding made.
    midi.learn("preset/random")
    result = {}
    waiter = threading.Thread(target=lambda: result.update(b=midi.wait_learned(10)))
    waiter.start()
    pads.cc(100, 127, channel=16)
    waiter.join(10)
    assert result["b"] == M.Binding(cc=100, channel=16, preset="random")
    assert ctl.get("preset") == "a"  # bound, not pressed

    learned = M.load_mapping(saved)  # saved at once, with every learned binding
    assert learned == midi.mapping
    assert M.Binding(cc=30, channel=3, param="hue") in learned.bind
    assert [b.target for b in learned.bind if b.note == 36] == ["blackout"]
    assert [b.target for b in learned.bind if b.note == 37] == ["preset/next"]  # untouched
    other = midi.save_mapping(tmp_path / "copy.toml")
    assert M.load_mapping(other) == learned

    # A new surface with the saved mapping plays the learned controls.
    midi.stop()
    ctl2 = controller()
    midi2 = jack.surface(ctl2, mapping=M.load_mapping(saved), client_name="synd2")
    pads2 = Pads(jack, midi2, name="pads2")
    pads2.cc(30, 0, channel=3)
    assert ctl2.get("hue") == 0.0
    pads2.cc(30, 64, channel=3)
    assert ctl2.get("hue") == pytest.approx(64 / 127)


def test_feedback_follows_changes_made_through_the_controller(jack):
    ctl = controller()
    midi = jack.surface(ctl, feedback_port="virtual")
    lights = Lights(jack)
    ports = lights.midi_in.get_ports()
    out = [i for i, p in enumerate(ports) if p.endswith("synd out")]
    assert out, f"no 'synd out' among {ports}"
    lights.midi_in.open_port(out[0], "from synd")
    mark = len(lights.heard)

    def heard_after(mark, message):
        lights.wait(message, mark)

    ctl.set("hue", 0.25)
    heard_after(mark, [CC, 24, 32])  # 0.25 * 127 = 31.75
    ctl.set("gain", 2.0)  # exp curve on 0..8: the inverse is log(1 + 99 x) / log(100)
    heard_after(mark, [CC, 25, round(127 * math.log(1 + 99 * 2.0 / 8) / math.log(100))])
    ctl.trigger("freeze")  # pads 41 (toggle) and 43 (held) are both freeze
    heard_after(mark, [NOTE_ON, 41, 127])
    heard_after(mark, [NOTE_ON, 43, 127])
    ctl.trigger("freeze")
    heard_after(mark, [NOTE_OFF, 41, 0])
    ctl.select_preset("next")  # nothing to show for a preset; no error either
    ctl.set("intensity", 2.0)
    heard_after(mark, [CC, 21, 127])
    assert midi.complaints.count == 0


def test_feedback_to_an_existing_port_sends_the_state_at_start_and_no_echo(jack):
    ctl = controller()
    lights = Lights(jack)
    lights.midi_in.open_virtual_port("motor faders")
    midi = jack.surface(ctl, mapping=KNOBS, feedback_port="motor fad")
    assert midi.out_port_name.endswith("motor faders")
    # At start: every mapped parameter, so faders go where the picture is.
    wait_for(lambda: len(lights.heard) >= 3, 10, "the state at start")
    assert sorted(lights.heard[:3]) == sorted([[CC, 21, 64], [CC, 25, 72], [CC, 26, 127]])
    # A value that came from the fader itself is not sent back to it.
    pads = Pads(jack, midi)
    pads.cc(21, 100)
    ctl.set("intensity", 0.5)
    lights.wait([CC, 21, 32])
    assert [CC, 21, 100] not in lights.heard


def test_an_existing_input_port_by_part_of_its_name(jack):
    ctl = controller()
    pads_out = jack.client(jack.rtmidi.MidiOut, "nanoPAD")
    pads_out.open_virtual_port("nanoPAD2 MIDI 1")
    midi = jack.surface(ctl, port="nanopad2")
    assert midi.in_port_name.endswith("nanoPAD2 MIDI 1")
    deadline = time.monotonic() + 10
    while ctl.get("intensity") != 2.0:
        assert time.monotonic() < deadline, "the CC never arrived"
        pads_out.send_message([CC, 21, 127])
        time.sleep(0.05)


def test_missing_ports_and_apis_are_one_line_errors(jack):
    ctl = controller()
    other = jack.client(jack.rtmidi.MidiOut, "keys")
    other.open_virtual_port("keys out")
    with pytest.raises(M.MidiError) as e:
        M.MidiControl(ctl, api="jack", port="launchpad").start()
    assert "launchpad" in str(e.value) and "keys out" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(M.MidiError, match="no MIDI output port matches 'motor'"):
        M.MidiControl(ctl, api="jack", feedback_port="motor").start()
    with pytest.raises(M.MidiError, match="unknown MIDI API 'dx'"):
        M.MidiControl(ctl, api="dx").start()
    missing = next(a for a in ("coremidi", "winmm", "alsa", "jack") if a not in M.compiled_apis())
    with pytest.raises(M.MidiError) as e:
        M.MidiControl(ctl, api=missing).start()
    assert f"{missing} is not available" in str(e.value)
    assert ", ".join(M.compiled_apis()) in str(e.value)
    # The failed starts left no port behind.
    names = other.get_ports() + jack.client(jack.rtmidi.MidiIn, "look").get_ports()
    assert not any("synd" in p for p in names), names


def test_bad_messages_and_failing_commands_never_stop_the_input(jack, caplog):
    ctl = controller(presets=())  # "next" has nothing to choose from: the command fails
    midi = jack.surface(ctl)
    pads = Pads(jack, midi)
    with caplog.at_level(logging.WARNING, logger="synd.midi"):
        for _ in range(20):
            pads.send(NOTE_ON, 37, 100)
            pads.send(NOTE_OFF, 37, 0)
        pads.send(0xC0, 5, counted=False)  # a program change: not ours
        pads.send(0xF2, 1, 2, counted=False)  # song position: not ours
        pads.send(0xF0, 1, 2, 0xF7, counted=False)  # sysex: filtered by rtmidi
        midi._on_message(None)  # what no driver should send
        midi._on_message(([0xB0, 300, 1], 0.0))
        pads.cc(21, 0)
    assert ctl.get("intensity") == 0.0
    failures = [r for r in caplog.records if "no presets" in r.getMessage()]
    assert len(failures) == 1  # rate-limited: one line, not twenty
    assert midi.complaints.count >= 21


def test_stop_is_prompt_idempotent_and_start_works_again(jack):
    ctl = controller()
    midi = jack.surface(ctl, feedback_port="virtual")
    probe = jack.client(jack.rtmidi.MidiOut, "probe")
    assert any(p.endswith(":synd") for p in probe.get_ports())
    t = time.monotonic()
    midi.stop()
    midi.stop()
    assert time.monotonic() - t < 5
    assert not midi.status()["running"]
    assert not any(p.endswith(":synd") for p in probe.get_ports())
    ctl.set("hue", 0.5)  # no listener left behind that fails
    midi.start()
    pads = Pads(jack, midi)
    pads.cc(24, 127)
    assert ctl.get("hue") == 1.0


def test_learn_once_and_the_command_line(jack, tmp_path, capsys):
    path = tmp_path / "midi.toml"
    ready = threading.Event()
    result = {}

    def run():
        try:
            result["ok"] = M.learn_once(
                "freeze",
                api="jack",
                mapping_path=path,
                timeout=20,
                client_name="synd-learn",
                ready=lambda midi: ready.set(),
            )
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    assert ready.wait(10)
    sender = jack.client(jack.rtmidi.MidiOut, "pads")
    ports = sender.get_ports()
    sender.open_port(next(i for i, p in enumerate(ports) if p.endswith(":synd-learn")), "o")
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        sender.send_message([NOTE_ON | 3, 50, 90])
        worker.join(0.1)
    assert "error" not in result and not worker.is_alive()
    binding, written = result["ok"]
    assert binding == M.Binding(note=50, channel=4, trigger="freeze") and written == path
    saved = M.load_mapping(path)
    assert binding in saved.bind and len(saved.bind) == len(M.default_mapping().bind) + 1

    assert M.main(["ports", "--api", "jack"]) == 0
    assert "pads" in capsys.readouterr().out
    assert M.main(["learn", "sparkle", "--api", "jack", "--mapping", str(path)]) == 1
    assert "cannot learn 'sparkle'" in capsys.readouterr().err


def test_a_real_engine_follows_the_knobs_and_pads(jack, tiny_bundle, tmp_path):
    from synd.audio import write_wav
    from synd.bridges.base import OutputRunner
    from synd.capture import FileInput
    from synd.engine import Engine, EngineOptions
    from tests.helpers.audio import music_clip
    from tests.helpers.engine import Collect

    song = tmp_path / "song.wav"
    write_wav(song, music_clip(3, seconds=3.0), 24000)
    source = FileInput(song, rate=24000, loop=True)
    out = Collect(fps=30.0)
    runner = OutputRunner(out)
    engine = Engine(tiny_bundle, Look(), source, [runner], EngineOptions(size=(64, 48)), model_name="first")
    ctl = Controller(engine, ["first"], lambda name: (tiny_bundle, Look()), current="first")
    source.start()
    runner.start()
    engine.start()
    try:
        midi = jack.surface(ctl)  # the shipped mapping
        pads = Pads(jack, midi)
        wait_for(lambda: len(out.frames) > 5, 20, "frames")
        pads.cc(22, 127)  # the crossfader knob, applied by the engine between two frames
        wait_for(lambda: engine.mix_state()["crossfade"] == 1.0, 10, "the crossfade")
        pads.cc(21, 0)
        wait_for(lambda: engine.look.intensity == 0.0, 10, "intensity 0 in the engine")
        pads.note(40)  # blackout while held
        wait_for(lambda: not out.frames[-1].rgb.any(), 10, "black frames")
        pads.note(40, on=False)
        wait_for(lambda: out.frames[-1].rgb.any(), 10, "pictures again")
        assert engine.error is None and midi.complaints.count == 0
    finally:
        engine.stop()
        runner.stop(2.0)
        source.stop()


# -- without -------------------------------------------------------------------------


def test_the_shipped_mapping_fits_an_8_knob_8_pad_controller():
    m = M.default_mapping()
    knobs = {b.cc: b.param for b in m.bind if b.cc is not None}
    assert knobs == {
        21: "intensity",
        22: "crossfade",
        23: "feedback",
        24: "hue",
        25: "gain",
        26: "transition_time",
        27: "rotate",
        28: "flow",
    }
    pads = {b.note: b.target for b in m.bind if b.note is not None}
    assert pads == {
        36: "preset/previous",
        37: "preset/next",
        38: "preset/random",
        39: "cut",
        40: "blackout",
        41: "freeze",
        42: "lock",
        43: "freeze",
    }
    assert all(b.channel is None for b in m.bind)
    assert M.loads_mapping(m.to_toml(), "round trip") == m


@pytest.mark.parametrize("curve", M.CURVES)
@pytest.mark.parametrize("rng", [None, (0.5, 0.1)])
def test_feedback_inverts_the_curve_for_every_cc_value(curve, rng):
    b = M.Binding(cc=1, param="feedback", curve=curve, range=rng)
    assert [b.raw(b.value(v)) for v in range(128)] == list(range(128))
    low, high = b.low_high
    assert b.value(0) == pytest.approx(low) and b.value(127) == pytest.approx(high)
    values = [b.value(v) for v in range(128)]
    assert values == sorted(values, reverse=low > high)  # monotonic
    assert b.raw(PARAMS["feedback"].high + 5) in (0, 127)  # out of the range: the nearest end


BAD = [
    ('[[bind]]\ncc = 21\nparam = "hue"\nrnage = [0, 1]\n', "bind #1: unknown keys ['rnage']"),
    ("channels = 2\n", "unknown keys ['channels']"),
    ('[[bind]]\ncc = 21\nparam = "intensity"\nrange = [0, 5]\n', "outside intensity's 0..2"),
    ('[[bind]]\ncc = 21\nparam = "hue"\nrange = [0.5]\n', "'range' must be [low, high]"),
    ('[[bind]]\ncc = 21\nparam = "hue"\nrange = ["a", "b"]\n', "'range' must be [low, high]"),
    ('[[bind]]\ncc = 21\nparam = "hue"\nrange = [0.5, 0.5]\n', "is empty"),
    ('[[bind]]\ncc = 21\nparam = "brightness"\n', "unknown parameter 'brightness'"),
    ('[[bind]]\nnote = 36\nparam = "hue"\n', "a note cannot drive"),
    ('[[bind]]\ncc = 21\nnote = 36\npreset = "next"\n', "exactly one of 'cc' or 'note'"),
    ('[[bind]]\npreset = "next"\n', "exactly one of 'cc' or 'note'"),
    ('[[bind]]\ncc = 21\nparam = "hue"\npreset = "next"\n', "exactly one of 'param'"),
    ('[[bind]]\ncc = 128\nparam = "hue"\n', "'cc' must be a whole number 0..127"),
    ('[[bind]]\ncc = 1\nchannel = 17\nparam = "hue"\n', "'channel' must be a whole number 1..16"),
    ('[[bind]]\ncc = 1\nchannel = 0\nparam = "hue"\n', "'channel' must be a whole number 1..16"),
    ('[[bind]]\ncc = 1\nparam = "hue"\ncurve = "cubic"\n', "'curve' must be one of"),
    ('[[bind]]\nnote = 1\npreset = "next"\nmode = "toggle"\n', "'mode' only applies"),
    ('[[bind]]\nnote = 1\ntrigger = "freeze"\nmode = "latch"\n', "momentary or toggle"),
    ('[[bind]]\nnote = 1\ntrigger = "strobe"\n', "unknown trigger 'strobe'"),
    ('[[bind]]\nnote = 1\npreset = "next"\ncurve = "exp"\n', "'curve' only applies to a 'param'"),
    ('[bind]\ncc = 1\nparam = "hue"\n', "array of tables"),
    ('[[bind]]\ncc = "21"\nparam = "hue"\n', "'cc' must be a whole number"),
    ("[[bind]\ncc = 1\n", "invalid TOML"),
]


@pytest.mark.parametrize("text, problem", BAD)
def test_mapping_file_errors_are_one_line_and_name_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        M.load_mapping(path)
    message = str(e.value)
    assert f"MIDI mapping '{path}'" in message and problem in message and "\n" not in message


def test_missing_mapping_file_and_learn_targets(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        M.load_mapping(tmp_path / "none.toml")
    with pytest.raises(ValueError, match="cannot learn 'sparkle'"):
        M.MidiControl(None, mapping=M.Mapping()).learn("sparkle")
    midi = M.MidiControl(None, mapping=M.Mapping())
    for target in ("rotate", "lock", "cut", "preset/next", "preset/lava"):
        midi.learn(target)
        assert midi.learning == target
    midi.learn(None)
    assert midi.learning is None


def test_windows_mm_has_no_virtual_ports(monkeypatch):
    pytest.importorskip("rtmidi", reason="python-rtmidi is not installed")
    monkeypatch.setattr(M, "choose_api", lambda api: ("winmm", 0))
    with pytest.raises(M.MidiError, match="Windows MM has no virtual MIDI ports"):
        M.MidiControl(None, api="winmm").start()
