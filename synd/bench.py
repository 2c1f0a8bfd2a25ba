"""`synd bench`: how fast this machine runs synd, as numbers and ratios to real time.

Speed targets live here, never in timed unit tests. The render benchmark times, on a
synthesized song of `seconds` seconds at each output size:

* generate: the shared frame loop alone (features -> 8-bit frames at generation size);
* encode: the video writer alone, fed those frames (upscale, colour conversion, x264);
* pipeline: `render_song` end to end (audio decode, features, generation overlapped with
  encoding, audio mux), the number that matters; ``x_real_time`` = audio seconds per
  second of wall time.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from synd.bundle import ModelBundle
from synd.presets import Look
from synd.render import (GENERATION_SHORT_SIDE, RenderOptions, generation_size, render_frames,
                         render_song, song_features)
from synd.video import VideoWriter

#: Real-time goals of the render benchmark with the default preset (x real time).
RENDER_GOALS = {(1280, 720): 1.5, (1920, 1080): 1.0}


def bench_render(bundle: ModelBundle, look: Look, sizes: list[tuple[int, int]], seconds: float = 20.0,
                 fps: float = 30.0, speed: str = "superfast", detail: int = GENERATION_SHORT_SIDE
                 ) -> list[dict]:
    """Time generation, encoding and the whole render at each size; one dict per size."""
    from synd.corpus import demo_clip

    rows = []
    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        song = demo_clip(Path(tmp) / "song.wav", duration=seconds)
        features = song_features(song, bundle, fps)
        for size in sizes:
            began = time.perf_counter()
            frames = list(render_frames(bundle, look, features, size, detail=detail))
            generate = len(frames) / (time.perf_counter() - began)

            began = time.perf_counter()
            with VideoWriter(Path(tmp) / "encode.mp4", *size, fps, preset=speed) as writer:
                for frame in frames:
                    writer.write(frame)
            encode = len(frames) / (time.perf_counter() - began)
            del frames

            options = RenderOptions(size=size, fps=fps, speed=speed, detail=detail, progress=False)
            result = render_song(song, Path(tmp) / "render.mp4", bundle, look, options)
            rows.append({
                "size": f"{size[0]}x{size[1]}",
                "painted_at": "x".join(map(str, generation_size(*size, short=detail))),
                "generate_fps": round(generate, 1),
                "encode_fps": round(encode, 1),
                "pipeline_fps": round(result.frames / result.seconds_taken, 1),
                "x_real_time": round(result.speed, 2),
                "goal_x_real_time": RENDER_GOALS.get(tuple(size)),
            })
    return rows


def machine() -> str:
    """One line describing where the numbers were measured."""
    import platform

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads")


def format_render(rows: list[dict], fps: float) -> str:
    """The render benchmark as a text table."""
    head = f"{'size':>10} {'painted':>8} {'generate':>9} {'encode':>8} {'pipeline':>9} {'x real time':>12}  goal"
    lines = [head]
    for r in rows:
        goal = r["goal_x_real_time"]
        verdict = "" if goal is None else f">= {goal}x {'ok' if r['x_real_time'] >= goal else 'MISSED'}"
        lines.append(f"{r['size']:>10} {r['painted_at']:>8} {r['generate_fps']:>7.1f}/s "
                     f"{r['encode_fps']:>6.1f}/s {r['pipeline_fps']:>7.1f}/s "
                     f"{r['x_real_time']:>11.2f}x  {verdict}")
    lines.append(f"(frames per second; real time is {fps:g} frames/s)")
    return "\n".join(lines)


#: The live engine's goal with the default preset (frames/s painted and scaled to 720p).
LIVE_GOAL_FPS = 60.0
LIVE_GOAL_LATENCY_MS = 25.0


def bench_live(bundle: ModelBundle, look: Look, seconds: float = 10.0, fps: float = LIVE_GOAL_FPS,
               size: tuple[int, int] = (1280, 720), detail: int = 256) -> dict:
    """Run the real live engine for `seconds` on the demo song played in real time, with
    one output that scales every frame to `size` BGRA (what NDI sends); report fps,
    dropped frames and the audio-to-frame latency."""
    from synd.bridges.base import Frame, Output, OutputRunner
    from synd.capture import FileInput
    from synd.corpus import demo_clip
    from synd.engine import Engine, EngineOptions
    from synd.video import FrameScaler

    class ScaleOnly(Output):
        name = "bench"

        def open(self) -> None:
            self.scaler = FrameScaler(*self.size, "bgra")

        def send(self, frame: Frame) -> None:
            self.scaler.array(frame.rgb)

        def close(self) -> None:
            pass

    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        song = demo_clip(Path(tmp) / "song.wav", duration=max(seconds, 5.0))
        source = FileInput(song, rate=bundle.features.sample_rate, loop=True)
        runner = OutputRunner(ScaleOnly(size, fps))
        engine = Engine(bundle, look, source, [runner],
                        EngineOptions(fps=fps, size=size, detail=detail))
        source.start()
        runner.start()
        engine.start()
        began = time.process_time(), time.monotonic()
        time.sleep(1.0)  # warm-up: first frames, caches
        frames0, dropped0 = engine.frames, engine.dropped
        sent0, out_dropped0 = runner.sent, runner.dropped
        time.sleep(seconds)
        status = engine.status()
        frames, dropped = engine.frames - frames0, engine.dropped - dropped0
        sent, out_dropped = runner.sent - sent0, runner.dropped - out_dropped0
        cpu = 100.0 * (time.process_time() - began[0]) / (time.monotonic() - began[1])
        engine.stop()
        runner.stop(2.0)
        source.stop()
    gw, gh = generation_size(*size, short=detail)
    return {
        "painted_at": f"{gw}x{gh}", "size": f"{size[0]}x{size[1]}", "target_fps": fps,
        "engine_fps": round(frames / seconds, 1), "engine_dropped": dropped,
        "output_fps": round(sent / seconds, 1), "output_dropped": out_dropped,
        "latency_ms_median": status["latency_ms_median"], "cpu_percent": round(cpu),
    }


def format_live(row: dict) -> str:
    """The live benchmark as text, with the goals."""
    ok_fps = row["engine_fps"] >= 0.98 * LIVE_GOAL_FPS and row["engine_dropped"] == 0
    latency = row["latency_ms_median"]
    ok_latency = latency is not None and latency <= LIVE_GOAL_LATENCY_MS
    return (f"live: painted at {row['painted_at']}, scaled to {row['size']} BGRA: "
            f"{row['engine_fps']} fps (target {row['target_fps']:g}), {row['engine_dropped']} "
            f"dropped by the engine, {row['output_dropped']} by the output; "
            f"latency {latency} ms median; CPU {row['cpu_percent']}% of one core\n"
            f"goals: >= {LIVE_GOAL_FPS:g} fps with no drops {'ok' if ok_fps else 'MISSED'}, "
            f"latency <= {LIVE_GOAL_LATENCY_MS:g} ms {'ok' if ok_latency else 'MISSED'}")
