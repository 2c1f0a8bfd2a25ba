"""The live engine: live audio in, frames out to every output, on a fixed frame clock.

One thread ticks at `fps`. Each tick it applies pending commands (look changes, a model
swap), takes the audio captured since the last tick (the newest audio wins: after a
stall the backlog is skipped, not replayed), runs the streaming feature extractor, paints
one frame with the shared `FrameLoop` (exactly what `synd render` paints for the same
audio) and offers it to every output's mailbox. Outputs scale the frame to their own size
on their own threads, so a slow output never stalls the engine, nor does a broken one: an
output whose send raises is disabled after `Output.max_failures` failures in a row (the
first, by default) with one log line, and one whose send never returns only loses its
own frames (`synd.bridges.base.OutputRunner`).

A tick that starts more than a frame late is dropped (counted) and the clock resyncs,
so the picture never lags further and further behind the sound.

Two model slots, A and B, can be loaded at once; the crossfader blends them
(`synd.slots.Mixer`: pictures or weights). The control surfaces (`synd.control`) steer
the engine through thread-safe methods that queue commands: look changes, crossfader
moves and timed fades, preset switches (load into the hidden slot, then fade), a hard
cut on the next beat, blackout, freeze, input gain and timed preset rotation.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

from synd.bridges.base import Frame
from synd.bundle import ModelBundle
from synd.flash import FlashGuard
from synd.frameloop import to_rgb_uint8
from synd.loadqueue import LoadQueue
from synd.measure import latency_ms
from synd.onnxgen import live_painter, painting_threads, runtime_name
from synd.presets import Look
from synd.sizes import GENERATION_SHORT_SIDE, generation_size
from synd.slots import BeatDetector, Mixer, Slot, make_slot

log = logging.getLogger(__name__)

#: Without new audio for this long the input counts as silent: the picture calms down.
SILENCE_AFTER_S = 0.25


@dataclass(frozen=True)
class EngineOptions:
    """The engine's frame clock, frame size and audio alignment."""

    fps: float = 30.0
    size: tuple[int, int] = (1280, 720)  # the main output size; it sets the aspect ratio
    detail: int = GENERATION_SHORT_SIDE
    delay_ms: float = 0.0
    seed: int = 0
    runtime: str = "auto"  # what paints: "onnx" (ONNX Runtime, CPU), "torch", or "auto"
    mix: str = "image"  # how the crossfader blends slots A and B: "image" or "weights"
    flash_guard: bool = True  # limit flashes to the safe rate (synd.flash.FlashGuard)


