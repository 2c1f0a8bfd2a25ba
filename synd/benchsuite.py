"""`synd bench`: what this machine can do, measured in one run, side by side with the
machine's own limits and with the original SyNEThesia design.

Shared machines are noisy, so every speed is a median over repeated runs after a
warm-up, and the headline numbers are ratios measured in the same run: the generator's
share of the machine's GEMM rate, our frames/s over the baseline's at equal size, the
render's multiple of real time. Each ratio is measured in rounds that alternate its two
sides (the generator and the GEMM, ours and the baseline, the whole render and
generation alone: `synd.measure.paired_ratios`), and reported as the median of the
rounds' ratios with their p10-p90 spread. A target gets "ok" or "MISSED" only when the
rounds can decide (`synd.measure.decide`), and "noisy: rerun on an idle machine" when
they straddle it too widely, scatter too far, or other processes used more than a
quarter of the cores while the section was measured (`result["load"]`). The sections
(`SECTIONS`, each also a `synd bench PART`):

* limits: float32 GEMM GFLOP/s (all cores) and memory copy GB/s;
* generator: frames/s of each shipped preset's model at 128x128, 256x256, 512x512 and
  1280x720 in the live runtime with all cores, GFLOP a frame (of the folded network that
  actually runs) and the achieved share of the GEMM rate;
* baseline: the original SyNEThesia generator (`synd.baseline`) at the same sizes in the
  same runtime, the speed ratio, and both models' sound-recovery R^2 on the same audio;
* live: the whole live chain (features, generator, upscale and conversion to 1280x720
  BGRA, a null output) painting 256x256 at 60 fps: fps, drops, milliseconds per stage,
  audio-to-frame latency;
* render: multiple of real time at 1280x720@30 and 1920x1080@30, encoding alone against
  the whole pipeline;
* train: optimizer steps/s at the default preset's crop and batch;
* ndi: the live engine publishing a real NDI source, received in another process;
* capacity: "what this machine can do live": per preset, the largest 16:9 painted size
  holding 60 fps and 30 fps, checked by running the live engine at that size;
* guard: the flash guard's milliseconds a frame at 384x216 (the live painted size),
  passing a moving picture through and limiting a 10 Hz strobe (every frame checked,
  most changed);
* judge: how long `synd eval --video` takes for a 4-minute 640x360 H.264 video,
  extrapolated from a 20 s one (decoding included).

`--quick` (about a minute on 2 cores) measures the default preset only, with shorter
runs, no NDI and an estimated capacity. Results print as tables and go to JSON with the
top-level keys of `HEADLINE`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from synd.sizes import GENERATION_SHORT_SIDE, generation_size

if TYPE_CHECKING:
    from synd.bundle import ModelBundle

log = logging.getLogger(__name__)

SECTIONS = ("limits", "generator", "baseline", "live", "render", "train", "ndi", "capacity", "guard", "judge")
GENERATOR_SIZES = [(128, 128), (256, 256), (512, 512), (1280, 720)]
#: Painted sizes tried for "what this machine can do live", 16:9 by short side.
CAPACITY_SHORT_SIDES = (144, 180, 216, 256, 288, 324, 360, 432, 540, 720)
#: The share of a frame period the painter may take: features, conversion and the
#: outputs need the rest (measured in the live section).
CAPACITY_SHARE = 0.85

#: JSON top-level numbers, and the targets they are held to (None: reported only).
HEADLINE = {
    "gemm_gflops": None,
    "generator_gemm_fraction": (">=", 0.40),
    "live_fps": (">=", 60.0 * 0.98),
    "live_dropped": ("<=", 0),
    "latency_ms_median": ("<=", 25.0),
    "render_rtf_720p30": (">=", 1.5),
    "render_rtf_1080p30": (">=", 1.0),
    "baseline_speed_ratio": (">=", 8.0),
    "train_steps_per_s": None,
    "flash_guard_ms": ("<=", 1.0),
    "judge_s_4min_640x360": ("<=", 60.0),
}
#: The section each headline number comes from (whose machine load its verdict heeds).
HEADLINE_SECTION = {
    "gemm_gflops": "limits",
    "generator_gemm_fraction": "generator",
    "live_fps": "live",
    "live_dropped": "live",
    "latency_ms_median": "live",
    "render_rtf_720p30": "render",
    "render_rtf_1080p30": "render",
    "baseline_speed_ratio": "baseline",
    "train_steps_per_s": "train",
    "flash_guard_ms": "guard",
    "judge_s_4min_640x360": "judge",
}


@dataclass
class SuiteOptions:
    """What `synd bench` was asked to measure."""

    sections: tuple[str, ...] = SECTIONS
    quick: bool = False
    device: str = "cpu"
    preset: str = "lava"  # the default live preset: the headline numbers are its
    model: str | None = None  # a model to measure instead of the preset's (name or file)
    presets: list[str] = field(default_factory=list)  # empty: every shipped preset
    detail: int = GENERATION_SHORT_SIDE
    render_sizes: list[tuple[int, int]] | None = None  # default 1280x720 and 1920x1080
    render_seconds: float | None = None  # default 20 s (4 s quick)
    speed: str = "superfast"

    @property
    def label(self) -> str:
        """The name the main model's rows carry."""
        return Path(self.model).stem if self.model else self.preset


