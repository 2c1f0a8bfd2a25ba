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