class Engine:
    """Runs the frame loop on live audio; see the module docstring.

    `source` is a capture input (`synd.capture.LiveInput`: `.ring.read_new`,
    `.sample_rate`, `.status()`); `outputs` are `OutputRunner`s (`offer(frame)`).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        look: Look,
        source,
        outputs: list,
        options: EngineOptions = EngineOptions(),
        model_name: str | None = None,
    ):
        self.options = options
        self.source = source
        self.outputs = list(outputs)
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # (capture time of the newest sound, publication time) of the last frames heard
        self._latency: deque[tuple[float, float]] = deque(maxlen=300)
        self._tick_times: deque[float] = deque(maxlen=300)
        self.frames = 0
        self.dropped = 0
        #: The engine thread's torch threads (set when it starts).
        self.torch_threads: int | None = None
        self.error: BaseException | None = None
        self.mixer = Mixer(options.mix)
        self.beats = BeatDetector(options.fps)
        #: Called with the onset strength on each beat (engine thread); set by a Controller.
        self.on_beat: Callable[[float], None] | None = None
        self.crossfade = 0.0
        self.gain = 1.0
        #: The performer's hue turn, on top of each slot's own (its preset's palette).
        self.hue_turn = 0.0
        self.flags = {"blackout": False, "freeze": False, "lock": False}
        # The last step before any output: whatever made the picture (a model, a fade, a
        # beat cut, blackout toggles), it never flashes faster than the safe rate.
        self.guard = FlashGuard(options.fps, enabled=options.flash_guard)
        self._fade: tuple[float, float, float, float] | None = None  # x0, x1, t0, seconds
        self._cut_pending = False
        self._rotation: tuple[float, Callable[[], None]] | None = None
        self._rotated_at = time.monotonic()
        self._last_rgb: np.ndarray | None = None
        #: The newest published frame (a control window's preview reads it; any thread).
        self.last_frame: Frame | None = None
        self._tick_ms: deque[float] = deque(maxlen=300)
        #: Seconds of each stage of the last ~300 frames, for `synd bench`.
        self.stage_s: dict[str, deque[float]] = {
            stage: deque(maxlen=300) for stage in ("features", "generate", "guard", "publish")
        }
        self._loads = LoadQueue(self._build)
        rate = source.sample_rate
        self.sample_rate = rate
        self._samples = 0  # audio samples the frames have carried (the audio clock)
        self._silence = np.zeros(round(rate / options.fps), np.float32)
        self._silence.flags.writeable = False  # shared by every silent frame
        self.slots: dict[str, Slot | None] = {
            "a": self._slot(bundle, look, model_name or bundle.name),
            "b": None,
        }

    # -- model and look ------------------------------------------------------------------

    def _slot(self, bundle: ModelBundle, look: Look, name: str) -> Slot:
        """A ready-to-paint slot for `bundle` (any thread; the heavy part of a load)."""
        bundle.generator.eval()
        gw, gh = generation_size(*self.options.size, short=self.options.detail)
        paint = live_painter(bundle.generator, gh, gw, self.options.runtime)
        slot = make_slot(
            bundle,
            replace(look, hue=turned(look.hue, self.hue_turn)),
            name,
            self.source.sample_rate,
            self.options.fps,
            (gw, gh),
            self.options.seed,
            paint,
            runtime_name(paint),
            self.options.mix,
        )
        slot.own_hue = look.hue
        return slot

    @property
    def showing(self) -> str:
        """The slot mostly on screen: "a" or "b"."""
        return "b" if self.crossfade >= 0.5 and self.slots["b"] is not None else "a"

    @property
    def _front(self) -> Slot:
        slot = self.slots[self.showing]
        assert slot is not None  # "b" shows only when loaded; "a" is loaded from the start
        return slot

    @property
    def loop(self):
        """The frame loop of the slot on screen."""
        return self._front.loop

    @property
    def bundle(self) -> ModelBundle:
        return self._front.bundle

    @property
    def model_name(self) -> str:
        return self._front.name

    @property
    def runtime(self) -> str:
        return self._front.runtime

    @property
    def look(self) -> Look:
        return self.loop.look

    def command(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the engine thread before the next frame (thread-safe)."""
        self._commands.put(fn)

    def set_look(self, **changes) -> None:
        """Change look settings (intensity, feedback, flow, lines, sections, ...) of both
        slots, from any thread. `hue` is the performer's turn on top of each slot's own
        (a preset keeps its palette, turned by the same amount)."""
        replace(self.look, **changes)  # validates now, in the caller's thread
        turn = changes.pop("hue", None)

        def apply() -> None:
            if turn is not None:
                self.hue_turn = turn
            for slot in self.slots.values():
                if slot is not None:
                    hue = turned(slot.own_hue, self.hue_turn)
                    slot.loop.look = replace(slot.loop.look, hue=hue, **changes)

        self.command(apply)

    def _load(
        self,
        key: str,
        load: Callable[[], tuple[ModelBundle, Look]],
        name: str,
        then: Callable[[Slot], Slot | None],
        done: Callable[[BaseException | None], None] | None,
    ) -> None:
        """Build a slot from `load()` off the engine thread, then run `then(slot)` on it
        (which returns the slot it replaced, retired off the engine thread). Loads run one
        at a time; a newer request for the same `key` replaces one still waiting
        (`synd.loadqueue`). A failing load is logged in one line and nothing changes."""
        self._loads.submit(key, (load, name, then, done), done)

    def _build(self, request: tuple) -> None:
        """The load queue's work: one slot built, then handed to the engine thread."""
        load, name, then, done = request
        try:
            bundle, look = load()
            slot = self._slot(bundle, look, name)
        except Exception as exc:  # noqa: BLE001 - reported, the daemon goes on
            log.error("cannot load model %s: %s", name, exc)
            if done:
                done(exc)
            return

        def apply() -> None:
            replaced = then(slot)
            log.info("model: %s", name)
            if replaced is not None:
                _retire(replaced)
            if done:
                done(None)

        self.command(apply)

    def load_model(
        self,
        load: Callable[[], tuple[ModelBundle, Look]],
        name: str,
        done: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        """Load a model off the engine thread into the slot on screen, swapping it in
        between two frames; the engine keeps painting the old one meanwhile."""
        self.load_slot(None, load, name, done)

    def load_slot(
        self,
        which: str | None,
        load: Callable[[], tuple[ModelBundle, Look]],
        name: str,
        done: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        """Load a model into slot "a" or "b" (None: the one on screen when it is ready)
        without moving the crossfader."""

        def then(slot: Slot) -> Slot | None:
            which_now = which or self.showing
            replaced, self.slots[which_now] = self.slots[which_now], slot
            return replaced

        self._load(f"slot {which or 'on screen'}", load, name, then, done)

    def switch_to(
        self,
        load: Callable[[], tuple[ModelBundle, Look]],
        name: str,
        seconds: float,
        done: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        """Load a model into the slot not on screen, then fade to it over `seconds`
        (0: cut): a preset change without a hitch. Of preset changes asked for faster
        than models load, the newest waiting one wins."""

        def then(slot: Slot) -> Slot | None:
            hidden = "a" if self.showing == "b" else "b"
            replaced, self.slots[hidden] = self.slots[hidden], slot
            self._start_fade(1.0 if hidden == "b" else 0.0, seconds)
            return replaced

        self._load("switch", load, name, then, done)

    def set_source(self, source, done: Callable[[], None] | None = None) -> None:
        """Switch to another audio input (already started) between two frames, then call
        `done()` (on the engine thread); the old input is stopped off the engine thread.
        The new input must deliver the engine's sample rate."""
        if source.sample_rate != self.sample_rate:
            raise ValueError(
                f"the new input delivers {source.sample_rate} Hz, the engine runs at {self.sample_rate} Hz"
            )

        def apply() -> None:
            old, self.source = self.source, source
            log.info("input: %s", source.description)
            threading.Thread(target=old.stop, name="synd-input-stop", daemon=True).start()
            if done is not None:
                done()

        self.command(apply)

    def set_crossfade(self, x: float) -> None:
        """Put the crossfader at x (0 = slot A, 1 = slot B); stops a running fade."""

        def apply() -> None:
            self._fade = None
            self.crossfade = float(x)

        self.command(apply)

    def fade(self, x: float, seconds: float) -> None:
        """Move the crossfader to x over `seconds`."""
        self.command(lambda: self._start_fade(float(x), float(seconds)))

    def _start_fade(self, x: float, seconds: float) -> None:
        if seconds <= 0:
            self._fade, self.crossfade = None, x
        else:
            self._fade = (self.crossfade, x, time.monotonic(), seconds)

    def cut_on_beat(self) -> None:
        """Switch to the other slot at the next beat."""

        def apply() -> None:
            self._cut_pending = True

        self.command(apply)

    def set_gain(self, gain: float) -> None:
        """Input gain before the features (the sensitivity); the outputs' audio is untouched."""

        def apply() -> None:
            self.gain = float(gain)

        self.command(apply)

    def set_flag(self, name: str, on: bool) -> None:
        """blackout (black frames), freeze (hold the picture) or lock (no rotation)."""
        if name not in self.flags:
            raise KeyError(f"unknown flag {name!r}")

        def apply() -> None:
            self.flags[name] = bool(on)

        self.command(apply)

    def set_flash_guard(self, on: bool) -> None:
        """Turn the flash guard on or off (off: a warning, for the log of the show)."""

        def apply() -> None:
            if self.guard.enabled and not on:
                log.warning(
                    "flash guard off: the pictures may now flash more than 3 times a "
                    "second, a seizure risk for some viewers"
                )
            self.guard.enabled = bool(on)

        self.command(apply)

    def set_rotation(self, seconds: float, rotate: Callable[[], None]) -> None:
        """Call `rotate()` every `seconds` (0: never) unless locked."""

        def apply() -> None:
            self._rotation = (float(seconds), rotate) if seconds > 0 else None
            self._rotated_at = time.monotonic()

        self.command(apply)

    def mix_state(self) -> dict:
        """The crossfader position, the slots' model names and the mix mode."""
        a, b = self.slots["a"], self.slots["b"]
        return {
            "crossfade": round(self.crossfade, 4),
            "a": a.name if a else None,
            "b": b.name if b else None,
            "mix": self.mixer.mode,
        }

    # -- the frame clock -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="synd-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the frame clock, and let a model still loading finish (a thread left
        inside torch or ONNX Runtime at interpreter exit aborts the process)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._loads.cancel()
        self._loads.join(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        period = 1.0 / self.options.fps
        delay = round(self.options.delay_ms / 1000.0 * self.sample_rate)
        next_tick = time.monotonic()
        last_audio = time.monotonic()
        if self.runtime == "onnxruntime":
            # Torch's steps of a frame (the flow, the looks, the conversion) run after ONNX
            # Runtime's on this thread, on as many cores as it paints with: a torch worker
            # on the core left to capture and the outputs waits for it at every step's
            # join (on 2 cores: neon 51 fps with 94 frames dropped in 10 s, 60 and none on
            # one thread; `synd bench live --preset neon`). The count is this thread's own
            # (OpenMP's is per thread); a crossfade's second painter takes it over.
            torch.set_num_threads(painting_threads())
        self.torch_threads = torch.get_num_threads()
        try:
            with torch.inference_mode():
                while not self._stop.is_set():
                    now = time.monotonic()
                    if now < next_tick:
                        self._stop.wait(next_tick - now)
                        continue
                    if now - next_tick > period:  # more than a frame late: drop, resync
                        missed = int((now - next_tick) / period)
                        self.dropped += missed
                        next_tick += missed * period
                    next_tick += period
                    while not self._commands.empty():
                        self._commands.get_nowait()()
                    last_audio = self._tick(delay, last_audio)
        except BaseException as exc:  # noqa: BLE001 - the daemon reports it and stops
            self.error = exc
            log.error("engine stopped: %s", exc)

    def _tick(self, delay: int, last_audio: float) -> float:
        """Paint and publish one frame; returns when audio last arrived."""
        began = time.monotonic()
        rate = self.sample_rate
        samples, captured_at = self.source.ring.read_new(rate // 2, delay)
        now = time.monotonic()
        heard = len(samples) > 0
        if heard:
            last_audio = now
        elif now - last_audio > SILENCE_AFTER_S:
            # No audio (device lost, or a suspended sound server sends nothing): feed
            # silence so the picture calms down the way it does on a silent input,
            # instead of freezing on the last sound. The silence is the frame's audio
            # too, so a recording keeps the sound in step with the pictures.
            samples = self._silence
            captured_at = now
        self._samples += len(samples)
        heard_by_models = samples * self.gain if self.gain != 1.0 and len(samples) else samples
        t_features = time.monotonic()
        for name, slot in self.slots.items():
            if slot is None:
                continue
            rows = slot.hear(heard_by_models)  # the newest audio wins
            if name == self.showing:
                strength = self.beats.feed(slot, rows, now)
                if strength is not None:
                    self._on_beat(strength)
        self._advance(now)
        t_generate = time.monotonic()
        rgb = self._picture()
        t_guard = time.monotonic()
        rgb = self.guard(rgb)
        frame = Frame(
            seq=self.frames + self.dropped,  # the tick on the engine's clock: skipped ones leave a gap
            audio_time=self._samples / rate,
            captured_at=captured_at,
            rgb=rgb,
            audio=samples,
            sample_rate=rate,
        )
        t_publish = time.monotonic()
        for out in self.outputs:
            out.offer(frame)
        self.last_frame = frame
        published = time.monotonic()
        for stage, seconds in (
            ("features", t_generate - t_features),
            ("generate", t_guard - t_generate),
            ("guard", t_publish - t_guard),
            ("publish", published - t_publish),
        ):
            self.stage_s[stage].append(seconds)
        with self._lock:
            if heard:
                self._latency.append((captured_at, published))
            self._tick_times.append(published)
            self._tick_ms.append(1000.0 * (published - began))
            self.frames += 1
        return last_audio

    def _on_beat(self, strength: float) -> None:
        if self._cut_pending and self.slots["b"] is not None:
            self._cut_pending = False
            self._fade, self.crossfade = None, 0.0 if self.showing == "b" else 1.0
        if self.on_beat is not None:
            try:
                self.on_beat(strength)
            except Exception as exc:  # noqa: BLE001 - a listener must not stop the engine
                log.warning("beat listener failed: %s", exc)

    def _advance(self, now: float) -> None:
        """Move a running fade and fire the preset rotation when due."""
        if self._fade is not None:
            x0, x1, t0, seconds = self._fade
            t = min(1.0, (now - t0) / seconds)
            self.crossfade = x0 + (x1 - x0) * t
            if t >= 1.0:
                self._fade = None
        if self._rotation is not None and not self.flags["lock"] and self._fade is None:
            seconds, rotate = self._rotation
            if now - self._rotated_at >= seconds:
                self._rotated_at = now
                rotate()

    def _picture(self) -> np.ndarray:
        """This tick's picture as (h, w, 3) uint8, after freeze and blackout."""
        if self.flags["freeze"] and self._last_rgb is not None:
            rgb = self._last_rgb
        else:
            a, b = self.slots["a"], self.slots["b"]
            if a is None:  # only B loaded (A was never set): show B
                a, b, x = b, None, 0.0
            else:
                x = self.crossfade if b is not None else 0.0
            assert a is not None  # slots are only ever replaced by loaded ones: one is set
            rgb = to_rgb_uint8(self.mixer.paint(a, b, x))
            self._last_rgb = rgb
        if self.flags["blackout"]:
            return np.zeros_like(rgb)
        return rgb

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict:
        """A snapshot for logs and the control API (thread-safe)."""
        with self._lock:
            ticks = list(self._tick_times)
            latency = list(self._latency)
            tick_ms = list(self._tick_ms)
            frames, dropped = self.frames, self.dropped
        fps = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 and ticks[-1] > ticks[0] else 0.0
        source = self.source.status()
        return {
            "model": self.model_name,
            "runtime": self.runtime,
            "fps": round(fps, 1),
            "target_fps": self.options.fps,
            "frames": frames,
            "dropped_frames": dropped,
            "latency_ms_median": round(latency_ms(*zip(*latency))["median"], 1) if latency else None,
            # The longest frame of the last ~300: a hitch (a model switch, a stall) shows here.
            "frame_ms_max": round(max(tick_ms), 1) if tick_ms else None,
            **self.mix_state(),
            "input": self.source.description,
            "input_connected": source["connected"],
            "audio_overflows": source["overflows"] + source["overruns"],
            "outputs": {o.name: o.stats() for o in self.outputs},
            "flash_guard": self.guard.enabled,
            "guarded_frames": self.guard.changed,
            "torch_threads": self.torch_threads,
        }


def _retire(slot: Slot) -> None:
    """Let go of a replaced slot off the engine thread (freeing an ONNX Runtime session
    takes milliseconds), then hand the freed memory back to the system: glibc keeps freed
    blocks in its per-thread arenas, and a show that switches models every few seconds
    grew by 170 MiB over ten minutes without this (under 10 MiB with it)."""
    box = [slot]
    del slot

    def work() -> None:
        box.clear()
        _trim_heap()

    threading.Thread(target=work, name="synd-slot-retire", daemon=True).start()


def _trim_heap() -> None:
    """glibc's malloc_trim(0), where there is one (Linux with glibc; elsewhere nothing)."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


def turned(own: float, turn: float) -> float:
    """A preset's own hue turned by the performer's `turn` (hue is periodic: 0-1)."""
    return (own + turn) % 1.0


_MALLOC_TRIM: Callable[[int], int] | Literal[False] | None = None  # None: not looked for yet