def _rounds(opts: SuiteOptions) -> int:
    """Interleaved rounds of each paired measurement (generator and GEMM, ours and the
    baseline)."""
    return 5 if opts.quick else 7


def _main_look(opts: SuiteOptions):
    """(bundle, look) of what the headline numbers measure: the model, else the preset."""
    from synd.catalog import resolve_look

    return resolve_look(None, opts.model) if opts.model else resolve_look(opts.preset, None)


def _say(text: str) -> None:
    print(text, flush=True)


# -- limits --------------------------------------------------------------------------------


def limits_section(opts: SuiteOptions) -> dict:
    """The machine's GEMM rate is the best of torch's and ONNX Runtime's (the generator
    paints in the faster one on a CPU; its share must be of what the machine can do)."""
    from synd.measure import gemm_gflops, gemm_gflops_onnx, memcopy_gbps

    repeats = 5 if opts.quick else 9
    rates = {"torch": gemm_gflops(opts.device, n=2048, repeats=repeats)}
    if opts.device == "cpu":
        onnx = gemm_gflops_onnx(n=2048, repeats=repeats)
        if onnx is not None:
            rates["onnxruntime"] = onnx
    best = max(rates, key=lambda k: rates[k]["gflops"])
    copy = memcopy_gbps(mb=64 if opts.quick else 256, repeats=5)
    return {"gemm": {**rates[best], "library": best}, "gemm_by_library": rates, "memcopy": copy}


def format_limits(limits: dict) -> str:
    rates = ", ".join(f"{lib} {r['gflops']:.1f}" for lib, r in limits["gemm_by_library"].items())
    g, c = limits["gemm"], limits["memcopy"]
    return (
        f"float32 GEMM {g['n']}x{g['n']}, {g['threads']} threads: {g['gflops']:.1f} GFLOP/s "
        f"({rates})\nmemory copy {c['mb']} MB: {c['gbps']:.1f} GB/s (bytes read + written)"
    )


# -- the generator and the baseline ------------------------------------------------------------


def _painter(generator, height: int, width: int, device: str, threads: int | None = None):
    """What paints a frame live on `device`; on a CPU with `threads` painting threads
    (None: as many as the live engine uses)."""
    from synd.model import FoldedGenerator
    from synd.onnxgen import live_painter

    if device == "cpu":
        return live_painter(generator.cpu(), height, width, threads=threads)
    return FoldedGenerator(generator.to(device), height, width).eval()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def _warm(once: Callable[[], object], seconds: float) -> float:
    """Call `once` for about `seconds` (at least 3 calls: a new session's first runs
    allocate its memory and wake its threads); the seconds of one call, the median of the
    last 3."""
    from synd.measure import median, timed_runs

    warm = timed_runs(once, repeats=3, warmup=0)
    while sum(warm) < seconds and len(warm) < 200:
        warm += timed_runs(once, repeats=1, warmup=0)
    return median(warm[-3:])


def _burst(once: Callable[[], object], calls: int) -> Callable[[], None]:
    """`once` called `calls` times in a row, as one call (one side of a round)."""

    def burst() -> None:
        for _ in range(calls):
            once()

    return burst


def frame_rate(paint: Callable[[], object], device: str, budget_s: float) -> dict:
    """Frames/s of `paint()` (median of repeated calls after warm-up; as many calls as
    fit in about `budget_s`, at least 3)."""
    from synd.measure import summary, timed_runs

    def once() -> None:
        paint()
        _sync(device)

    first = _warm(once, budget_s / 4)  # warm up for a quarter of the budget
    repeats = int(min(200, max(3, budget_s / max(first, 1e-4))))
    runs = timed_runs(once, repeats=repeats, warmup=0)
    stats = summary(runs)
    return {
        "fps": round(1.0 / stats["median"], 2),
        "ms_median": round(1000 * stats["median"], 2),
        "ms_p90": round(1000 * stats["p90"], 2),
        "runs": len(runs),
    }


@dataclass
class GemmProbe:
    """The machine's matrix multiply as a call, to time in rounds with a painter."""

    library: str  # "onnxruntime" or "torch"
    product: Callable[[], object]
    flops: int  # of one product
    seconds: float  # one product, warm


def gemm_probe(library: str, device: str, n: int = 2048) -> GemmProbe:
    """The product the limits section found fastest (`library`), n x n, warmed up."""
    from synd.measure import gemm_flops, gemm_product, gemm_product_onnx

    product = gemm_product_onnx(n) if library == "onnxruntime" and device == "cpu" else None
    if product is None:
        library, product = "torch", gemm_product(device, n)

    def once() -> None:
        product()
        _sync(device)

    return GemmProbe(library, once, gemm_flops(n), _warm(once, 0.0))


