"""`synd bench`: how fast this machine runs synd, as numbers and ratios to real time.

Speed targets live here, never in timed unit tests. The render benchmark times, on a
synthesized song of `seconds` seconds at each output size:

* generate: the shared frame loop alone (features -> 8-bit frames at generation size),
  with the threads a render gives it (`encoder_friendly_threads`: half the cores on a
  CPU), so that it compares with the whole render;
* encode: the video writer alone, fed those frames (upscale, colour conversion, x264);
* pipeline: `render_song` end to end (audio decode, features, generation overlapped with
  encoding, audio mux), the number that matters; ``x_real_time`` = audio seconds per
  second of wall time.

Generation alone and the whole render are timed in alternating rounds, so that the two
are compared on the same machine state; the goal's verdict comes from the rounds' spread
(`synd.measure.decide`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from synd.bridges.base import Frame, Output
from synd.bundle import ModelBundle
from synd.presets import Look
from synd.render import RenderOptions, render_frames, render_song, song_features
from synd.sizes import GENERATION_SHORT_SIDE, generation_size
from synd.video import VideoWriter

#: Real-time goals of the render benchmark with the default preset (x real time).
RENDER_GOALS = {(1280, 720): 1.5, (1920, 1080): 1.0}


def bench_render(
    bundle: ModelBundle,
    look: Look,
    sizes: list[tuple[int, int]],
    seconds: float = 20.0,
    fps: float = 30.0,
    speed: str = "superfast",
    detail: int = GENERATION_SHORT_SIDE,
    rounds: int = 3,
) -> list[dict]:
    """Time generation, encoding and the whole render at each size; one dict per size.

    The whole render and generation alone are measured close together, in `rounds`
    interleaved rounds (`synd.measure.paired_ratios`), and generation alone with the
    threads the render gives it ("generate_threads"), so that their ratio compares like
    with like on a machine whose load changes; frames/s and x real time are the medians
    of the rounds, and "x_real_time_stats" / "pipeline_over_generate_stats" their
    `ratio_summary`. Encoding alone is timed once, on the last round's frames."""
    from synd.corpus import demo_clip
    from synd.measure import median, paired_ratios, ratio_summary
    from synd.render import encoder_friendly_threads

    device = next(bundle.generator.parameters()).device
    with encoder_friendly_threads(device):
        threads = torch.get_num_threads() if device.type == "cpu" else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        song = demo_clip(Path(tmp) / "song.wav", duration=seconds)
        features = song_features(song, bundle, fps)
        count = len(features)  # frames of the song, generated alone or rendered whole
        for size in sizes:
            frames: list = []
            options = RenderOptions(size=size, fps=fps, speed=speed, detail=detail, progress=False)

            def generate(size: tuple[int, int] = size, frames: list = frames) -> None:
                with encoder_friendly_threads(device):  # as in the whole render
                    frames[:] = render_frames(bundle, look, features, size, detail=detail)

            def pipeline(options: RenderOptions = options) -> None:
                render_song(song, Path(tmp) / "render.mp4", bundle, look, options)

            render_log = logging.getLogger("synd.render")
            level = render_log.level
            render_log.setLevel(logging.WARNING)  # not a "rendering ..." line for every round
            try:
                paired = paired_ratios(pipeline, generate, rounds, work_a=count, work_b=count, warmup=0)
            finally:
                render_log.setLevel(level)

            began = time.perf_counter()
            with VideoWriter(Path(tmp) / "encode.mp4", *size, fps, preset=speed) as writer:
                for frame in frames:
                    writer.write(frame)
            encode = len(frames) / (time.perf_counter() - began)
            del frames[:]

            real_time = ratio_summary([count / fps / s for s in paired["a_s"]])
            whole_over_alone = ratio_summary(paired["ratios"])
            rows.append(
                {
                    "size": f"{size[0]}x{size[1]}",
                    "painted_at": "x".join(map(str, generation_size(*size, short=detail))),
                    "generate_fps": round(median([count / s for s in paired["b_s"]]), 1),
                    "generate_threads": threads,
                    "encode_fps": round(encode, 1),
                    "pipeline_fps": round(median([count / s for s in paired["a_s"]]), 1),
                    "x_real_time": round(real_time["median"], 2),
                    "goal_x_real_time": RENDER_GOALS.get((size[0], size[1])),
                    "rounds": rounds,
                    "x_real_time_stats": rounded(real_time),
                    "pipeline_over_generate": round(whole_over_alone["median"], 2),
                    "pipeline_over_generate_stats": rounded(whole_over_alone),
                }
            )
    return rows


