"""How quickly the control window follows a change made over OSC.

Runs a tiny engine with an OSC server in this process, opens the control window
(offscreen) once through the in-process link and once attached over OSC, sends 40
intensity changes from a plain UDP socket and prints the time until the slider shows
each one. Run from the repository: .venv/bin/python scripts/window_follow.py

It uses the synd package only (no test code): the tiny untrained model, the show
around it and the OSC message are made here.
"""

import copy
import os
import socket
import statistics
import tempfile
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np
import torch
from PyQt6.QtWidgets import QApplication
from pythonosc.osc_message_builder import OscMessageBuilder

from synd.bridges.base import Frame, Output, OutputRunner
from synd.bundle import ModelBundle
from synd.capture import FileInput
from synd.control import Controller
from synd.corpus import demo_clip
from synd.engine import Engine, EngineOptions
from synd.features import FeatureConfig, FeatureStats
from synd.link import LocalLink, OscLink
from synd.model import ModelConfig
from synd.osc import OscServer
from synd.presets import Look
from synd.window import ControlWindow


def tiny_bundle() -> ModelBundle:
    """An untrained, small model (8 bands, a 4-wide network) that paints quickly."""
    torch.manual_seed(0)
    features = FeatureConfig(bands=8)
    stats = FeatureStats(
        mean=np.full(features.dim, -5.0, np.float32), std=np.full(features.dim, 2.0, np.float32)
    )
    config = ModelConfig(feature_dim=features.dim, width=4, res_blocks=1, cond_dim=16, decoder_width=8)
    return ModelBundle.new(config, features, stats, meta={"name": "tiny"})


def osc(address: str, *args: float) -> bytes:
    """One OSC message to `address` (python-osc infers the types)."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class Discard(Output):
    """An output that takes every frame and keeps none."""

    name = "discard"

    def open(self) -> None:
        pass

    def send(self, frame: Frame) -> None:
        pass

    def close(self) -> None:
        pass


class Show:
    """A running engine (the tiny model under three preset names, a looping song, an
    output) with its Controller: what `synd run` has, for a LocalLink (`control`,
    `engine`, `status()`)."""

    def __init__(self, bundle: ModelBundle, song: str) -> None:
        self.source = FileInput(song, rate=24000, loop=True)
        self.runner = OutputRunner(Discard((64, 48), 30.0))
        self.engine = Engine(
            bundle, Look(), self.source, [self.runner], EngineOptions(size=(64, 48)), model_name="first"
        )
        self.control = Controller(
            self.engine,
            ["first", "second", "third"],
            lambda name: (copy.deepcopy(bundle), Look()),
            current="first",
        )

    def status(self) -> dict:
        return self.engine.status()

    def start(self) -> None:
        self.source.start()
        self.runner.start()
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()
        self.runner.stop(1.0)
        self.source.stop()


def main() -> None:
    app = QApplication([])
    song = str(demo_clip(os.path.join(tempfile.mkdtemp(), "song.wav"), duration=4.0, sample_rate=24000))
    show = Show(tiny_bundle(), song)
    show.start()
    server = OscServer(show.control, port=0)
    server.start()
    port = server.address[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for kind in ("local", "osc"):
        link = LocalLink(show) if kind == "local" else OscLink("127.0.0.1", port)
        window = ControlWindow(link)
        link.start()
        window.show()
        settle = time.monotonic()
        while time.monotonic() - settle < 2:  # the attached link's first snapshot
            app.processEvents()
            time.sleep(0.005)
        delays = []
        for i in range(40):
            value = 0.2 + (i % 2) * 0.5 + i * 0.01
            sent = time.monotonic()
            sock.sendto(osc("/synd/intensity", value), ("127.0.0.1", port))
            while window.intensity.value() != round(value * 100) and time.monotonic() - sent < 3:
                app.processEvents()
                time.sleep(0.0005)
            delays.append((time.monotonic() - sent) * 1000)
            time.sleep(0.05)
        print(
            f"{kind}: median {statistics.median(delays):.1f} ms, max {max(delays):.1f} ms "
            f"over {len(delays)} changes"
        )
        link.stop()
        window.close()
    server.stop()
    show.stop()


if __name__ == "__main__":
    main()