def generator_speed(
    bundle,
    size: tuple[int, int],
    device: str,
    budget_s: float,
    gemm: GemmProbe | None = None,
    rounds: int = 7,
) -> dict:
    """Frames/s of the painter at `size` in `rounds` rounds of about `budget_s / rounds`
    seconds each; with `gemm`, each round also times the GEMM for about half as long
    (ABBA order), and the row carries the painter's share of the GEMM rate: the median of
    the rounds' shares ("gemm_fraction") and their `ratio_summary`."""
    from synd.bench import rounded
    from synd.measure import folded_flops, median, paired_ratios, ratio_summary, summary, timed_runs

    w, h = size
    flops = folded_flops(bundle.generator.cpu(), h, w)
    paint = _painter(bundle.generator, h, w, device, threads=os.cpu_count() or 1)  # as GEMM
    base = torch.rand(1, 3, h, w, device=device)
    feats = torch.zeros(1, bundle.config.feature_dim, device=base.device)

    def once() -> None:
        paint(base, feats)
        _sync(device)

    with torch.inference_mode():
        calls = max(1, round(budget_s / rounds / _warm(once, budget_s / 4)))
        frames = _burst(once, calls)
        if gemm is None:
            seconds = timed_runs(frames, repeats=rounds, warmup=0)
        else:
            products = max(1, round(budget_s / rounds / 2 / gemm.seconds))
            gemm.product()  # after the painter's warm-up: the caches hold its data
            paired = paired_ratios(
                frames,
                _burst(gemm.product, products),
                rounds,
                work_a=flops * calls,
                work_b=gemm.flops * products,
                warmup=0,
            )
            seconds = paired["a_s"]
    ms = summary([1000 * s / calls for s in seconds])
    row = {
        "size": f"{w}x{h}",
        "fps": round(1000 / ms["median"], 2),
        "ms_median": round(ms["median"], 2),
        "ms_p90": round(ms["p90"], 2),
        "runs": calls * rounds,
        "rounds": rounds,
        "gflop_per_frame": round(flops / 1e9, 3),
    }
    if gemm is not None:
        share = ratio_summary(paired["ratios"])
        row["gemm_fraction"] = round(share["median"], 3)
        row["gemm_fraction_stats"] = rounded(share)
        row["gemm_gflops_paired"] = round(median([gemm.flops * products / s for s in paired["b_s"]]) / 1e9, 1)
        row["gemm_library"] = gemm.library
    return row


def generator_section(opts: SuiteOptions, gemm_library: str | None) -> list[dict]:
    """Each model at each size; with `gemm_library` (the limits section's fastest), its
    share of the GEMM rate, the two measured in alternating rounds."""
    gemm = gemm_probe(gemm_library, opts.device) if gemm_library else None
    rounds = _rounds(opts)
    rows = []
    sizes = [(256, 256)] if opts.quick else GENERATOR_SIZES
    for preset, bundle, _ in _looks(opts):
        bundle.generator.eval()
        for size in sizes:
            budget = 0.5 if opts.quick else 1.5
            row = {"preset": preset, **generator_speed(bundle, size, opts.device, budget, gemm, rounds)}
            rows.append(row)
            share = ""
            if "gemm_fraction" in row:
                stats = row["gemm_fraction_stats"]
                share = (
                    f", {100 * row['gemm_fraction']:.0f}% of GEMM (p10-p90 {100 * stats['p10']:.0f}-"
                    f"{100 * stats['p90']:.0f}% over {stats['n']} rounds alternating with the GEMM, "
                    f"{row['gemm_gflops_paired']} GFLOP/s meanwhile)"
                )
            _say(
                f"  {preset} {row['size']}: {row['fps']} frames/s, {row['gflop_per_frame']} GFLOP a frame"
                + share
            )
    return rows


def _looks(opts: SuiteOptions):
    """(label, bundle, look) of each model the per-preset sections measure: the main one
    first (the only one with --quick or --model), then the other shipped presets."""
    from synd.catalog import resolve_look
    from synd.paths import shipped_dir

    bundle, look = _main_look(opts)
    yield opts.label, bundle, look
    if opts.quick or opts.model:
        return
    names = opts.presets or sorted(p.stem for p in shipped_dir("presets").glob("*.toml"))
    for name in names:
        if name != opts.preset:
            yield (name, *resolve_look(name, None))


