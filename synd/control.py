"""The one command set that OSC, MIDI and the tray all speak.

A `Controller` sits between the control surfaces and the live engine. Every command is
checked here, in the caller's thread (a bad value raises ValueError or KeyError with a
one-line message and changes nothing), and then applied by the engine thread between two
frames. `state()` answers queries with the current value of everything.

Continuous parameters (`PARAMS`, set with `set(name, value)`; values are clamped into
their range):

    intensity        0..2     how strongly the sound drives the picture (1 = as trained)
    crossfade        0..1     slot A (0) to slot B (1)
    feedback         0..0.99  how much of the previous frame each frame starts from
    hue              0..1     hue turn on top of the preset's own colours (1 = a full turn)
    flow             0..2     how fast the pattern flows with the music (synd.flow; 0 = fixed)
    loudness_pace    0..2     how much a loud passage speeds the flow (the hits push it by 2)
    lines            0..1     the picture drawn as glowing contour lines (synd.lines; 0 = off)
    ink              0..1     the picture printed in two inks, vivid on black (synd.ink; 0 = off)
    mirror           0..16    the picture folded into that many mirrored wedges (synd.polar; 0 = off)
    tunnel           0..1     the picture wrapped into a tunnel streaming outwards (synd.polar; 0 = off)
    sections         -0.5..0.5  how far the palette turns with the song's loud and quiet passages
    gain             0..8     input gain before the features (sensitivity; 1 = as captured)
    transition_time  0..60    seconds a preset change or `fade` takes (0 = cut)
    rotate           0..3600  seconds between automatic preset changes (0 = off)

Triggers (`trigger(name, state)`: state True/False = press/release of a momentary
button, None = toggle): blackout (black frames), freeze (hold the picture), lock (no
automatic rotation).

Presets and models: `select_preset("name" | "next" | "previous" | "random")` loads the
preset into the slot that is not showing and crossfades to it over `transition_time`;
`load(slot, name)` puts a model or preset into slot "a" or "b" without fading;
`fade(target, seconds)` moves the crossfader; `cut()` switches to the other slot at the
next beat. `set_output(name, enabled)` pauses or resumes an output.
`set_flash_guard(on)` turns the flash guard (`synd.flash.FlashGuard`) on or off. `set_input(name)`
switches the audio input to one of `inputs()` (devices only: a control surface cannot make
synd open a file).

Events for control surfaces (`subscribe(event, callback)`): "beat" (on onsets, with the
onset strength), "changed" (name, value: any parameter or state change), "learn" (the
parameter a MIDI learn was requested for).
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synd.errors import shown_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Param:
    """A continuous parameter: its range, default and meaning."""

    low: float
    high: float
    default: float
    doc: str

    def clamp(self, value: Any, name: str) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return min(self.high, max(self.low, v))


PARAMS: dict[str, Param] = {
    "intensity": Param(0.0, 2.0, 1.0, "how strongly the sound drives the picture (1 = as trained)"),
    "crossfade": Param(0.0, 1.0, 0.0, "slot A (0) to slot B (1)"),
    "feedback": Param(0.0, 0.99, 0.85, "how much of the previous frame each frame starts from"),
    "hue": Param(0.0, 1.0, 0.0, "hue turn on top of the preset's own colours (1 = a full turn)"),
    "flow": Param(0.0, 2.0, 0.0, "how fast the pattern flows with the music (0 = a fixed pattern)"),
    "loudness_pace": Param(
        0.0, 2.0, 0.25, "how much a loud passage speeds the flow (per standard deviation of its loudness)"
    ),
    "lines": Param(0.0, 1.0, 0.0, "the picture drawn as glowing contour lines (0 = off, 1 = lines only)"),
    "ink": Param(0.0, 1.0, 0.0, "the picture printed in two inks, its colourful half vivid on black (0 off)"),
    "mirror": Param(0.0, 16.0, 0.0, "the picture folded into this many mirrored wedges (0 = off, 4-16)"),
    "tunnel": Param(
        0.0, 1.0, 0.0, "the picture wrapped into a tunnel streaming outwards with the music (0 = off)"
    ),
    "sections": Param(
        -0.5, 0.5, 0.0, "how far the palette turns with the song's passages (the sign: which way; 0 = fixed)"
    ),
    "gain": Param(0.0, 8.0, 1.0, "input gain before the features (sensitivity)"),
    "transition_time": Param(0.0, 60.0, 2.0, "seconds a preset change or fade takes (0 = cut)"),
    "rotate": Param(0.0, 3600.0, 0.0, "seconds between automatic preset changes (0 = off)"),
}

TRIGGERS: dict[str, str] = {
    "blackout": "black frames while on",
    "freeze": "hold the current picture while on",
    "lock": "no automatic preset rotation while on",
}

EVENTS = ("beat", "changed", "learn")

#: The parameters a preset brings with it (the rest are the performer's and carry over).
PRESET_PARAMS = ("feedback", "flow", "loudness_pace", "lines", "ink", "mirror", "tunnel", "sections")

#: What a MIDI control can be bound to by learning.
LEARNABLE = (*PARAMS, *TRIGGERS, "preset/next", "preset/previous", "preset/random", "cut")


class Controller:
    """Checks commands and hands them to the engine; see the module docstring.

    `engine` is a `synd.engine.Engine`; `presets` the preset names in order (for next,
    previous and random); `load(name)` returns (bundle, look) for a preset or model name
    and may take seconds (it runs off the engine thread). `models()` lists the names
    `load` takes (for model pickers); `inputs()` the audio inputs one can switch to and
    `open_input(name)` opens one at the engine's sample rate (both None: the input is
    fixed).
    """

    def __init__(
        self,
        engine,
        presets: list[str],
        load: Callable[[str], tuple],
        current: str | None = None,
        rng: random.Random | None = None,
        models: Callable[[], list[str]] | None = None,
        inputs: Callable[[], list[str]] | None = None,
        open_input: Callable[[str], Any] | None = None,
    ):
        self.engine = engine
        self.presets = list(presets)
        self._load_look = load
        self._models = models
        self._inputs = inputs
        self._open_input = open_input
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Callable[..., None]]] = {e: [] for e in EVENTS}
        look = engine.look
        self._values: dict[str, float] = {name: p.default for name, p in PARAMS.items()}
        self._values.update(intensity=look.intensity, **{k: getattr(look, k) for k in PRESET_PARAMS})
        self._triggers: dict[str, bool] = {name: False for name in TRIGGERS}
        self.preset = current or engine.model_name
        engine.on_beat = lambda strength: self._emit("beat", strength)

    def _load(self, name: str, shown: bool = False) -> tuple:
        """(bundle, look) for `name`, with the performer's intensity carried over: a new
        preset brings its own feedback, flow, lines, sections, smoothing and palette (the
        performer's hue turn is applied on top of it by the engine), not a jump in level. For the
        preset going on screen (`shown`), the parameters it brings are reported to the
        surfaces, so a tray, OSC query or MIDI pickup shows what is on screen."""
        from dataclasses import replace

        bundle, look = self._load_look(name)
        brought = {k: float(getattr(look, k)) for k in PRESET_PARAMS}
        with self._lock:
            intensity = self._values["intensity"]
            if shown:
                self._values.update(brought)
        if shown:
            for k, v in brought.items():
                self._emit("changed", k, v)
        return bundle, replace(look, intensity=intensity)

    # -- events ------------------------------------------------------------------------

    def subscribe(self, event: str, callback: Callable[..., None]) -> None:
        """Call `callback(*args)` on `event` ("beat", "changed", "learn"), from any thread."""
        if event not in self._subscribers:
            raise KeyError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self._subscribers[event].append(callback)

    def _emit(self, event: str, *args: Any) -> None:
        for callback in list(self._subscribers[event]):
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - a broken surface must not stop others
                log.warning("control %s listener failed: %s", event, exc)

    # -- commands ----------------------------------------------------------------------

    def set(self, name: str, value: Any) -> float:
        """Set continuous parameter `name` (clamped into range); returns the value set."""
        param = PARAMS.get(name)
        if param is None:
            raise KeyError(f"unknown parameter {name!r}; parameters: {', '.join(PARAMS)}")
        v = param.clamp(value, name)
        with self._lock:
            self._values[name] = v
        if name in ("intensity", "hue", *PRESET_PARAMS):
            self.engine.set_look(**{name: v})
        elif name == "crossfade":
            self.engine.set_crossfade(v)
        elif name == "gain":
            self.engine.set_gain(v)
        elif name == "rotate":
            self.engine.set_rotation(v, self._rotate)
        self._emit("changed", name, v)
        return v

    def trigger(self, name: str, state: bool | None = None) -> bool:
        """Press (True), release (False) or toggle (None) trigger `name`; returns its state."""
        if name not in TRIGGERS:
            raise KeyError(f"unknown trigger {name!r}; triggers: {', '.join(TRIGGERS)}")
        with self._lock:
            on = (not self._triggers[name]) if state is None else bool(state)
            self._triggers[name] = on
        if name in ("blackout", "freeze"):
            self.engine.set_flag(name, on)
        else:
            self.engine.set_flag("lock", on)
        self._emit("changed", name, on)
        return on

    def set_flash_guard(self, on: bool) -> bool:
        """Turn the flash guard on (the default) or off; returns the new state."""
        on = bool(on)
        self.engine.set_flash_guard(on)
        self._emit("changed", "flash_guard", on)
        return on

    def select_preset(self, which: str) -> str:
        """Show preset `which` (a name, "next", "previous" or "random"), crossfading to it
        over `transition_time`; returns the preset's name."""
        name = self._pick(which)
        with self._lock:
            previous, self.preset = self.preset, name

        def done(error: BaseException | None) -> None:
            # A preset that fails to load (a broken file): the old one stays on screen,
            # and the surfaces are told so.
            if error is not None:
                with self._lock:
                    if self.preset != name:
                        return
                    self.preset = previous
                self._emit("changed", "preset", previous)

        self._emit("changed", "preset", name)  # before the load: a failure reports after it
        seconds = self._values["transition_time"]
        self.engine.switch_to(lambda: self._load(name, shown=True), name, seconds, done)
        return name

    def _pick(self, which: str) -> str:
        which = str(which).strip()
        if not self.presets and which in ("next", "previous", "random"):
            raise ValueError("there are no presets to choose from")
        if which in ("next", "previous"):
            i = self.presets.index(self.preset) if self.preset in self.presets else -1
            return self.presets[(i + (1 if which == "next" else -1)) % len(self.presets)]
        if which == "random":
            others = [p for p in self.presets if p != self.preset] or self.presets
            return self._rng.choice(others)
        if not which:
            raise ValueError("preset name is empty")
        return self._known(which)

    def _known(self, name: str) -> str:
        """`name` if it is a preset or model surfaces may choose (only names in the
        presets and models folders: never a path); else ValueError."""

        choices = self.models()
        if name not in choices:
            raise ValueError(
                f"no preset or model named '{shown_name(name, limit=80)}' "
                f"(choose from: {', '.join(choices) or 'none'})"
            )
        return name

    def _rotate(self) -> None:
        """Called by the engine when the rotation timer fires (not while locked)."""
        try:
            self.select_preset("next")
        except ValueError as exc:
            log.warning("preset rotation: %s", exc)

    def load(self, slot: str, name: str) -> None:
        """Load model or preset `name` into slot "a" or "b" (off the engine thread)."""
        slot = str(slot).lower()
        if slot not in ("a", "b"):
            raise ValueError(f"slot must be a or b, got {slot!r}")
        if not str(name).strip():
            raise ValueError("model name is empty")
        name = self._known(str(name).strip())
        self.engine.load_slot(slot, lambda: self._load(name), name)
        self._emit("changed", f"model/{slot}", name)

    def fade(self, target: float, seconds: float | None = None) -> None:
        """Move the crossfader to `target` over `seconds` (default `transition_time`)."""
        x = PARAMS["crossfade"].clamp(target, "crossfade")
        t = PARAMS["transition_time"].clamp(
            self._values["transition_time"] if seconds is None else seconds, "fade time"
        )
        with self._lock:
            self._values["crossfade"] = x
        self.engine.fade(x, t)

    def cut(self) -> None:
        """Switch to the other slot at the next beat (a hard cut on the music)."""
        self.engine.cut_on_beat()

    def set_output(self, name: str, enabled: bool) -> None:
        """Pause (False) or resume (True) output `name`."""
        runners = [r for r in self.engine.outputs if r.name == name]
        if not runners:
            names = ", ".join(self.outputs()) or "none"
            raise KeyError(f"no output {name!r} is running (outputs: {names})")
        for runner in runners:
            runner.enabled = bool(enabled)
        self._emit("changed", f"output/{name}", bool(enabled))

    def set_input(self, name: str) -> None:
        """Switch the audio input to `name`, one of `inputs()`. The device is opened and
        started off the caller's thread; the engine swaps inputs between two frames and
        the change is announced ("changed", "input", description) once it is live. A
        device that fails to open is logged in one line and the old input stays."""
        name = str(name).strip()
        choices = self.inputs()
        open_input = self._open_input  # set once, in __init__
        if open_input is None or not choices:
            raise ValueError("the audio input cannot be switched here")
        if name not in choices:
            raise ValueError(f"no audio input {name!r} (inputs: {', '.join(choices)})")

        def work() -> None:
            try:
                source = open_input(name)
                source.start()
            except Exception as exc:  # noqa: BLE001 - the old input goes on
                log.error("cannot switch the input to %s: %s", name, exc)
                return
            try:
                self.engine.set_source(source, lambda: self._emit("changed", "input", source.description))
            except ValueError as exc:
                source.stop()
                log.error("cannot switch the input to %s: %s", name, exc)

        threading.Thread(target=work, name="synd-input-open", daemon=True).start()

    def outputs(self) -> list[str]:
        """The names of the engine's outputs, in order."""
        return [r.name for r in getattr(self.engine, "outputs", [])]

    def inputs(self) -> list[str]:
        """The audio inputs `set_input` takes ("system", "mic", then device names)."""
        return list(self._inputs()) if self._inputs is not None else []

    def models(self) -> list[str]:
        """Preset and model names `load` and the model pickers take."""
        return list(self._models()) if self._models is not None else list(self.presets)

    def request_learn(self, param: str) -> None:
        """Ask MIDI to bind the next control moved to `param` (a parameter or trigger)."""
        if param not in LEARNABLE:
            raise KeyError(f"cannot learn {param!r}; MIDI can learn: {', '.join(LEARNABLE)}")
        self._emit("learn", param)

    # -- queries -----------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """The current value of a parameter, trigger, "preset", "model/a", "model/b",
        "input" (its description) or "output/NAME"."""
        return self.state()[name]

    def status(self) -> dict:
        """The engine's status (frame rate, drops, stages), {} when it keeps none."""
        status = getattr(self.engine, "status", None)
        return status() if callable(status) else {}

    def last_frame(self) -> Any:
        """The newest frame the engine sent out (`synd.bridges.base.Frame`), or None."""
        return getattr(self.engine, "last_frame", None)

    def state(self) -> dict[str, Any]:
        """Everything a surface can query: parameters, triggers, preset, slots, outputs."""
        with self._lock:
            values = dict(self._values)
            triggers = dict(self._triggers)
            preset = self.preset
        engine = self.engine.mix_state()
        values["crossfade"] = engine["crossfade"]
        guard = getattr(self.engine, "guard", None)
        return {
            **values,
            **triggers,
            "preset": preset,
            "model/a": engine["a"],
            "model/b": engine["b"],
            "mix": engine["mix"],
            "flash_guard": bool(guard.enabled) if guard is not None else True,
            "input": getattr(getattr(self.engine, "source", None), "description", None),
            **{f"output/{r.name}": r.enabled for r in self.engine.outputs},
        }
