"""A long run of `synd run` as a show uses it: a real PulseAudio microphone playing music,
steady OSC traffic from a control surface, preset changes and model loads with fades,
a recording read back at the end.

It runs for `SYND_SOAK_S` seconds of wall time (default 600: the hardening brief asks for
ten minutes; set it lower for a quick look). What it checks:

- memory: the daemon's resident memory grows by less than `RSS_GROWTH_BOUND_MIB` from the
  minute after the warm-up (every model loaded once, caches warm) to the last minute;
- frame time: the painter's median milliseconds in the last minute stay within
  `DRIFT_FACTOR` of the first minute's (plus `DRIFT_SLACK_MS` for a shared machine);
- accounting: every clock tick is a frame published or a drop the daemon reported, every
  published frame reached the recorder's mailbox, and the recording holds every frame
  the recorder says it wrote;
- the daemon answers OSC to the end, exits with 0, and logs no traceback.

The figures (memory, drops, frame times, OSC messages sent) are printed (`-s`) and, with
`SYND_SOAK_REPORT=FILE`, written as JSON.
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

from synd.osc import parse_status
from synd.video import read_video_info
from tests.helpers.audio import beats
from tests.helpers.osc import free_udp_port, osc
from tests.helpers.pulse import requires_pulse

SOAK_S = float(os.environ.get("SYND_SOAK_S", "600"))
#: Every preset and model has been loaded once by then (presets change every 30 s,
#: models every 45 s), so ONNX Runtime's sessions and caches have all been made.
WARMUP_S = min(180.0, SOAK_S / 3)
FPS = 30
#: From the minute after the warm-up to the last minute (medians, so that a sample taken
#: while two models are loaded for a fade does not count): a leak of one 320x180 RGB
#: frame (170 kB) a second would add about 60 MiB over the 6 minutes between them.
RSS_GROWTH_BOUND_MIB = 32.0
DRIFT_FACTOR, DRIFT_SLACK_MS = 1.5, 3.0
#: Ticks the clock may not account for: the first and the last, half-finished.
TICK_SLACK = 3
RATE = 48000


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for process {pid}")


class Surface:
    """A control surface: OSC commands to the daemon, status queries answered."""

    def __init__(self, port: int):
        self.to = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.sent = 0

    def send(self, address: str, *args) -> None:
        self.sock.sendto(osc(address, *args), self.to)
        self.sent += 1

    def ask(self, address: str, tries: int = 1) -> list:
        """A query's reply (arguments); replies to earlier commands are skipped. The
        query is sent up to `tries` times, each given 2 s (the first queries come while
        the daemon still loads its presets' models on a busy machine)."""
        for _ in range(tries):
            self.send(address)
            deadline = time.monotonic() + 2.0
            try:
                while time.monotonic() < deadline:
                    msg = OscMessage(self.sock.recvfrom(65536)[0])
                    if msg.address == address:
                        return list(msg.params)
            except TimeoutError:
                continue
        raise AssertionError(f"no reply to {address} after {tries} tries")

    def close(self) -> None:
        self.sock.close()


def status_lines(log: str) -> list[dict]:
    """The daemon's periodic status lines: time into the run (s), fps, frames, dropped,
    painting ms."""
    pattern = re.compile(
        r"status: ([\d.]+) fps .*?, (\d+) frames, (\d+) dropped, latency "
        r"(?:([\d.]+) ms|n/a), painting (?:([\d.]+) ms|n/a)"
    )
    rows = []
    for line in log.splitlines():
        m = pattern.search(line)
        if m:
            rows.append(
                {
                    "fps": float(m[1]),
                    "frames": int(m[2]),
                    "dropped": int(m[3]),
                    "latency_ms": float(m[4]) if m[4] else None,
                    "paint_ms": float(m[5]) if m[5] else None,
                }
            )
    return rows


def show(
    surface: Surface, presets: list[str], models: list[str], seconds: float, pid: int, samples: list[dict]
) -> None:
    """Steady traffic for `seconds`: 10 fader moves a second, a status query a second,
    a preset change every 30 s, a model into slot B and a fade every 45 s; the daemon's
    memory and status once a second into `samples`."""
    began = time.monotonic()
    tick = 0
    while (now := time.monotonic() - began) < seconds:
        tick += 1
        t = tick / 10.0
        surface.send("/synd/intensity", float(1.0 + 0.5 * np.sin(t)))
        if tick % 10 == 0:
            surface.send("/synd/hue", float((t / 60.0) % 1.0))
            status = parse_status(surface.ask("/synd/status"))
            samples.append({"t": round(now, 1), "rss_mib": round(rss_mib(pid), 1), **status})
        if tick % 300 == 0:
            surface.send("/synd/preset", presets[(tick // 300) % len(presets)])
        if tick % 450 == 0:
            surface.send("/synd/model/b", models[(tick // 450) % len(models)])
            surface.send("/synd/fade", 1.0, 2.0)
        if tick % 450 == 225:
            surface.send("/synd/fade", 0.0, 2.0)
        time.sleep(max(0.0, tick / 10.0 - (time.monotonic() - began)))


@requires_pulse
@pytest.mark.skipif(SOAK_S <= 0, reason="SYND_SOAK_S=0")
@pytest.mark.timeout(SOAK_S + 300)
def test_a_long_show_keeps_memory_frame_time_and_every_frame_accounted(pulse, tmp_path):
    fifo = pulse.add_pipe_mic("soakmic")
    music = np.tile(beats(8.0, on=0.75, off=0.25), 4)
    video = tmp_path / "soak.mkv"
    log_path = tmp_path / "synd.log"
    port = free_udp_port()
    samples: list[dict] = []
    with pulse.feed(fifo, music, loop=True), open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "synd",
                "run",
                "--input",
                "soakmic",
                "--fps",
                str(FPS),
                "--output",
                f"record@320x180:{video}",
                "--osc",
                f"127.0.0.1:{port}",
                "--midi",
                "off",
                "-o",
                "status_every=10",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        surface = Surface(port)
        try:
            deadline = time.monotonic() + 60
            # The OSC server binds after the engine starts: a query sent before its
            # "listening" line would go to a closed port and be lost.
            while "OSC: listening on" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the daemon did not start"
                time.sleep(0.2)
            presets = [str(p) for p in surface.ask("/synd/presets", tries=5)]
            models = [str(m) for m in surface.ask("/synd/models", tries=5)]
            assert presets and models
            began = time.monotonic()
            show(surface, presets, models, SOAK_S, proc.pid, samples)
            elapsed = time.monotonic() - began
            assert proc.poll() is None, "the daemon died during the show"
            final = parse_status(surface.ask("/synd/status"))
        finally:
            surface.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
    log = log_path.read_text()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]

    # Memory: from the end of the warm-up to the end of the show.
    settled = [s["rss_mib"] for s in samples if s["t"] >= WARMUP_S]
    span = min(60, len(settled) // 2)
    growth = statistics.median(settled[-span:]) - statistics.median(settled[:span])
    # Frame time: the painter's median in the first and the last minute of status lines.
    rows = status_lines(log)
    per_minute = max(1, int(60 / 10))
    first = [r["paint_ms"] for r in rows[1 : 1 + per_minute] if r["paint_ms"]]
    last = [r["paint_ms"] for r in rows[-per_minute:] if r["paint_ms"]]
    # Accounting, from the daemon's own last lines and the recording read back.
    stopped = re.search(r"stopped after (\d+) frames, (\d+) dropped", log)
    rec = re.search(
        r"output record: (\d+) frames offered, (\d+) sent, (\d+) dropped \(busy\), "
        r"(\d+) skipped",
        log,
    )
    assert stopped and rec, log[-2000:]
    frames, dropped = int(stopped[1]), int(stopped[2])
    offered, sent, busy, skipped = (int(rec[i]) for i in range(1, 5))
    info = read_video_info(video)
    figures = {
        "seconds": round(elapsed, 1),
        "osc_messages": surface.sent,
        "rss_mib_first": samples[0]["rss_mib"],
        "rss_mib_after_warmup": settled[0],
        "rss_mib_end": settled[-1],
        "rss_mib_max": max(s["rss_mib"] for s in samples),
        "rss_growth_mib": round(growth, 1),
        "frames": frames,
        "dropped": dropped,
        "recorder": {"offered": offered, "sent": sent, "busy": busy, "skipped": skipped},
        "recorded_frames": info["n_frames"],
        "paint_ms_first_minute": round(statistics.median(first), 2),
        "paint_ms_last_minute": round(statistics.median(last), 2),
        "fps_reported": [r["fps"] for r in rows],
        "rss_mib_every_10s": [s["rss_mib"] for s in samples[::10]],
        "final_status": final,
    }
    print(json.dumps(figures, indent=1))
    if os.environ.get("SYND_SOAK_REPORT"):
        Path(os.environ["SYND_SOAK_REPORT"]).write_text(json.dumps(figures, indent=1))

    assert len(settled) >= 4
    assert growth < RSS_GROWTH_BOUND_MIB, figures
    assert statistics.median(last) <= DRIFT_FACTOR * statistics.median(first) + DRIFT_SLACK_MS, figures
    # Every tick of the clock is a frame or a reported drop: between the first and the
    # last status line (10 s apart each), frames + dropped grew by 30 a second.
    ticks = (rows[-1]["frames"] + rows[-1]["dropped"]) - (rows[0]["frames"] + rows[0]["dropped"])
    assert ticks / (10.0 * (len(rows) - 1)) == pytest.approx(FPS, rel=0.02), figures
    assert final["dropped"] <= dropped
    # Every frame published reached the recorder, and everything it took is in the file.
    assert abs(offered - frames) <= TICK_SLACK, figures
    assert offered == sent + busy + skipped or offered == sent + busy + skipped + 1, figures
    assert abs(info["n_frames"] - sent) <= TICK_SLACK, figures
