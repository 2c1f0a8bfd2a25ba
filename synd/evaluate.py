"""`synd eval`: does the picture see the sound? Measured on audio of your choice.

The frames are made exactly as `synd render` makes them (the shared frame loop at the
generation size of `--size`, with the preset's look) but are not encoded. From them:

* ``sound_r2``: R^2 of the model's own decoder reading back, from the 8-bit pictures the
  generator painted, the normalised features each was painted from (after the look's
  smoothing). The look's own transforms of the painted picture, a hue turn and the
  stage's light (`synd.stage`), are known and left out: the decoder reads the generator,
  the judge what is shown. The first `WARMUP_FRAMES` of each track are left out.
* ``probe_r2``: R^2 of a fresh ridge-regression probe reading the normalised features
  from 16x16 thumbnails: is the sound visible at large scale, not only in fine texture?
  Fitted on the first half of each track, scored on the second.
* ``sync_corr``, ``sync_lag_frames``: peak correlation between the audio onset envelope
  and the frame-to-frame change over lags of +-15 frames (curves of all tracks averaged,
  weighted by length), and its lag (positive: the picture moves after the sound).
* ``colorfulness``: Hasler-Suesstrunk colourfulness, median over all frames.
* The frames pass the flash guard as in a render (`synd.flash.FlashGuard`, unless
  turned off); ``flashes_max_unguarded`` and ``flash_hazard_s_unguarded`` count the
  flashes they would have had without it, ``guarded_frames`` the frames it changed.
* ``flicker_silence``: mean absolute frame-to-frame change (0-1 scale) over 5 s of
  digital silence, after 1 s of silence to settle from the starting picture;
  ``silence_motion_de`` the judge's motion (delta-E per frame) over the same frames.

Then the judge (`synd.judge`) scores what a viewer sees, from the frames and the
sound alone, as it scores any other visualizer's video (`evaluate_videos`): motion_de,
swing_de, variety_de, spread_de, tiling, onset_sync, beat_sync, energy_sync, sound_de,
sound_frac, flashes_max and flash_hazard_s, against `LOOK_TARGETS`.

Frames are processed as they are made, so memory does not grow with the audio's length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from synd.audio import load_audio, warnings_said
from synd.bundle import ModelBundle
from synd.flash import FlashGuard
from synd.frameloop import to_rgb_uint8
from synd.judge import (
    JUDGE_KEYS,
    JUDGE_RATE,
    MIN_SECONDS,
    Judge,
    JudgedTrack,
    combine,
    judge_video,
    silence_motion,
)
from synd.listen import decode_pictures
from synd.presets import Look
from synd.quality import colorfulness, flicker, frame_change, probe_r2, r2_score, sync, sync_lags, thumbnails
from synd.render import render_loop, song_features
from synd.sizes import GENERATION_SHORT_SIDE, generation_size

log = logging.getLogger(__name__)

WARMUP_FRAMES = 8
MAX_LAG = 15
SILENCE_SECONDS = 5.0
SETTLE_SECONDS = 1.0
SHEET_FRAMES = 16
SIDE_BY_SIDE = 4
_BATCH = 32

#: What the default preset should reach on music it was not trained on.
TARGETS = {
    "sound_r2": ">= 0.9",
    "probe_r2": ">= 0.5",
    "sync_corr": ">= 0.5",
    "sync_lag_frames": "|x| <= 1",
    "colorfulness": ">= 40",
    "flicker_silence": f"<= {1 / 255:.5f}",
}

#: What a look should reach on music it never heard, as the judge scores it: as rich and
#: alive as MilkDrop, never strobing, and driven by the music rather than a clock.
LOOK_TARGETS = {
    "motion_de": "1.5 .. 8",
    "swing_de": ">= 30",
    "variety_de": ">= 25",
    "spread_de": ">= 15",
    "tiling": "<= 0.4",
    "beat_sync": ">= 0.6",
    "energy_sync": ">= 0.3",
    "sound_de": ">= 15",
    "sound_frac": ">= 0.4",
    "flash_hazard_s": "<= 0",
    "silence_motion_de": "<= 0.5",
}


@dataclass
class TrackEval:
    """Per-frame measurements of one track (all arrays have one row per frame)."""

    name: str
    given: np.ndarray  # (n, F) normalised features each frame was painted from
    decoded: np.ndarray  # (n, F) the decoder's reading of each frame
    normalised: np.ndarray  # (n, F) normalised raw features (the probe's targets)
    thumbs: np.ndarray  # (n, 768) 16x16 thumbnails
    onset: np.ndarray  # (n,) raw onset envelope
    change: np.ndarray  # (n,) frame-to-frame change, change[0] = 0
    colour: np.ndarray  # (n,) colourfulness
    samples: list[np.ndarray] = field(default_factory=list)  # frames for a contact sheet
    sample_times: list[float] = field(default_factory=list)
    judged: JudgedTrack | None = None  # the judge's view, when the sound was given
    unguarded: tuple[float, float] = (0.0, 0.0)  # flashes_max, flash_hazard_s without the guard
    guarded_frames: int = 0  # frames the flash guard changed


def evaluate_track(
    bundle: ModelBundle,
    look: Look,
    raw: np.ndarray,
    size: tuple[int, int],
    name: str = "",
    seed: int = 0,
    detail: int = GENERATION_SHORT_SIDE,
    fps: float = 30.0,
    progress=None,
    sound: np.ndarray | None = None,
    flash_guard: bool = True,
) -> TrackEval:
    """Run one track's raw features (n, F) through the frame loop and measure every frame.

    Frames pass the flash guard as in a render (`flash_guard`), which also counts the
    flashes they would have had without it. With `sound` (the track's mono samples at
    `synd.judge.JUDGE_RATE`) the judge scores the frames too, if the track is long
    enough for it (`synd.judge.MIN_SECONDS`).
    """
    loop = render_loop(bundle, look, size, seed, detail, fps)
    guard = FlashGuard(fps, enabled=flash_guard, measure_unguarded=True)
    n = len(raw)
    judge = Judge(fps, expected_frames=n, name=name) if sound is not None and n >= MIN_SECONDS * fps else None
    sample_at = set(np.linspace(n * 0.1, n - 1, SHEET_FRAMES).astype(int).tolist()) if n else set()
    given, thumbs, change, colour = [], [], [], []
    samples, sample_times = [], []
    batch: list[np.ndarray] = []

    previous: list[np.ndarray] = []  # the last frame of the batch before

    def measure() -> None:
        """Thumbnails, colourfulness and frame change (quality.frame_change) of a batch."""
        stack = np.stack(batch)
        thumbs.append(thumbnails(stack))
        colour.append(colorfulness(stack))
        if previous:
            change.append(frame_change(np.concatenate([previous[-1][None], stack]))[1:])
        else:
            change.append(frame_change(stack))  # change[0] = 0: no frame before the first
        previous[:] = [stack[-1]]
        batch.clear()

    def frames():
        """The rendered frames, measured; the decoder gets the painted pictures."""
        for i, row in enumerate(raw):
            rgb = guard(to_rgb_uint8(loop.step(row)))
            painted = to_rgb_uint8(loop.previous)
            given.append(loop.condition_numpy())
            batch.append(rgb)
            if judge is not None:
                judge.add(rgb)
            if i in sample_at:
                samples.append(rgb)
                sample_times.append(i / fps)
            if len(batch) == _BATCH or i == n - 1:
                measure()
            if progress is not None:
                progress.update()
            yield painted

    decoded = bundle.stats.normalize(decode_pictures(bundle, frames(), bfloat16=False, detail=detail))
    onset = raw[:, bundle.features.names.index("onset")] if n else np.zeros(0)
    return TrackEval(
        name=name,
        given=np.asarray(given),
        decoded=decoded,
        normalised=bundle.stats.normalize(raw),
        thumbs=np.concatenate(thumbs),
        onset=np.asarray(onset, np.float64),
        change=np.concatenate(change),
        colour=np.concatenate(colour),
        samples=samples,
        sample_times=sample_times,
        judged=judge.score(sound) if judge is not None and sound is not None else None,
        unguarded=(guard.unguarded_flashes_max, guard.unguarded_hazard_frames / fps),
        guarded_frames=guard.changed,
    )


def silence_flicker(
    bundle: ModelBundle,
    look: Look,
    size: tuple[int, int],
    fps: float,
    seed: int = 0,
    detail: int = GENERATION_SHORT_SIDE,
) -> float:
    """Mean frame-to-frame change over `SILENCE_SECONDS` of digital silence (0-1 scale)."""
    return flicker(_silence_frames(bundle, look, size, fps, seed, detail))


def _silence_frames(
    bundle: ModelBundle,
    look: Look,
    size: tuple[int, int],
    fps: float,
    seed: int = 0,
    detail: int = GENERATION_SHORT_SIDE,
) -> list[np.ndarray]:
    """The frames painted over `SILENCE_SECONDS` of digital silence, after settling."""
    from synd.features import FeatureExtractor

    cfg = replace(bundle.features, fps=fps)
    silence = np.zeros(int((SETTLE_SECONDS + SILENCE_SECONDS) * cfg.sample_rate), np.float32)
    raw = FeatureExtractor(cfg).offline(silence)
    loop = render_loop(bundle, look, size, seed, detail, fps)
    settle = int(round(SETTLE_SECONDS * fps))
    frames = [to_rgb_uint8(loop.step(row)) for row in raw]
    return frames[settle:]


def summarize(tracks: list[TrackEval], flicker_silence: float, fps: float) -> dict:
    """The model's metrics over all tracks (the judge's are added by `evaluate`); see the
    module docstring."""
    if not tracks or all(len(t.given) <= WARMUP_FRAMES for t in tracks):
        raise ValueError(f"the audio is too short to evaluate (need more than {WARMUP_FRAMES / fps:.2f} s)")
    given = np.concatenate([t.given[WARMUP_FRAMES:] for t in tracks])
    decoded = np.concatenate([t.decoded[WARMUP_FRAMES:] for t in tracks])
    long_enough = [t for t in tracks if len(t.given) >= 2 * (MAX_LAG + 4)]
    if not long_enough:
        raise ValueError(f"need at least one track of {2 * (MAX_LAG + 4) / fps:.1f} s or more")
    probe = probe_r2([(t.thumbs, t.normalised) for t in long_enough])
    weights = np.array([len(t.onset) for t in long_enough], np.float64)
    curves = np.stack([sync(t.onset, t.change, MAX_LAG)[2] for t in long_enough])
    curve = (curves * weights[:, None]).sum(axis=0) / weights.sum()
    best = int(np.argmax(curve))
    colour = np.concatenate([t.colour for t in tracks])
    return {
        "sound_r2": round(r2_score(given, decoded), 4),
        "probe_r2": round(probe, 4),
        "sync_corr": round(float(curve[best]), 4),
        "sync_lag_frames": int(sync_lags(MAX_LAG)[best]),
        "colorfulness": round(float(np.median(colour)), 2),
        "flicker_silence": round(flicker_silence, 6),
        "sync_curve": [round(float(v), 4) for v in curve],
    }


def evaluate(
    bundle: ModelBundle,
    look: Look,
    files: list[Path],
    size: tuple[int, int] = (1280, 720),
    fps: float = 30.0,
    seed: int = 0,
    detail: int = GENERATION_SHORT_SIDE,
    progress: bool = True,
    flash_guard: bool = True,
) -> tuple[dict, list[TrackEval]]:
    """Evaluate on `files`; returns (result with the metric keys at the top level, tracks)."""
    from synd.progress import Progress

    raws = [song_features(f, bundle, fps) for f in files]
    with warnings_said():  # the features' decoding already warned about these files
        sounds = [load_audio(f, JUDGE_RATE) for f in files]
    bar = Progress(sum(len(r) for r in raws), "eval", "frame", enabled=progress)
    try:
        tracks = [
            evaluate_track(
                bundle,
                look,
                raw,
                size,
                name=f.name,
                seed=seed,
                detail=detail,
                fps=fps,
                progress=bar,
                sound=sound,
                flash_guard=flash_guard,
            )
            for f, raw, sound in zip(files, raws, sounds)
        ]
    finally:
        bar.close()
    silence = _silence_frames(bundle, look, size, fps, seed, detail)
    result = summarize(tracks, flicker(silence), fps)
    judged = [t.judged for t in tracks if t.judged is not None]
    if not judged:
        log.warning("every track is shorter than %g s: the judge scores nothing", MIN_SECONDS)
    result.update(combine(judged) if judged else dict.fromkeys(JUDGE_KEYS))
    result["silence_motion_de"] = round(silence_motion(silence, fps), 4)
    result.update(
        flash_guard=flash_guard,
        flashes_max_unguarded=max(t.unguarded[0] for t in tracks),
        flash_hazard_s_unguarded=round(sum(t.unguarded[1] for t in tracks), 4),
        guarded_frames=sum(t.guarded_frames for t in tracks),
    )
    gw, gh = generation_size(*size, short=detail)
    result.update(
        model=bundle.name,
        files=[str(f) for f in files],
        seconds=round(sum(len(t.given) for t in tracks) / fps, 1),
        size=f"{size[0]}x{size[1]}",
        painted_at=f"{gw}x{gh}",
        fps=fps,
        tracks={
            t.name: {
                "frames": len(t.given),
                "colorfulness": round(float(np.median(t.colour)), 2),
                **(t.judged.numbers if t.judged else {}),
            }
            for t in tracks
        },
    )
    _add_targets(result, {**TARGETS, **LOOK_TARGETS})
    return result, tracks


def _add_targets(result: dict, targets: dict) -> None:
    """The targets that apply to `result`, and whether each passed."""
    from synd.report import check_target

    result["targets"] = {k: v for k, v in targets.items() if k in result}
    result["passed"] = {k: check_target(result[k], v) for k, v in result["targets"].items()}


def evaluate_videos(
    videos: list[Path], audio: Path | None = None, progress: bool = True
) -> tuple[dict, list[JudgedTrack]]:
    """The judge's view of videos made by any program (see `synd.judge`).

    Each video is scored with its own soundtrack, or with `audio` when given (the song a
    capture was made to). Returns (result with the judge's keys at the top level, over
    all videos, and per video under ``tracks``; the judged tracks).
    """
    from synd.progress import Progress
    from synd.video import read_video_info

    judged = []
    for video in videos:
        try:
            frames = read_video_info(video).get("n_frames") or None
        except Exception:  # noqa: BLE001 - judge_video says what is wrong with it, in one line
            frames = None
        with Progress(frames, video.name[:30], "frame", enabled=progress) as bar:
            judged.append(judge_video(video, audio, progress=bar))
    result = combine(judged)
    result.update(
        videos=[str(v) for v in videos],
        audio=str(audio) if audio else None,
        seconds=round(sum(t.frames / t.fps for t in judged), 1),
        tracks={t.name: {"frames": t.frames, "fps": t.fps, **t.numbers} for t in judged},
    )
    _add_targets(result, LOOK_TARGETS)
    return result, judged


def write_eval_report(
    result: dict, tracks: list[TrackEval], out_dir: Path, bundle: ModelBundle, fps: float
) -> Path:
    """The HTML report (plots and a contact sheet) of an evaluation."""
    from synd.report import ReportData, write_report

    first = tracks[0]
    data = ReportData(
        targets=np.concatenate([t.given for t in tracks]),
        decoded=np.concatenate([t.decoded for t in tracks]),
        feature_names=list(bundle.features.names),
        sync_curve=np.asarray(result["sync_curve"]),
        sync_lags=sync_lags(MAX_LAG),
        frames_for_sheet=first.samples,
        sheet_labels=[f"{first.name[:18]} {s:.1f} s" for s in first.sample_times],
        onset=np.concatenate([t.onset for t in tracks]),
        change=np.concatenate([t.change for t in tracks]),
        fps=fps,
        title=f"synd eval: {bundle.name}",
        notes=[
            f"{len(tracks)} track(s), {result['seconds']} s, painted at {result['painted_at']} "
            f"for {result['size']} at {fps:g} fps",
            *[t.name for t in tracks],
        ],
        judged=[t.judged for t in tracks if t.judged is not None],
    )
    return write_report(out_dir, _shown(result), data)


def write_video_report(result: dict, judged: list[JudgedTrack], out_dir: Path) -> Path:
    """The HTML report of `evaluate_videos`: the numbers, a motion/onset plot and a
    contact sheet for each video."""
    from synd.report import ReportData, write_report

    data = ReportData(
        title="synd eval: " + ", ".join(t.name for t in judged),
        notes=[
            f"{len(judged)} video(s), {result['seconds']} s"
            + (
                f", scored with the sound of {result['audio']}"
                if result.get("audio")
                else ", each with its own soundtrack"
            )
        ],
        judged=judged,
        fps=judged[0].fps,
    )
    return write_report(out_dir, _shown(result), data)


def _shown(result: dict) -> dict:
    """The result's numbers for the report's table (lists and per-track details left out)."""
    return {k: v for k, v in result.items() if k not in ("sync_curve", "tracks", "files", "videos", "passed")}


def print_summary(result: dict) -> str:
    """A text table of the numbers, with targets and pass/miss; one column per track too
    when there are two to `SIDE_BY_SIDE` (a terminal's width)."""
    keys = [
        k
        for k in (
            *TARGETS,
            *JUDGE_KEYS,
            "silence_motion_de",
            "flashes_max_unguarded",
            "flash_hazard_s_unguarded",
            "guarded_frames",
        )
        if k in result
    ]
    tracks = result.get("tracks") or {}
    side = list(tracks) if 1 < len(tracks) <= SIDE_BY_SIDE else []
    head = f"  {'':4} {'':<17} {'all':>10}" + "".join(f" {n[:12]:>12}" for n in side)
    lines = [head + "   target"] if side else []
    for key in keys:
        ok = result.get("passed", {}).get(key)
        mark = "ok  " if ok else "miss" if ok is False else "    "
        target = result.get("targets", {}).get(key)
        cells = "".join(f" {_cell(tracks[n].get(key)):>12}" for n in side)
        lines.append(
            f"  {mark} {key:<17} {_cell(result[key]):>10}{cells}"
            + (f"   target {target}" if target is not None else "")
        )
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
