"""`synd run`: start the input, the engine and the outputs; stop them all cleanly.

The daemon stays in the foreground (for systemd and launchd). SIGINT and SIGTERM (and q
in the preview window) stop it: the engine stops painting, every output is closed
exactly once (a recording is finalised and renamed into place), and the audio stream is
aborted under a timeout, all within about two seconds. A status line is logged every
`status_every` seconds; `Daemon.status()` is the same data for the control API.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from pathlib import Path

from synd.config import Config, RunConfig, parse_size

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 2.0


def demo_song() -> Path:
    """The demo clip, synthesized once into the cache folder (no download, no shipped audio)."""
    from synd.corpus import demo_clip
    from synd.paths import cache_dir

    path = cache_dir() / "demo-song.flac"
    if not path.is_file():
        demo_clip(path)
    return path


def open_source(config: Config, rate: int):
    """The audio input the config asks for. With no input configured and no audio device
    at all, the demo clip plays in a loop, and the log says so clearly."""
    from synd.capture import CaptureError, open_input

    run = config.run
    try:
        return open_input(run.input or None, rate=rate, play=run.play, loop=run.loop)
    except CaptureError as exc:
        if run.input:
            raise
        song = demo_song()
        log.warning("%s", exc)
        log.warning(
            "no audio device: playing the demo clip %s in a loop instead (choose an input with --input)", song
        )
        return open_input(str(song), rate=rate, play=False, loop=True)


#: Outputs that publish under a source name (`--ndi-name`, the [run] ndi_name key).
NAMED_OUTPUTS = ("ndi", "syphon", "spout")


#: What a recording of the default outputs costs on disk: about this many MB a minute at
#: 1280x720 and 30 fps (H.264 "ultrafast", crf 20, and the audio; `make run` headless
#: with the demo song measured 43). The recorder has no size limit: the log says this.
RECORD_MB_PER_MINUTE = 45.0


def record_mb_per_minute(size: tuple[int, int], fps: float) -> float:
    """Roughly how many MB a minute a recording of `size` at `fps` takes (scaled by pixel rate)."""
    return RECORD_MB_PER_MINUTE * size[0] * size[1] * fps / (1280 * 720 * 30)


def auto_outputs(preview: bool = True, run: RunConfig | None = None) -> str:
    """The default outputs: the preview window where a display exists (unless `preview`
    is False: the tray's control window shows the picture), plus NDI (and Syphon or
    Spout on their platforms) where installed, so VJ software sees synd at once. With no
    display, also a recording in the data folder, so that the visuals go somewhere a
    user can see without an NDI receiver; the log says in one line where the file goes
    and how to watch the NDI source (`run`: the [run] settings, for the source name,
    the size and the rate)."""
    from synd.bridges.base import output_class
    from synd.paths import data_dir

    run = run or RunConfig()
    chosen, reasons = [], []
    for name in ("preview", *NAMED_OUTPUTS) if preview else NAMED_OUTPUTS:
        try:
            reason = output_class(name).available()
        except Exception as exc:  # noqa: BLE001 - a broken optional module must not stop the daemon
            reason = f"cannot load: {exc}"
        if reason is None:
            chosen.append(name)
        elif name in ("preview", "ndi"):
            reasons.append(f"{name}: {reason}")
    headless = preview and "preview" not in chosen and _no_display()
    if chosen and not headless:
        return ",".join(chosen)
    if not preview:
        reasons.insert(0, "preview: the control window shows the picture")
    path = data_dir() / "recordings" / time.strftime("synd-%Y%m%d-%H%M%S.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    mb = record_mb_per_minute(parse_size(run.size), run.fps)
    record = (
        f"recording to {path} (about {mb:.0f} MB a minute, {mb * 60 / 1000:.1f} GB an hour, "
        "no size limit; Ctrl-C finishes the file)"
    )
    if "ndi" in chosen:
        log.warning(
            "no display: %s; and publishing the NDI source '%s' on this network (listed as "
            "'%s (%s)'): open it in OBS (NDI plugin), Resolume or NDI Studio Monitor",
            record,
            run.ndi_name,
            socket.gethostname().split(".")[0].upper(),
            run.ndi_name,
        )
    elif chosen:
        log.warning("no display: %s; and publishing to %s", record, ", ".join(chosen))
    else:
        log.warning("no preview or NDI (%s): %s instead", "; ".join(reasons), record)
    return ",".join([*chosen, f"record:{path}"])


def _no_display() -> bool:
    """Whether there is no display for a window here (no DISPLAY or WAYLAND_DISPLAY that
    works, on Linux and the BSDs)."""
    try:
        from synd.bridges.preview import display_problem

        return display_problem() is not None
    except Exception:  # noqa: BLE001 - without the preview module, nothing shows a window
        return True


def engine_fps(run_fps: float, parsed: list[tuple[str, dict]]) -> float:
    """The engine's frame rate: the configured fps, or the fastest output's own fps
    (`NAME@FPS`; an output cannot get more frames than the engine paints)."""
    return max([run_fps, *(options.get("fps") or run_fps for _, options in parsed)])


def input_choices() -> list[str]:
    """The audio inputs a control surface may switch to: system audio, the microphone,
    then every capture device by name (never a file)."""
    from synd.capture import list_inputs

    names = ["system", "mic"]
    for entry in list_inputs():
        if entry["name"] not in names:
            names.append(entry["name"])
    return names


def open_device(name: str, rate: int):
    """The capture input for one of `input_choices()` (not started)."""
    from synd.capture import DeviceInput

    if name in ("system", "mic"):
        return DeviceInput(name, rate=rate)
    return DeviceInput("device", name, rate=rate)


class Daemon:
    """The running pieces of `synd run` and their lifecycle."""

    def __init__(
        self, config: Config, preset: str | None = None, model: str | None = None, device: str | None = None
    ):
        from synd.bridges.base import OutputRunner, create_output, parse_outputs
        from synd.catalog import choices, look_for, preset_names, resolve_look
        from synd.control import Controller
        from synd.device import pick_device
        from synd.engine import Engine, EngineOptions
        from synd.frontends import build_frontends

        run = config.run
        self.config = config
        # OSC, MIDI, the tray: checked now (a bad address fails before anything loads),
        # started in run() once the engine paints.
        self.frontends = build_frontends(config, self)
        self.stopping = threading.Event()
        self._cpu = CpuMeter()
        size = parse_size(run.size)
        # A bad --output fails before anything loads; "auto" is resolved once the input
        # is known to work, so a bad --input leaves no recording folder behind.
        parsed = None if run.output == "auto" else parse_outputs(run.output)
        bundle, look = resolve_look(preset or config.preset, model)
        where = pick_device(device or config.device)
        bundle = bundle.to(where)
        bundle.generator.eval()
        source = open_source(config, bundle.features.sample_rate)
        self._first_source = source
        if parsed is None:
            parsed = parse_outputs(auto_outputs(preview=not config.tray.show, run=run))
        # --size is the size of every output that does not name its own (NAME@WxH), and
        # --ndi-name the name of every NDI/Syphon/Spout source that does not (ndi:NAME).
        fps = engine_fps(run.fps, parsed)
        if fps > run.fps:
            log.info("painting at %g fps, the rate of the fastest output", fps)
        self.outputs = []
        for name, options in parsed:
            defaults = {"size": size, "fps": run.fps}
            if name in NAMED_OUTPUTS:
                defaults["source_name"] = run.ndi_name
            self.outputs.append(OutputRunner(create_output(name, defaults | options, fps)))
        self.engine = Engine(
            bundle,
            look,
            source,
            self.outputs,
            EngineOptions(
                fps=fps,
                size=size,
                detail=run.detail,
                delay_ms=run.delay_ms,
                runtime=run.runtime,
                mix=run.mix,
                flash_guard=run.flash_guard,
            ),
            model_name=model or preset or config.preset,
        )

        def load(name: str):
            found, found_look = look_for(name)
            return found.to(where), found_look

        self.control = Controller(
            self.engine,
            preset_names(),
            load,
            current=model or preset or config.preset,
            models=choices,
            inputs=input_choices,
            open_input=lambda name: open_device(name, self.engine.sample_rate),
        )
        for runner in self.outputs:  # q or closing the preview window stops the daemon
            if hasattr(runner.output, "on_quit"):
                runner.output.on_quit = self.stop

    def _prepare_presets(self) -> None:
        """Export every preset's model for ONNX Runtime into the cache, below the engine's
        priority, so that preset switches later only read files (the first run after an
        install prepares them; later runs find them all cached)."""
        from synd.catalog import look_for
        from synd.onnxgen import cached_export, export_cache_path, onnx_missing
        from synd.priority import yield_to_engine

        if self.engine.runtime != "onnxruntime" or onnx_missing():
            return
        yield_to_engine()
        h, w = self.engine.loop.height, self.engine.loop.width
        todo = []
        for name in self.control.presets:
            try:
                bundle, _ = look_for(name)
            except Exception as exc:  # noqa: BLE001 - a broken preset is reported when chosen
                log.debug("cannot prepare preset %s: %s", name, exc)
                continue
            if not export_cache_path(bundle.generator, h, w).is_file():
                todo.append((name, bundle))
        if todo:
            log.info("preparing %d presets for switching without a hitch", len(todo))
        for _, bundle in todo:
            if self.stopping.is_set():
                return
            cached_export(bundle.generator, h, w)

    @property
    def source(self):
        """The audio input in use (the tray and OSC can switch it)."""
        engine = getattr(self, "engine", None)
        return engine.source if engine is not None else self._first_source

    def status(self) -> dict:
        """Live numbers: fps, dropped frames, latency, overflows, CPU load, outputs."""
        return self.engine.status() | {
            "cpu_percent": self._cpu.percent(),
            "frontends": {f.name: f.status() for f in self.frontends},
        }

    def stop(self) -> None:
        """Ask everything to stop (any thread, a signal handler included)."""
        self.stopping.set()
        for runner in self.outputs:
            if runner.output.needs_main_thread:
                runner.stop(0)  # wakes the main thread out of the window's loop

    def run(self) -> int:
        """Start, block until stopped, shut down; returns the exit code."""
        log.info("input: %s", self.source.description)
        log.info(
            "model: %s, painted at %dx%d with %s",
            self.engine.model_name,
            self.engine.loop.width,
            self.engine.loop.height,
            self.engine.runtime,
        )
        log.info(
            "outputs: %s",
            ", ".join(
                f"{r.name} {r.output.size[0]}x{r.output.size[1]} at {r.output.fps:g} fps"
                for r in self.outputs
            )
            or "none",
        )
        log.info(
            "frame rate: %g fps%s",
            self.engine.options.fps,
            f", visuals delayed {self.engine.options.delay_ms:g} ms" if self.engine.options.delay_ms else "",
        )
        if not self.engine.guard.enabled:
            log.warning(
                "flash guard off: the pictures may flash more than 3 times a second, "
                "a seizure risk for some viewers"
            )
        self.source.start()
        main_thread_output = None
        for runner in self.outputs:
            if runner.output.needs_main_thread and main_thread_output is None:
                main_thread_output = runner
            else:
                runner.start()
        self.engine.start()
        for frontend in self.frontends:
            frontend.start()
        threading.Thread(target=self._prepare_presets, name="synd-prepare", daemon=True).start()
        status_thread = threading.Thread(target=self._log_status, name="synd-status", daemon=True)
        status_thread.start()
        try:
            if main_thread_output is not None:
                main_thread_output.run_here()  # Qt's loop; returns on stop() or q
            if any(f.needs_qt for f in self.frontends):
                self._run_qt()
            while not self.stopping.wait(0.2) and not self._finished():
                pass
        finally:
            self.shutdown()
        return 1 if self.engine.error is not None else 0

    def _finished(self) -> bool:
        """Whether the show ended by itself: the engine failed, or a file input ended."""
        if self.engine.error is not None or not self.engine.running:
            return True
        if getattr(self.source, "finished", False):
            log.info("input finished")
            return True
        return False

    def _run_qt(self) -> None:
        """Run Qt's event loop on the main thread until the daemon stops."""
        from PyQt6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        timer = QTimer()

        def check() -> None:  # also gives Python the chance to run signal handlers
            if self.stopping.is_set() or self._finished():
                loop.quit()

        timer.timeout.connect(check)
        timer.start(100)
        if not self.stopping.is_set():
            loop.exec()
        timer.stop()

    def shutdown(self) -> None:
        """Stop the engine, close every output once, stop the audio: about 2 s at most."""
        self.stopping.set()
        began = time.monotonic()
        for frontend in reversed(self.frontends):
            frontend.stop()
        self.engine.stop(STOP_TIMEOUT_S / 2)
        for runner in self.outputs:
            runner.stop(max(0.1, STOP_TIMEOUT_S - (time.monotonic() - began)))
        self.source.stop(timeout=max(0.1, STOP_TIMEOUT_S - (time.monotonic() - began)))
        log.info(
            "stopped after %d frames, %d dropped (%.2f s to shut down)",
            self.engine.frames,
            self.engine.dropped,
            time.monotonic() - began,
        )
        for runner in self.outputs:  # where every frame went, for a long run's accounting
            s = runner.stats()
            log.info(
                "output %s: %d frames offered, %d sent, %d dropped (busy), %d skipped (beyond its fps)%s",
                s["name"],
                s["offered"],
                s["sent"],
                s["dropped"],
                s["skipped"],
                f"; failed: {s['failed']}" if s["failed"] else "",
            )

    def _log_status(self) -> None:
        every = self.config.run.status_every
        if every <= 0:
            return
        meter = CpuMeter(every=0.0)  # the log's own: the load since its previous line
        while not self.stopping.wait(every):
            s = self.status() | {"cpu_percent": meter.percent()}
            latency, paint = s["latency_ms_median"], self._paint_ms()
            log.info(
                "status: %.1f fps (target %g), %d frames, %d dropped, latency %s, "
                "painting %s, audio overflows %d, input %s, CPU %.0f%%, flash guard %s",
                s["fps"],
                s["target_fps"],
                s["frames"],
                s["dropped_frames"],
                f"{latency:.1f} ms" if latency is not None else "n/a",
                f"{paint:.1f} ms" if paint is not None else "n/a",
                s["audio_overflows"],
                "connected" if s["input_connected"] else "LOST",
                s["cpu_percent"],
                f"{s['guarded_frames']} frames limited" if s["flash_guard"] else "OFF",
            )

    def _paint_ms(self) -> float | None:
        """Median milliseconds the generator took over the last ~300 frames (a long run's
        log shows whether frame time drifts)."""
        from synd.measure import stage_ms

        seconds = list(self.engine.stage_s.get("generate", ()))
        return stage_ms({"generate": seconds})["generate"] if seconds else None


class CpuMeter:
    """CPU load of this process in % of one core, measured over at least `every` seconds
    (so that a window asking four times a second does not make the reading jumpy)."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self._mark = (time.monotonic(), time.process_time())
        self._last = 0.0
        self._lock = threading.Lock()

    def percent(self) -> float:
        with self._lock:
            now = (time.monotonic(), time.process_time())
            wall, cpu = now[0] - self._mark[0], now[1] - self._mark[1]
            if wall >= self.every:
                self._last = 100.0 * cpu / wall
                self._mark = now
            return self._last


def run_daemon(
    config: Config, preset: str | None = None, model: str | None = None, device: str | None = None
) -> int:
    """`synd run`: build the daemon from `config` and run it until SIGINT/SIGTERM (which,
    until the daemon is built, are the caller's business: see `synd.cli.cmd_run`)."""
    daemon = Daemon(config, preset=preset, model=model, device=device)

    def on_signal(signum, frame):
        log.info("%s: stopping", signal.Signals(signum).name)
        daemon.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return daemon.run()
