"""The live engine: live audio in, frames out to every output, on a fixed frame clock.

One thread ticks at `fps`. Each tick it applies pending commands (look changes, a model
swap), takes the audio captured since the last tick (the newest audio wins: after a
stall the backlog is skipped, not replayed), runs the streaming feature extractor, paints
one frame with the shared `FrameLoop` (exactly what `synd render` paints for the same
audio) and offers it to every output's mailbox. Outputs scale the frame to their own size
on their own threads, so a slow output never stalls the engine.

A tick that starts more than a frame late is dropped (counted) and the clock resyncs,
so the picture never lags further and further behind the sound.
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from synd.bridges.base import Frame
from synd.bundle import ModelBundle
from synd.features import StreamingExtractor
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.onnxgen import live_painter, runtime_name
from synd.presets import Look
from synd.render import GENERATION_SHORT_SIDE, generation_size

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


class Engine:
    """Runs the frame loop on live audio; see the module docstring.

    `source` is a capture input (`synd.capture.LiveInput`: `.ring.read_new`,
    `.sample_rate`, `.status()`); `outputs` are `OutputRunner`s (`offer(frame)`).
    """

    def __init__(self, bundle: ModelBundle, look: Look, source, outputs: list,
                 options: EngineOptions = EngineOptions(), model_name: str | None = None):
        self.options = options
        self.source = source
        self.outputs = list(outputs)
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latency: deque[float] = deque(maxlen=300)
        self._tick_times: deque[float] = deque(maxlen=300)
        self.frames = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self.model_name = model_name or bundle.name
        self._install(bundle, look, self._painter(bundle))

    # -- model and look ------------------------------------------------------------------

    def _install(self, bundle: ModelBundle, look: Look, paint) -> None:
        """Make `bundle` the painting model, painted by `paint` (from `live_painter`), on
        the engine thread or before it starts."""
        if self.source.sample_rate != bundle.features.sample_rate:
            raise ValueError(f"the input delivers {self.source.sample_rate} Hz, the model "
                             f"hears {bundle.features.sample_rate} Hz")
        self.bundle = bundle
        self.features = replace(bundle.features, fps=self.options.fps)
        self.extractor = StreamingExtractor(self.features)
        gw, gh = generation_size(*self.options.size, short=self.options.detail)
        self.loop = FrameLoop(bundle, gh, gw, look=look, seed=self.options.seed,
                              device=next(bundle.generator.parameters()).device, paint=paint)
        self.runtime = runtime_name(paint)
        self._last_row = np.array(bundle.stats.mean, dtype=np.float32)
        self._silence = np.zeros(round(self.features.sample_rate / self.options.fps), np.float32)
        self._silence.flags.writeable = False  # shared by every silent frame

    def _painter(self, bundle: ModelBundle):
        """What paints `bundle`'s frames at this engine's size (see `live_painter`)."""
        gw, gh = generation_size(*self.options.size, short=self.options.detail)
        return live_painter(bundle.generator, gh, gw, self.options.runtime)

    @property
    def look(self) -> Look:
        return self.loop.look

    def command(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the engine thread before the next frame (thread-safe)."""
        self._commands.put(fn)

    def set_look(self, **changes) -> None:
        """Change look settings (intensity, feedback, hue, smoothing) from any thread."""
        new = replace(self.look, **changes)  # validates now, in the caller's thread

        def apply() -> None:
            self.loop.look = new
        self.command(apply)

    def load_model(self, load: Callable[[], tuple[ModelBundle, Look]], name: str,
                   done: Callable[[BaseException | None], None] | None = None) -> threading.Thread:
        """Load a model off the engine thread, then swap it in between two frames.

        `load` returns (bundle, look) and may take seconds (file I/O); the engine keeps
        painting with the old model meanwhile. A failing load is logged in one line and
        the old model stays.
        """
        def work() -> None:
            try:
                bundle, look = load()
                bundle.generator.eval()
                paint = self._painter(bundle)
            except Exception as exc:  # noqa: BLE001 - reported, the daemon goes on
                log.error("cannot load model %s: %s", name, exc)
                if done:
                    done(exc)
                return

            def swap() -> None:
                try:
                    self._install(bundle, look, paint)
                except ValueError as exc:
                    log.error("cannot use model %s: %s", name, exc)
                    if done:
                        done(exc)
                    return
                self.model_name = name
                log.info("model: %s", name)
                if done:
                    done(None)
            self.command(swap)
        thread = threading.Thread(target=work, name="synd-model-loader", daemon=True)
        thread.start()
        return thread

    # -- the frame clock -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="synd-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        period = 1.0 / self.options.fps
        delay = round(self.options.delay_ms / 1000.0 * self.features.sample_rate)
        next_tick = time.monotonic()
        last_audio = time.monotonic()
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
        rate = self.features.sample_rate
        samples, captured_at = self.source.ring.read_new(rate // 2, delay)
        now = time.monotonic()
        heard = len(samples) > 0
        if heard:
            last_audio = now
            rows = self.extractor.push(samples)
        elif now - last_audio > SILENCE_AFTER_S:
            # No audio (device lost, or a suspended sound server sends nothing): feed
            # silence so the picture calms down the way it does on a silent input,
            # instead of freezing on the last sound. The silence is the frame's audio
            # too, so a recording keeps the sound in step with the pictures.
            samples = self._silence
            rows = self.extractor.push(samples)
            captured_at = now
        else:
            rows = np.zeros((0, self.features.dim), np.float32)
        if len(rows):
            self._last_row = rows[-1]  # the newest audio wins
        rgb = to_rgb_uint8(self.loop.step(self._last_row))
        frame = Frame(seq=self.frames, audio_time=self.extractor.samples_pushed / rate,
                      captured_at=captured_at, rgb=rgb, audio=samples, sample_rate=rate)
        for out in self.outputs:
            out.offer(frame)
        published = time.monotonic()
        with self._lock:
            if heard:
                self._latency.append(published - captured_at)
            self._tick_times.append(published)
            self.frames += 1
        return last_audio

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict:
        """A snapshot for logs and the control API (thread-safe)."""
        with self._lock:
            ticks = list(self._tick_times)
            latency = list(self._latency)
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
            "latency_ms_median": round(statistics.median(latency) * 1000, 1) if latency else None,
            "input": self.source.description,
            "input_connected": source["connected"],
            "audio_overflows": source["overflows"] + source["overruns"],
            "outputs": {o.name: o.stats() for o in self.outputs},
        }
