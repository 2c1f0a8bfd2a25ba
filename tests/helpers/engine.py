"""The live engine in a test's process: `Collect` (an output that keeps every frame it is
sent), and `run_engine` / `stop_all` (an engine on a song file with its outputs)."""

from __future__ import annotations

import time

from synd.bridges.base import Frame, Output, OutputRunner
from synd.capture import FileInput
from synd.engine import Engine, EngineOptions
from synd.presets import Look


class Collect(Output):
    """Keeps every frame it is sent in `frames`; with `fail_after`, raises OSError once it
    holds that many. `closed` counts the calls to close()."""

    name = "collect"

    def __init__(self, size=(64, 48), fps=30.0, fail_after=None, **kw):
        super().__init__(size, fps, **kw)
        self.frames: list[Frame] = []
        self.fail_after = fail_after
        self.closed = 0

    def open(self):
        pass

    def send(self, frame):
        if self.fail_after is not None and len(self.frames) >= self.fail_after:
            raise OSError("the cable is out")
        self.frames.append(frame)

    def close(self):
        self.closed += 1


def run_engine(bundle, song, outputs, seconds, look=None, **options):
    """Start an engine (96x64, `look` or the default Look) on `song` (a file input at
    24 kHz) feeding `outputs`, and let it run for `seconds`; returns (engine, runners,
    source) for `stop_all`. `options` go to EngineOptions."""
    source = FileInput(song, rate=24000)
    runners = [OutputRunner(o) for o in outputs]
    engine = Engine(
        bundle, Look() if look is None else look, source, runners, EngineOptions(size=(96, 64), **options)
    )
    source.start()
    for r in runners:
        r.start()
    engine.start()
    time.sleep(seconds)
    return engine, runners, source


def stop_all(engine, runners, source):
    """Stop what `run_engine` started."""
    engine.stop()
    for r in runners:
        r.stop(2.0)
    source.stop()