def baseline_section(opts: SuiteOptions) -> dict:
    """The original design at the same sizes, in the same runtime with the same threads,
    timed in rounds that alternate it with ours (the main model, ABBA order): the speed
    ratio is the median of the rounds' ratios of ours frames/s over the baseline's, with
    their `ratio_summary` ("speed_ratio_stats")."""
    from synd.baseline import BaselineGenerator, load_baseline
    from synd.bench import rounded
    from synd.measure import count_flops, median, paired_ratios, ratio_summary, summary

    shipped = Path(__file__).with_name("baseline.safetensors")
    if shipped.is_file():
        generator, decoder, meta = load_baseline(shipped)
    else:  # speed does not depend on the weights; the R^2 does
        generator, decoder, meta = BaselineGenerator(), None, {}
    generator = generator.float().eval()
    bundle, _ = _main_look(opts)
    bundle.generator.eval()
    sizes = [(256, 256)] if opts.quick else GENERATOR_SIZES
    budget = 0.5 if opts.quick else 1.5  # a side's seconds, over all rounds
    rounds = _rounds(opts)
    rows = []
    for w, h in sizes:
        base = torch.rand(1, 3, h, w)
        flops = count_flops(generator, base, torch.zeros(1, generator.feature_dim))
        theirs = _baseline_painter(generator, h, w, opts.device)
        ours = _painter(bundle.generator, h, w, opts.device, threads=os.cpu_count() or 1)
        inputs = {
            "theirs": (base, torch.zeros(1, generator.feature_dim)),
            "ours": (base.to(opts.device), torch.zeros(1, bundle.config.feature_dim, device=opts.device)),
        }

        def paint(painter, inputs: tuple) -> Callable[[], None]:
            def once() -> None:
                painter(*inputs)
                _sync(opts.device)

            return once

        with torch.inference_mode():
            their_once, our_once = paint(theirs, inputs["theirs"]), paint(ours, inputs["ours"])
            their_calls = max(1, round(budget / rounds / _warm(their_once, budget / 4)))
            our_calls = max(1, round(budget / rounds / _warm(our_once, budget / 4)))
            paired = paired_ratios(
                _burst(our_once, our_calls),
                _burst(their_once, their_calls),
                rounds,
                work_a=our_calls,
                work_b=their_calls,
                warmup=0,
            )
        ms = summary([1000 * s / their_calls for s in paired["b_s"]])
        ratio = ratio_summary(paired["ratios"])
        row = {
            "size": f"{w}x{h}",
            "fps": round(1000 / ms["median"], 2),
            "ms_median": round(ms["median"], 2),
            "ms_p90": round(ms["p90"], 2),
            "runs": their_calls * rounds,
            "gflop_per_frame": round(flops / 1e9, 3),
            "ours_fps": round(median([our_calls / s for s in paired["a_s"]]), 2),
            "speed_ratio": round(ratio["median"], 2),
            "speed_ratio_stats": rounded(ratio),
            "rounds": rounds,
        }
        rows.append(row)
        _say(
            f"  baseline {row['size']}: {row['fps']} frames/s, {row['gflop_per_frame']} GFLOP a frame; "
            f"ours {row['ours_fps']} frames/s in the same rounds, {row['speed_ratio']}x "
            f"(p10-p90 {ratio['p10']:.2f}-{ratio['p90']:.2f} over {rounds} rounds)"
        )
    result = {
        "sizes": rows,
        "trained": bool(meta),
        "meta": {k: meta[k] for k in ("steps", "minutes") if k in meta},
    }
    if not opts.quick and decoder is not None:
        result["sound_r2"] = _both_r2(opts, generator, decoder)
    return result


def _baseline_painter(generator, height: int, width: int, device: str):
    """The baseline in the runtime ours runs in: ONNX Runtime on the CPU (all cores)."""
    from synd.onnxgen import export_module, onnx_missing, onnx_session

    if device != "cpu" or onnx_missing():
        generator = generator.to(device)
        return lambda base, feats: generator(base.to(device), feats.to(device))
    example = (torch.rand(1, 3, height, width), torch.zeros(1, generator.feature_dim))
    session = onnx_session(
        export_module(generator, example, ["base", "features"], ["frame"]), threads=os.cpu_count() or 1
    )
    return lambda base, feats: session.run(None, {"base": base.numpy(), "features": feats.numpy()})


def _both_r2(opts: SuiteOptions, generator, decoder) -> dict:
    """Sound-recovery R^2 of our default preset and of the baseline on one held-out song
    (a synthesized track from seeds never used in training)."""
    from synd.audio import load_audio, write_wav
    from synd.baseline import sound_r2
    from synd.corpus import synth_track
    from synd.evaluate import WARMUP_FRAMES, evaluate_track
    from synd.quality import r2_score
    from synd.render import song_features

    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        song = Path(tmp) / "heldout.wav"
        write_wav(song, synth_track(9100, duration=20.0), 44100)
        bundle, look = _main_look(opts)
        raw = song_features(song, bundle, 30.0)
        track = evaluate_track(bundle, look, raw, (1280, 720), detail=opts.detail)
        ours = r2_score(track.given[WARMUP_FRAMES:], track.decoded[WARMUP_FRAMES:])
        rate = 24000
        theirs = sound_r2(generator, decoder, load_audio(song, rate), rate)
    return {
        "ours": round(ours, 4),
        "baseline": round(theirs, 4),
        "audio": "a 20 s synthesized track (seed 9100), never trained on",
    }


# -- live, render, train, NDI ----------------------------------------------------------------------


def live_section(opts: SuiteOptions) -> dict:
    """The goal run (256x256 painted, 1280x720 out, 60 fps); without --quick also 16:9 at
    the render detail and at 256 (under "more")."""
    from synd.bench import LIVE_GOAL_FPS, LIVE_GOAL_PAINT, bench_live, live_cases

    bundle, look = _main_look(opts)
    seconds = 3.0 if opts.quick else 10.0
    goal = bench_live(
        bundle, look, seconds=seconds, fps=LIVE_GOAL_FPS, size=(1280, 720), paint=LIVE_GOAL_PAINT
    )
    if not opts.quick:
        goal["more"] = [
            bench_live(bundle, look, seconds=seconds, **case) for case in live_cases(opts.detail)[1:]
        ]
    return goal


