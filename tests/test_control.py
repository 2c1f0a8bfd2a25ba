"""The control command set on a real engine: slots, crossfades, transitions, triggers."""

import time

import numpy as np
import pytest
import torch

from synd.audio import write_wav
from synd.bridges.base import OutputRunner
from synd.capture import FileInput
from synd.control import Controller
from synd.engine import Engine, EngineOptions
from synd.presets import Look
from synd.slots import Mixer, make_slot
from tests.helpers.audio import dominant_hz, music_clip, tone
from tests.helpers.engine import Collect
from tests.helpers.models import other_model
from tests.helpers.pulse import requires_pulse
from tests.helpers.wait import wait_for


def slot(bundle, name):
    return make_slot(bundle, Look(feedback=0.5), name, 24000, 30.0, (48, 32), 0, paint=None, runtime="torch")


def distance(x, y):
    return float((x - y).abs().mean())


@pytest.mark.parametrize("mode", ["image", "weights"])
def test_crossfades_paint_between_the_two_models(tiny_bundle, mode):
    other = other_model(tiny_bundle, 1)
    row = np.array(tiny_bundle.stats.mean, np.float32) + 1.5
    frames = {}
    for x in (0.0, 0.5, 1.0):
        a, b = slot(tiny_bundle, "a"), slot(other, "b")
        a.last_row = b.last_row = row
        with torch.inference_mode():
            frames[x] = Mixer(mode).paint(a, b, x)
    a_only, b_only, mid = frames[0.0], frames[1.0], frames[0.5]
    apart = distance(a_only, b_only)
    assert apart > 0.02  # the two models paint different pictures
    assert distance(mid, a_only) < apart and distance(mid, b_only) < apart
    # ...and is neither of them (a weight blend of a nonlinear network need not sit
    # half-way between the pictures).
    assert distance(mid, a_only) > 0.03 * apart and distance(mid, b_only) > 0.03 * apart
    if mode == "image":
        assert torch.allclose(mid, 0.5 * (a_only + b_only), atol=1e-6)


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    write_wav(path, music_clip(3, seconds=4.0), 24000)
    return path


@pytest.fixture
def live(tiny_bundle, song):
    """A running engine on a looping song, its collecting output and a Controller whose
    presets are tiny models."""
    models = {
        "first": tiny_bundle,
        "second": other_model(tiny_bundle, 2),
        "third": other_model(tiny_bundle, 3),
    }
    source = FileInput(song, rate=24000, loop=True)
    out = Collect(fps=30.0)
    runner = OutputRunner(out)
    engine = Engine(tiny_bundle, Look(), source, [runner], EngineOptions(size=(64, 48)), model_name="first")
    control = Controller(engine, list(models), lambda name: (models[name], Look()), current="first")
    source.start()
    runner.start()
    engine.start()
    yield engine, control, out, runner
    engine.stop()
    runner.stop(2.0)
    source.stop()


def test_a_preset_switch_fades_in_the_requested_time(live):
    engine, control, out, _ = live
    control.set("transition_time", 0.6)
    moves = []

    def watch():
        moves.append((time.monotonic(), engine.crossfade))
        return engine.crossfade >= 1.0

    assert control.select_preset("next") == "second"
    wait_for(lambda: watch() or time.sleep(0.01), timeout=20)
    started = next(t for t, x in moves if x > 0)
    took = moves[-1][0] - started
    assert 0.4 < took < 1.5, took  # a 0.6 s fade, seen through 10 ms polling on a busy machine
    state = control.state()
    assert state["preset"] == "second" and state["model/b"] == "second" and state["model/a"] == "first"
    assert engine.model_name == "second" and engine.showing == "b"
    # The next switch loads into the hidden slot (A) and fades back.
    control.set("transition_time", 0)
    control.select_preset("next")
    wait_for(lambda: engine.mix_state()["a"] == "third" and engine.crossfade == 0.0, timeout=20)
    assert control.get("preset") == "third"


def test_a_preset_brings_its_own_feedback_flow_and_lines_and_the_surfaces_hear_of_it(live, tiny_bundle):
    engine, _, _, _ = live
    brings = {
        "feedback": 0.6,
        "flow": 0.7,
        "lines": 0.3,
        "ink": 0.4,
        "mirror": 6.0,
        "tunnel": 0.5,
        "sections": 0.2,
    }
    looks = {"first": Look(), "second": Look(**brings)}
    control = Controller(engine, list(looks), lambda name: (tiny_bundle, looks[name]), current="first")
    heard = {}
    control.subscribe("changed", lambda name, value: heard.__setitem__(name, value))
    control.set("transition_time", 0)
    control.set("flow", 2.0)  # the performer's ride on the first preset
    control.select_preset("second")
    wait_for(lambda: engine.model_name == "second" and engine.look.flow == 0.7, timeout=20)
    for name, value in brings.items():
        assert control.get(name) == pytest.approx(value), name
        assert heard[name] == pytest.approx(value), name
    assert control.state()["flow"] == pytest.approx(0.7)


def test_blackout_and_freeze(live):
    engine, control, out, _ = live
    wait_for(lambda: len(out.frames) > 10, timeout=20)
    control.trigger("blackout", True)
    time.sleep(0.3)
    n = len(out.frames)
    time.sleep(0.3)
    dark = out.frames[n:]
    assert dark and all(not f.rgb.any() for f in dark)
    control.trigger("blackout", False)
    time.sleep(0.3)
    assert out.frames[-1].rgb.any()
    assert control.trigger("freeze") is True  # toggle on
    time.sleep(0.3)
    n = len(out.frames)
    time.sleep(0.4)
    held = out.frames[n:]
    assert len(held) > 3 and all(np.array_equal(f.rgb, held[0].rgb) for f in held)
    assert control.trigger("freeze") is False
    time.sleep(0.3)
    n = len(out.frames)
    time.sleep(0.3)
    moving = out.frames[n:]
    assert any(not np.array_equal(f.rgb, moving[0].rgb) for f in moving)