def rounded(stats: dict, digits: int = 3) -> dict:
    """A `summary` / `ratio_summary` with its numbers rounded for the report and JSON."""
    return {k: v if k == "n" else round(v, digits) for k, v in stats.items()}


def machine() -> str:
    """One line describing where the numbers were measured."""
    import platform

    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"with {torch.get_num_threads()} threads"
    )


def spread_text(stats: dict | None, digits: int = 2) -> str:
    """ "p10-p90 (n rounds)" of per-round `stats`, "" for none or a single round."""
    if not stats or stats.get("n", 1) < 2:
        return ""
    return f"{stats['p10']:.{digits}f}-{stats['p90']:.{digits}f} ({stats['n']})"


def format_render(rows: list[dict], fps: float, busy: bool = False) -> str:
    """The render benchmark as a text table; `busy`: other processes kept the machine busy
    while it was measured, so the goals get no verdict (`synd.measure.decide`)."""
    from synd.measure import decide, ratio_summary

    head = (
        f"{'size':>10} {'painted':>8} {'generate':>9} {'encode':>8} {'whole':>9} {'whole/gen':>9} "
        f"{'x real time':>11} {'p10-p90 (rounds)':>17}  goal"
    )
    lines = [head]
    for r in rows:
        goal = r["goal_x_real_time"]
        verdict = ""
        if goal is not None:
            stats = r.get("x_real_time_stats") or ratio_summary([r["x_real_time"]])
            verdict = f">= {goal}x {decide(stats, '>=', goal, busy=busy)}"
        ratio = r.get("pipeline_over_generate")
        lines.append(
            f"{r['size']:>10} {r['painted_at']:>8} {r['generate_fps']:>7.1f}/s "
            f"{r['encode_fps']:>6.1f}/s {r['pipeline_fps']:>7.1f}/s "
            f"{'-' if ratio is None else f'{ratio:.2f}':>9} "
            f"{r['x_real_time']:>10.2f}x {spread_text(r.get('x_real_time_stats')):>17}  {verdict}"
        )
    rounds = rows[0].get("rounds") if rows else None
    threads = rows[0].get("generate_threads") if rows else None
    lines.append(
        f"(frames/s{f', medians of {rounds} rounds' if rounds else ''}; real time is {fps:g} frames/s. "
        "generate: the frame loop alone, no encoding"
        + (f", on the render's {threads} of {os.cpu_count()} threads" if threads else "")
        + ";"
    )
    lines.append(
        " encode: x264 alone, fed those frames; whole: the render end to end, generation "
        "overlapped with encoding, timed in rounds alternating with generate)"
    )
    return "\n".join(lines)


class ScaleOnly(Output):
    """The live benchmarks' output: scales every frame to its size as BGRA (what NDI
    sends; the conversion and the upscale are one pass), then drops it. `scale_s` keeps
    how long that took for the last frames."""

    name = "bench"

    def open(self) -> None:
        from collections import deque

        self.scale_s: deque[float] = deque(maxlen=600)

    def send(self, frame: Frame) -> None:
        began = time.perf_counter()
        self.pixels(frame, "bgra")
        self.scale_s.append(time.perf_counter() - began)

    def close(self) -> None:
        pass


#: The live engine's goal with the default preset: frames/s painted at 256x256 (the
#: models' native scale) and scaled to 720p, with no frames dropped.
LIVE_GOAL_FPS = 60.0
LIVE_GOAL_LATENCY_MS = 25.0
LIVE_GOAL_PAINT = (256, 256)


def live_cases(detail: int) -> list[dict]:
    """The live benchmark's runs: the goal as stated, then 16:9 at `detail` and at 256."""
    cases = [{"paint": LIVE_GOAL_PAINT, "size": (1280, 720), "fps": LIVE_GOAL_FPS}]
    for short in dict.fromkeys((detail, 256)):
        cases.append(
            {"paint": generation_size(1280, 720, short=short), "size": (1280, 720), "fps": LIVE_GOAL_FPS}
        )
    return cases