def render_section(opts: SuiteOptions) -> list[dict]:
    """Each size's render in 3 rounds, alternating the whole render with generation
    alone (`synd.bench.bench_render`)."""
    from synd.bench import bench_render

    bundle, look = _main_look(opts)
    seconds = opts.render_seconds or (4.0 if opts.quick else 20.0)
    return bench_render(
        bundle,
        look,
        opts.render_sizes or [(1280, 720), (1920, 1080)],
        seconds=seconds,
        fps=30.0,
        speed=opts.speed,
        detail=opts.detail,
        rounds=3,
    )


def train_section(opts: SuiteOptions) -> dict:
    """Optimizer steps/s of `synd train` with the default preset's settings (crop,
    batch, unroll) on two synthesized tracks; the first steps are warm-up."""
    from synd.audio import write_wav
    from synd.corpus import synth_track
    from synd.measure import summary
    from synd.presets import load_preset
    from synd.train import TrainOptions, train

    preset = load_preset(opts.preset)
    steps = 6 if opts.quick else 16
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        for k in range(2):
            write_wav(Path(tmp, f"t{k}.wav"), synth_track(9200 + k, duration=8.0), 44100)
        began = time.perf_counter()
        train(
            TrainOptions(
                inputs=[Path(tmp)],
                preset=preset,
                out=Path(tmp, "m.safetensors"),
                steps=steps,
                device=opts.device,
                holdout=0.0,
                eval_every=10**9,
                sample_every=10**9,
                checkpoint_every=10**9,
                progress=False,
                on_step=lambda step: times.append(time.perf_counter()),
            )
        )
        total = time.perf_counter() - began
    gaps = np.diff(times[2:])  # after two warm-up steps
    stats = summary(list(gaps))
    s = preset.train
    return {
        "steps_per_s": round(1.0 / stats["median"], 3),
        "ms_per_step": round(1000 * stats["median"], 1),
        "batch": s.batch,
        "crop": s.size,
        "unroll": s.unroll,
        "steps_timed": len(gaps),
        "wall_seconds": round(total, 1),
    }


def ndi_section(opts: SuiteOptions) -> list[dict] | None:
    import importlib.util

    if importlib.util.find_spec("NDIlib") is None:
        return None
    from synd.bench import bench_ndi

    bundle, look = _main_look(opts)
    return bench_ndi(bundle, look, seconds=10.0, detail=opts.detail)


# -- capacity --------------------------------------------------------------------------------------


def capacity_section(opts: SuiteOptions, live: dict | None) -> list[dict]:
    """Per preset, the largest 16:9 painted size whose frames fit 60 fps and 30 fps live.

    The painter runs with the live engine's threads; a size fits when the painter's
    median time plus what the rest of the engine's frame took in the live section
    (features, conversion, handing over to outputs) stays within `CAPACITY_SHARE` of the
    frame period. Without --quick each answer is then checked with the live engine
    itself (5 s, 1280x720 output) and taken one size down while it drops frames."""
    from synd.bench import bench_live
    from synd.measure import largest_size

    other_ms = 0.0
    if live and live.get("stage_ms"):
        stages = live["stage_ms"]
        other_ms = stages.get("features", 0.0) + stages.get("publish", 0.0)
    ladder = [generation_size(1280, 720, short=s) for s in CAPACITY_SHORT_SIDES]
    rows = []
    for preset, bundle, look in _looks(opts):
        bundle.generator.eval()
        timed: dict[tuple[int, int], float] = {}

        def fps_at(
            size: tuple[int, int],
            bundle: ModelBundle = bundle,
            timed: dict[tuple[int, int], float] = timed,
        ) -> float:
            if size not in timed:
                w, h = size
                paint = _painter(bundle.generator, h, w, opts.device)
                base, feats = torch.rand(1, 3, h, w), torch.zeros(1, bundle.config.feature_dim)
                with torch.inference_mode():
                    ms = frame_rate(lambda: paint(base, feats), opts.device, 0.4)["ms_median"]
                timed[size] = 1000.0 / (ms + other_ms)
            return timed[size]

        row = {"preset": preset}
        for target in (60.0, 30.0):
            size = largest_size(lambda s: fps_at(s) * CAPACITY_SHARE, ladder, target)
            entry: dict = {"size": f"{size[0]}x{size[1]}" if size else None, "checked": False}
            if size and not opts.quick:
                while size is not None:
                    check = bench_live(bundle, look, seconds=5.0, fps=target, size=(1280, 720), paint=size)
                    entry.update(
                        size=f"{size[0]}x{size[1]}",
                        checked=True,
                        engine_fps=check["engine_fps"],
                        dropped=check["engine_dropped"],
                    )
                    if check["engine_dropped"] == 0:
                        break
                    i = ladder.index(size)
                    size = ladder[i - 1] if i > 0 else None
                    if size is None:
                        entry["size"] = None
            row[f"{target:g}fps"] = entry
        rows.append(row)
        _say(f"  {preset}: 60 fps up to {row['60fps']['size']}, 30 fps up to {row['30fps']['size']}")
    return rows


# -- the whole suite ----------------------------------------------------------------------------------