def test_parameters_are_clamped_checked_and_queryable(live):
    engine, control, _, _ = live
    assert control.set("intensity", 5) == 2.0
    assert control.set("gain", -1) == 0.0
    with pytest.raises(ValueError, match="finite"):
        control.set("hue", float("nan"))
    with pytest.raises(KeyError, match="unknown parameter"):
        control.set("brightness", 1)
    with pytest.raises(ValueError, match="slot must be a or b"):
        control.load("c", "first")
    control.set("hue", 0.25)
    assert control.set("flow", 9) == 2.0  # the flowing pattern's speed, clamped
    assert control.set("lines", -1) == 0.0  # contour lines, clamped
    control.set("lines", 0.5)
    assert control.set("sections", 2) == 0.5  # the palette's turn with the passages, clamped
    assert control.set("mirror", 40) == 16.0  # the kaleidoscope's wedges, clamped
    wait_for(
        lambda: (
            engine.look.hue == 0.25
            and engine.gain == 0.0
            and engine.look.flow == 2.0
            and engine.look.lines == 0.5
            and engine.look.sections == 0.5
            and engine.look.mirror == 16.0
        ),
        timeout=20,
    )
    assert control.get("intensity") == 2.0 and engine.look.intensity == 2.0


def test_an_output_can_be_paused(live):
    engine, control, out, runner = live
    wait_for(lambda: len(out.frames) > 5, timeout=20)
    control.set_output("collect", False)
    time.sleep(0.2)
    n = len(out.frames)
    time.sleep(0.5)
    assert len(out.frames) <= n + 1 and engine.frames > 0
    control.set_output("collect", True)
    wait_for(lambda: len(out.frames) > n + 5, timeout=20)
    with pytest.raises(KeyError, match="no output 'ndi'"):
        control.set_output("ndi", True)


def test_rotation_changes_presets_until_locked(live):
    engine, control, _, _ = live
    control.set("transition_time", 0)
    control.set("rotate", 0.5)
    wait_for(lambda: control.get("preset") != "first", timeout=10)
    control.trigger("lock", True)
    time.sleep(0.3)
    locked_at = control.get("preset")
    time.sleep(1.2)
    assert control.get("preset") == locked_at


def test_cut_waits_for_a_beat_and_beats_are_reported(live):
    engine, control, _, _ = live
    beats = []
    control.subscribe("beat", beats.append)
    control.load("b", "second")
    wait_for(lambda: engine.mix_state()["b"] == "second", timeout=20)
    wait_for(lambda: len(beats) >= 2, timeout=10)  # the song has hits
    control.cut()
    wait_for(lambda: engine.crossfade == 1.0, timeout=10)
    assert all(s > 1.0 for s in beats)


@requires_pulse
def test_the_input_switches_to_a_real_device_between_frames(live, pulse):
    """From a song to a PulseAudio microphone while the engine runs: the listed choices
    are devices only, the switch is announced, and the new input's audio reaches the
    frames; an unknown name or a file path is refused and changes nothing."""
    from synd.capture import refresh_devices
    from synd.daemon import input_choices, open_device

    engine, control, out, _ = live
    fifo = pulse.add_pipe_mic("fakemic")
    refresh_devices()
    control._inputs = input_choices
    control._open_input = lambda name: open_device(name, engine.sample_rate)
    choices = control.inputs()
    assert choices[:2] == ["system", "mic"] and "fakemic" in choices
    changes = []
    control.subscribe("changed", lambda name, value: changes.append((name, value)))
    for bad in ("/etc/passwd", "../song.wav", "nothing-like-it"):
        with pytest.raises(ValueError, match="no audio input"):
            control.set_input(bad)
    old = engine.source
    try:
        with pulse.feed(fifo, tone(660, 1.0, 48000), loop=True):
            control.set_input("fakemic")
            wait_for(lambda: any(name == "input" for name, _ in changes), timeout=20)
            assert [v for n, v in changes if n == "input"] == [engine.source.description]
            assert "fakemic" in engine.source.description and engine.source is not old
            assert control.get("input") == engine.source.description
            n = len(out.frames)
            wait_for(lambda: len(out.frames) > n + 40, timeout=20)
            heard = np.concatenate([f.audio for f in out.frames[n + 10 :]])
    finally:
        engine.stop()  # before the sound server goes: no capture left open on it
        engine.source.stop()
    assert dominant_hz(heard[-12000:], 24000) == pytest.approx(660, abs=10)


def test_names_must_be_known_and_a_failed_load_puts_the_preset_back(live, caplog):
    """Surfaces can only choose presets and models by the names listed (no paths); a
    preset whose file turns out broken leaves the old one on screen, and says so."""
    engine, control, out, _ = live
    for bad in ("../../etc/passwd", "/etc/passwd", "first/../second", "fourth"):
        with pytest.raises(ValueError, match="no preset or model named"):
            control.select_preset(bad)
        with pytest.raises(ValueError, match="no preset or model named"):
            control.load("b", bad)
    assert control.preset == "first"

    def broken(name):
        raise ValueError(f"{name}.safetensors is truncated")

    control._load_look = broken
    changes = []
    control.subscribe("changed", lambda name, value: changes.append((name, value)))
    with caplog.at_level("ERROR"):
        assert control.select_preset("second") == "second"
        wait_for(lambda: ("preset", "first") in changes, timeout=20)
    assert changes == [("preset", "second"), ("preset", "first")]
    assert control.preset == "first" and engine.model_name == "first"
    assert any("cannot load model second" in r.getMessage() for r in caplog.records)