def bench_live(
    bundle: ModelBundle,
    look: Look,
    seconds: float = 10.0,
    fps: float = LIVE_GOAL_FPS,
    size: tuple[int, int] = (1280, 720),
    paint: tuple[int, int] = LIVE_GOAL_PAINT,
    runtime: str = "auto",
    output=None,
    ready=None,
) -> dict:
    """Run the real live engine for `seconds` on the demo song played in real time,
    painting `paint`-sized pictures, with one output: `output`, or by default one that
    scales every frame to `size` BGRA (what NDI sends). `ready(output)`, when given, is
    called once the output is open and must return when it is ready to be measured.
    Reports fps, dropped frames and the audio-to-frame latency."""
    from synd.bridges.base import OutputRunner
    from synd.capture import FileInput
    from synd.corpus import demo_clip
    from synd.engine import Engine, EngineOptions
    from synd.measure import latency_ms, stage_ms

    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        song = demo_clip(Path(tmp) / "song.wav", duration=max(seconds, 5.0))
        source = FileInput(song, rate=bundle.features.sample_rate, loop=True)
        runner = OutputRunner(output or ScaleOnly(size, fps))
        # The engine's size sets the painted size (its aspect at short side `detail`);
        # the output scales to its own size, as every output does.
        engine = Engine(
            bundle,
            look,
            source,
            [runner],
            EngineOptions(fps=fps, size=paint, detail=min(paint), runtime=runtime),
        )
        source.start()
        runner.start()
        engine.start()
        time.sleep(1.0)  # warm-up: first frames, caches
        if ready is not None and runner.wait_open(10.0):
            ready(runner.output)
        began = time.process_time(), time.monotonic()
        frames0, dropped0 = engine.frames, engine.dropped
        sent0, out_dropped0 = runner.sent, runner.dropped
        time.sleep(seconds)
        stages = {
            stage: round(ms, 2)
            for stage, ms in stage_ms({k: v for k, v in engine.stage_s.items() if v}).items()
        }
        scale = list(getattr(runner.output, "scale_s", ()))
        if scale:
            stages["upscale+convert"] = round(stage_ms({"scale": scale})["scale"], 2)
        with engine._lock:
            heard = list(engine._latency)
        latency = latency_ms(*zip(*heard)) if heard else None
        frames, dropped = engine.frames - frames0, engine.dropped - dropped0
        sent, out_dropped = runner.sent - sent0, runner.dropped - out_dropped0
        cpu = 100.0 * (time.process_time() - began[0]) / (time.monotonic() - began[1])
        engine.stop()
        runner.stop(2.0)
        source.stop()
    return {
        "painted_at": f"{engine.loop.width}x{engine.loop.height}",
        "size": f"{runner.output.size[0]}x{runner.output.size[1]}",
        "output": runner.name,
        "runtime": engine.runtime,
        "target_fps": fps,
        "output_failed": runner.failed,
        "engine_fps": round(frames / seconds, 1),
        "engine_dropped": dropped,
        "output_fps": round(sent / seconds, 1),
        "output_dropped": out_dropped,
        "latency_ms_median": round(latency["median"], 1) if latency else None,
        "latency_ms_p90": round(latency["p90"], 1) if latency else None,
        "cpu_percent": round(cpu),
        "stage_ms": stages,
    }


#: The NDI output's goals: (width, height, fps) sent from the daemon with no engine drops.
NDI_GOALS = [(1280, 720, 60.0), (1920, 1080, 30.0)]