def guard_section(opts: SuiteOptions) -> dict:
    """Median milliseconds of `FlashGuard` a frame at 384x216, on calm and strobing input."""
    from synd.flash import FlashGuard
    from synd.measure import stage_ms

    w, h = generation_size(1280, 720)
    ramp = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    cases = {
        "moving picture": [np.roll(ramp, 4 * i, axis=1) for i in range(60)],
        "10 Hz strobe": [np.full((h, w, 3), 255 * (i * 20 // 30 % 2), np.uint8) for i in range(60)],
    }
    rounds = 3 if opts.quick else 10
    out = {}
    for name, frames in cases.items():
        guard = FlashGuard(30.0)
        seconds: list[float] = []
        limited: list[float] = []
        for _ in range(rounds):
            for f in frames:
                before = guard.changed
                t = time.perf_counter()
                guard(f)
                (limited if guard.changed > before else seconds).append(time.perf_counter() - t)
        out[name] = {
            "ms_median": round(stage_ms({"g": seconds + limited})["g"], 3),
            "limited_ms_median": round(stage_ms({"g": limited})["g"], 3) if limited else None,
            "changed_share": round(guard.changed / guard.frames, 2),
        }
    return out


def judge_section(opts: SuiteOptions) -> dict:
    """Seconds the judge takes for a 20 s 640x360 H.264 video with sound, and that
    scaled to 4 minutes."""
    from synd.judge import JUDGE_RATE, judge_video
    from synd.video import VideoWriter

    seconds, fps = 20.0, 30.0
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="synd-bench-") as tmp:
        video = Path(tmp) / "clip.mp4"
        sound = rng.normal(0, 0.1, int(seconds * JUDGE_RATE)).astype(np.float32)
        base = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
        with VideoWriter(
            video, 640, 360, fps, preset="ultrafast", audio=sound, audio_rate=JUDGE_RATE
        ) as writer:
            for i in range(int(seconds * fps)):
                writer.write(np.roll(base, i, axis=1).repeat(10, 0).repeat(10, 1))
        began = time.perf_counter()
        judge_video(video)
        took = time.perf_counter() - began
    return {"clip_s": seconds, "took_s": round(took, 2), "s_for_4min": round(took * 240.0 / seconds, 1)}


def run_suite(opts: SuiteOptions) -> dict:
    """Measure the sections asked for; returns the result with the `HEADLINE` numbers
    (those that were measured) at the top level, the machine's load while each section
    was measured ("load") and the verdict on each target ("checks", `headline_checks`)."""
    from synd.bench import machine
    from synd.measure import BUSY_SHARE, busy_machine, cpu_sample, load_average, others_cores

    cores = os.cpu_count() or 1
    load = load_average()
    busy_at_start = load is not None and busy_machine(load, cores)
    result: dict = {
        "machine": machine(),
        "device": opts.device,
        "quick": opts.quick,
        "preset": opts.label,
        "x264_speed": opts.speed,
        "load": {
            "cores": cores,
            "load_average_start": None if load is None else round(load, 2),
            "busy_share": BUSY_SHARE,
            "sections": {},
        },
    }
    if busy_at_start:
        _say(
            f"the machine looks busy: 1-minute load average {load:.2f} on {cores} cores "
            "(other processes, or a run that just ended)"
        )

    def measured(name: str, section: Callable[[], object]) -> None:
        """Run a section, noting how many cores' worth other processes used meanwhile."""
        before = cpu_sample()
        result[name] = section()
        others = others_cores(before, cpu_sample())
        busy = busy_at_start if others is None else busy_machine(others, cores)
        result["load"]["sections"][name] = {
            "others_cores": None if others is None else round(others, 2),
            "busy": busy,
        }
        if busy:
            used = "" if others is None else f" (other processes used {others:.2f} of {cores} cores)"
            _say(f"  busy machine during {name}{used}: its verdicts will say noisy")

    want = set(opts.sections)
    if want & {"limits", "generator"}:
        _say("machine limits ...")
        measured("limits", lambda: limits_section(opts))
        _say(format_limits(result["limits"]))
    if "generator" in want:
        _say("generator speed (live runtime, all cores), in rounds alternating with the GEMM ...")
        library = result["limits"]["gemm"]["library"]
        measured("generator", lambda: generator_section(opts, library))
    if "baseline" in want:
        _say("baseline: the original SyNEThesia generator, in rounds alternating with ours ...")
        measured("baseline", lambda: baseline_section(opts))
    if want & {"live", "capacity"}:
        _say("live engine end to end ...")
        measured("live", lambda: live_section(opts))
    if "render" in want:
        _say("render, in rounds alternating the whole render with generation alone ...")
        measured("render", lambda: render_section(opts))
    if "train" in want:
        _say("training ...")
        measured("train", lambda: train_section(opts))
    if "ndi" in want and not opts.quick:
        _say("NDI ...")
        measured("ndi", lambda: ndi_section(opts))
    if "capacity" in want:
        _say("what this machine can do live ...")
        measured("capacity", lambda: capacity_section(opts, result.get("live")))
    if "guard" in want:
        _say("flash guard ...")
        measured("guard", lambda: guard_section(opts))
    if "judge" in want:
        _say("judge (synd eval --video) ...")
        measured("judge", lambda: judge_section(opts))
    result.update(headline(result, opts.label))
    result["checks"] = headline_checks(result)
    return result


def headline(result: dict, preset: str) -> dict:
    """The `HEADLINE` numbers found in `result`."""
    found: dict = {}
    if "limits" in result:
        found["gemm_gflops"] = round(result["limits"]["gemm"]["gflops"], 1)
    for row in result.get("generator", []):
        if row["preset"] == preset and row["size"] == "256x256" and "gemm_fraction" in row:
            found["generator_gemm_fraction"] = row["gemm_fraction"]
    if "live" in result:
        live = result["live"]
        found.update(
            live_fps=live["engine_fps"],
            live_dropped=live["engine_dropped"],
            latency_ms_median=live["latency_ms_median"],
        )
    for row in result.get("render", []):
        key = {"1280x720": "render_rtf_720p30", "1920x1080": "render_rtf_1080p30"}.get(row["size"])
        if key:
            found[key] = row["x_real_time"]
    for row in result.get("baseline", {}).get("sizes", []):
        if row["size"] == "256x256" and "speed_ratio" in row:
            found["baseline_speed_ratio"] = row["speed_ratio"]
    if "train" in result:
        found["train_steps_per_s"] = result["train"]["steps_per_s"]
    if "guard" in result:
        found["flash_guard_ms"] = max(r["ms_median"] for r in result["guard"].values())
    if "judge" in result:
        found["judge_s_4min_640x360"] = result["judge"]["s_for_4min"]
    return found


def headline_rounds(result: dict, preset: str) -> dict:
    """The per-round statistics (`ratio_summary`) of the `HEADLINE` numbers measured in
    rounds: the generator's GEMM share, the baseline ratio, the renders' x real time."""
    found: dict = {}
    for row in result.get("generator", []):
        if row["preset"] == preset and row["size"] == "256x256" and "gemm_fraction_stats" in row:
            found["generator_gemm_fraction"] = row["gemm_fraction_stats"]
    for row in result.get("render", []):
        key = {"1280x720": "render_rtf_720p30", "1920x1080": "render_rtf_1080p30"}.get(row["size"])
        if key and "x_real_time_stats" in row:
            found[key] = row["x_real_time_stats"]
    for row in result.get("baseline", {}).get("sizes", []):
        if row["size"] == "256x256" and "speed_ratio_stats" in row:
            found["baseline_speed_ratio"] = row["speed_ratio_stats"]
    return found


def section_busy(result: dict, section: str) -> bool:
    """Whether other processes kept the machine busy while `section` was measured."""
    return bool(result.get("load", {}).get("sections", {}).get(section, {}).get("busy"))


def headline_checks(result: dict) -> dict:
    """Each measured `HEADLINE` number with a target: {"verdict" (`judge`), "busy", and for
    numbers measured in rounds "p10", "p90", "spread", "rounds"}."""
    rounds = headline_rounds(result, result.get("preset", ""))
    checks: dict = {}
    for key, target in HEADLINE.items():
        if target is None or key not in result:
            continue
        busy = section_busy(result, HEADLINE_SECTION[key])
        stats = rounds.get(key)
        check = {"verdict": judge(key, result[key], stats, busy), "busy": busy}
        if stats:
            check.update(p10=stats["p10"], p90=stats["p90"], spread=stats["spread"], rounds=stats["n"])
        checks[key] = check
    return checks


def verdict(key: str, value) -> str:
    """ "ok", "MISSED" or "" (no target) for a headline number taken at its word (see
    `judge` for one measured in rounds or on a busy machine)."""
    target = HEADLINE.get(key)
    if target is None or value is None:
        return ""
    op, bound = target
    return "ok" if (value >= bound if op == ">=" else value <= bound) else "MISSED"


def judge(key: str, value, rounds: dict | None = None, busy: bool = False) -> str:
    """ "ok", "MISSED", "noisy: rerun on an idle machine" or "" (no target) for a headline
    number: from its `rounds` (`ratio_summary` of the per-round values) when it was
    measured in rounds, else from the value alone; noisy whenever the machine was `busy`
    (`synd.measure.decide`)."""
    from synd.measure import decide, ratio_summary

    target = HEADLINE.get(key)
    if target is None or value is None:
        return ""
    op, bound = target
    return decide(rounds or ratio_summary([value]), op, bound, busy=busy)


def format_load(load: dict) -> str:
    """One line on how busy the machine was: the load average before the run and the
    cores other processes used while the sections were measured."""
    from synd.measure import NOISY

    cores = load.get("cores")
    parts = []
    if load.get("load_average_start") is not None:
        parts.append(f"1-minute load average {load['load_average_start']} on {cores} cores before the run")
    sections = load.get("sections", {})
    used = [s["others_cores"] for s in sections.values() if s.get("others_cores") is not None]
    if used:
        parts.append(f"other processes used {min(used):.2f}-{max(used):.2f} cores while measuring")
    busy = [name for name, s in sections.items() if s.get("busy")]
    if busy:
        verdicts = f"\n  busy during {', '.join(busy)}: the verdicts of those sections say {NOISY}"
    else:
        verdicts = "; quiet enough to decide" if sections else ""
    return "machine load: " + "; ".join(parts) + verdicts


def format_suite(result: dict) -> str:
    """Every measured section as a text table, then the headline against the targets
    (each verdict from `judge`: noisy when its rounds cannot decide or the machine was
    busy while its section was measured)."""
    from synd.bench import spread_text

    lines = [
        f"synd bench on {result['machine']}, device {result['device']}"
        + (" (quick)" if result["quick"] else "")
    ]
    if result.get("load"):
        lines.append(format_load(result["load"]))
    if "generator" in result:
        lines += [
            "",
            "generator alone (frames/s, all cores; its share of the GEMM rate is the median of rounds",
            "alternating the generator with the GEMM, p10-p90 of the rounds beside it)",
            f"{'preset':>8} {'size':>9} {'frames/s':>9} {'ms':>7} {'GFLOP':>7} {'of GEMM':>8} "
            f"{'p10-p90 (rounds)':>17}",
        ]
        for r in result["generator"]:
            share = f"{100 * r['gemm_fraction']:.0f}%" if "gemm_fraction" in r else "-"
            stats = r.get("gemm_fraction_stats")
            spread = ""
            if stats and stats["n"] > 1:
                spread = f"{100 * stats['p10']:.0f}-{100 * stats['p90']:.0f}% ({stats['n']})"
            lines.append(
                f"{r['preset']:>8} {r['size']:>9} {r['fps']:>9} {r['ms_median']:>7} "
                f"{r['gflop_per_frame']:>7} {share:>8} {spread:>17}"
            )
    if "baseline" in result:
        b = result["baseline"]
        lines += [
            "",
            "baseline: the original SyNEThesia generator, same runtime and threads, in rounds "
            "alternating with ours",
            f"{'size':>9} {'frames/s':>9} {'GFLOP':>7} {'ours':>9} {'ours / baseline':>16} "
            f"{'p10-p90 (rounds)':>17}",
        ]
        for r in b["sizes"]:
            lines.append(
                f"{r['size']:>9} {r['fps']:>9} {r['gflop_per_frame']:>7} {r.get('ours_fps', '-')!s:>9} "
                f"{r.get('speed_ratio', '-')!s:>15}x {spread_text(r.get('speed_ratio_stats')):>17}"
            )
        if "sound_r2" in b:
            r2 = b["sound_r2"]
            lines.append(f"sound-recovery R^2 on {r2['audio']}: ours {r2['ours']}, baseline {r2['baseline']}")
    if "live" in result:
        live = result["live"]
        stages = ", ".join(f"{k} {v} ms" for k, v in live.get("stage_ms", {}).items())
        lines += [
            "",
            f"live: painted {live['painted_at']} -> {live['size']} BGRA at "
            f"{live['target_fps']:g} fps ({live['runtime']}): {live['engine_fps']} fps, "
            f"{live['engine_dropped']} dropped, latency median {live['latency_ms_median']} ms"
            f" (p90 {live.get('latency_ms_p90')} ms), CPU {live['cpu_percent']}%",
            f"  per frame (median): {stages}",
        ]
        if live.get("more"):
            from synd.bench import format_live

            lines.append(format_live(live["more"]))
    if "render" in result:
        from synd.bench import format_render

        lines += [
            "",
            f"render (x264 {result.get('x264_speed', 'superfast')})",
            format_render(result["render"], 30.0, busy=section_busy(result, "render")),
        ]
    if "train" in result:
        t = result["train"]
        lines += [
            "",
            f"training: {t['steps_per_s']} steps/s ({t['ms_per_step']} ms a step; "
            f"batch {t['batch']}, crop {t['crop']}, unroll {t['unroll']})",
        ]
    if result.get("ndi"):
        from synd.bench import format_live

        lines += ["", "NDI (a receiver in another process)", format_live(result["ndi"])]
    if "capacity" in result:
        lines += [
            "",
            "what this machine can do live (largest 16:9 painted size; "
            + ("estimated from the painter's speed)" if result["quick"] else "checked with the live engine)"),
            f"{'preset':>8} {'60 fps':>10} {'30 fps':>10}",
        ]
        for r in result["capacity"]:
            lines.append(
                f"{r['preset']:>8} {r['60fps']['size'] or 'none':>10} {r['30fps']['size'] or 'none':>10}"
            )
    if "guard" in result:
        lines += ["", "flash guard at 384x216 (median ms a frame)"]
        lines += [
            f"  {name}: {r['ms_median']} ms, {100 * r['changed_share']:.0f}% of frames "
            "limited" + (f" ({r['limited_ms_median']} ms each)" if r.get("limited_ms_median") else "")
            for name, r in result["guard"].items()
        ]
    if "judge" in result:
        j = result["judge"]
        lines += [
            "",
            f"judge: a {j['clip_s']:g} s 640x360 video in {j['took_s']} s, so 4 minutes "
            f"in about {j['s_for_4min']} s",
        ]
    rounds = headline_rounds(result, result.get("preset", ""))
    lines += ["", f"{'headline':<26} {'value':>9} {'p10-p90 (rounds)':>17}  target"]
    for key, target in HEADLINE.items():
        if key in result:
            bound = f"{target[0]} {target[1]:g}" if target else ""
            said = judge(key, result[key], rounds.get(key), section_busy(result, HEADLINE_SECTION[key]))
            lines.append(
                f"{key:<26} {result[key]!s:>9} {spread_text(rounds.get(key)):>17}  {bound} {said}".rstrip()
            )
    return "\n".join(lines)