def bench_ndi(
    bundle: ModelBundle, look: Look, seconds: float = 10.0, detail: int = GENERATION_SHORT_SIDE
) -> list[dict]:
    """The live engine publishing to a real NDI source at each of `NDI_GOALS`, watched by
    an NDI receiver in another process (`synd.bridges.ndi_watch`): NDI compresses and
    sends frames only while someone receives them. Sender and receiver find each other
    on 127.0.0.1 (NDI_CONFIG_DIR), so the benchmark works without mDNS."""
    import json
    import subprocess
    import sys

    from synd.bridges.ndi import NdiOutput

    config = tempfile.mkdtemp(prefix="synd-bench-ndi-")
    Path(config, "ndi-config.v1.json").write_text(
        json.dumps({"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}}})
    )
    os.environ["NDI_CONFIG_DIR"] = config  # read when this process starts the NDI runtime
    rows = []
    for w, h, fps in NDI_GOALS:
        name = f"synd-bench-{os.getpid()}-{w}x{h}"
        watcher = subprocess.Popen(
            [sys.executable, "-m", "synd.bridges.ndi_watch", name, "--seconds", str(seconds + 2)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )

        def connected(output) -> None:
            deadline = time.monotonic() + 15.0
            while output.connections() < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # the receiver's first frames: connection set-up

        try:
            row = bench_live(
                bundle,
                look,
                seconds,
                fps,
                (w, h),
                paint=generation_size(w, h, short=detail),
                output=NdiOutput((w, h), fps, source_name=name),
                ready=connected,
            )
            received, _ = watcher.communicate(timeout=seconds + 30)
        finally:
            if watcher.poll() is None:
                watcher.kill()
        seen = json.loads(received.strip().splitlines()[-1]) if received.strip() else {}
        row["received_fps"] = seen.get("fps")
        rows.append(row)
    return rows


def bench_switch(
    look_loader,
    first: str,
    presets: list[str],
    mix: str = "image",
    fps: float = 30.0,
    size: tuple[int, int] = (1280, 720),
    detail: int = GENERATION_SHORT_SIDE,
    switches: int = 3,
    fade: float = 2.0,
) -> dict:
    """The longest engine frame while presets change: the live engine on the demo song,
    `switches` preset changes through the Controller (load into the hidden slot, fade
    over `fade` s), against the longest frame over as long a stretch without changes.
    A frame longer than two frame periods would be a visible hitch."""
    from synd.bridges.base import OutputRunner
    from synd.capture import FileInput
    from synd.control import Controller
    from synd.corpus import demo_clip
    from synd.engine import Engine, EngineOptions

    settle = fade + 2.0
    bundle, look = look_loader(first)
    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        song = demo_clip(Path(tmp) / "song.wav", duration=20.0)
        source = FileInput(song, rate=bundle.features.sample_rate, loop=True)
        runner = OutputRunner(ScaleOnly(size, fps))
        engine = Engine(
            bundle,
            look,
            source,
            [runner],
            EngineOptions(fps=fps, size=size, detail=detail, mix=mix),
            model_name=first,
        )
        control = Controller(engine, presets, look_loader, current=first)
        control.set("transition_time", fade)
        source.start()
        runner.start()
        engine.start()
        try:
            time.sleep(2.0)
            engine._tick_ms.clear()
            time.sleep(switches * settle)
            calm = max(engine._tick_ms)
            engine._tick_ms.clear()
            dropped0 = engine.dropped
            for _ in range(switches):
                control.select_preset("next")
                time.sleep(settle)
            during = list(engine._tick_ms)
            dropped = engine.dropped - dropped0
        finally:
            engine.stop()
            runner.stop(2.0)
            source.stop()
    return {
        "mix": mix,
        "fps": fps,
        "painted_at": f"{engine.loop.width}x{engine.loop.height}",
        "switches": switches,
        "fade_s": fade,
        "longest_ms_calm": round(calm, 1),
        "longest_ms_switching": round(max(during), 1),
        "median_ms_switching": round(sorted(during)[len(during) // 2], 1),
        "dropped_switching": dropped,
        "frame_period_ms": round(1000.0 / fps, 1),
    }


def format_switch(rows: list[dict]) -> str:
    """The preset-switch benchmark as a table."""
    lines = [
        f"{'mix':>7} {'fps':>4} {'painted':>8} {'longest frame, calm':>20} "
        f"{'longest while switching':>24} {'median':>7} {'dropped':>8}  (frame period)"
    ]
    for r in rows:
        lines.append(
            f"{r['mix']:>7} {r['fps']:>4g} {r['painted_at']:>8} {r['longest_ms_calm']:>17} ms "
            f"{r['longest_ms_switching']:>21} ms {r['median_ms_switching']:>4} ms "
            f"{r['dropped_switching']:>8}  ({r['frame_period_ms']} ms)"
        )
    return "\n".join(lines)


def format_live(rows: list[dict]) -> str:
    """The live benchmark as a table, each run against the goals."""
    ndi = any("received_fps" in row for row in rows)
    lines = [
        f"{'painted':>9} {'output':>15} {'runtime':>11} {'fps':>6} {'dropped':>8} "
        f"{'latency ms':>10} {'CPU %':>6} "
        + (f"{'sent':>5} {'received':>8}  " if ndi else " ")
        + f"goals (target fps, no engine drops; latency <= {LIVE_GOAL_LATENCY_MS:g} ms)"
    ]
    for row in rows:
        ok_fps = row["engine_fps"] >= 0.98 * row["target_fps"] and row["engine_dropped"] == 0
        latency = row["latency_ms_median"]
        ok_latency = latency is not None and latency <= LIVE_GOAL_LATENCY_MS
        output = f"{row['size']}@{row['target_fps']:g}"
        sent = f"{row['output_fps']:>5} {row.get('received_fps')!s:>8}  " if ndi else " "
        lines.append(
            f"{row['painted_at']:>9} {output:>15} {row['runtime']:>11} "
            f"{row['engine_fps']:>6} {row['engine_dropped']:>8} {latency!s:>10} "
            f"{row['cpu_percent']:>6} {sent}{'ok' if ok_fps else 'MISSED'}, "
            f"{'ok' if ok_latency else 'MISSED'}"
            + (f" (output failed: {row['output_failed']})" if row.get("output_failed") else "")
        )
    return "\n".join(lines)
