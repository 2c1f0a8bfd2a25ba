"""`synd eval`: does the picture see the sound? Measured on audio of your choice.

The frames are made exactly as `synd render` makes them (the shared frame loop at the
generation size of `--size`, with the preset's look) but are not encoded. From them:

* ``sound_r2``: R^2 of the model's own decoder reading back, from the 8-bit frames, the
  normalised features each frame was painted from (after the look's smoothing; a hue
  turn is undone first). The first `WARMUP_FRAMES` of each track are left out.
* ``probe_r2``: R^2 of a fresh ridge-regression probe reading the normalised features
  from 16x16 thumbnails: is the sound visible at large scale, not only in fine texture?
  Fitted on the first half of each track, scored on the second.
* ``sync_corr``, ``sync_lag_frames``: peak correlation between the audio onset envelope
  and the frame-to-frame change over lags of +-15 frames (curves of all tracks averaged,
  weighted by length), and its lag (positive: the picture moves after the sound).
* ``colorfulness``: Hasler-Suesstrunk colourfulness, median over all frames.
* ``flicker_silence``: mean absolute frame-to-frame change (0-1 scale) over 5 s of
  digital silence, after 1 s of silence to settle from the starting picture.

Frames are processed as they are made, so memory does not grow with the audio's length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from synd.bundle import ModelBundle
from synd.frameloop import to_rgb_uint8
from synd.listen import decode_pictures
from synd.metrics import r2_score
from synd.presets import Look
from synd.quality import colorfulness, flicker, frame_change, probe_r2, sync, sync_lags, thumbnails
from synd.render import GENERATION_SHORT_SIDE, generation_size, render_loop, song_features

log = logging.getLogger(__name__)

WARMUP_FRAMES = 8
MAX_LAG = 15
SILENCE_SECONDS = 5.0
SETTLE_SECONDS = 1.0
SHEET_FRAMES = 16
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


@dataclass
class TrackEval:
    """Per-frame measurements of one track (all arrays have one row per frame)."""

    name: str
    given: np.ndarray       # (n, F) normalised features each frame was painted from
    decoded: np.ndarray     # (n, F) the decoder's reading of each frame
    normalised: np.ndarray  # (n, F) normalised raw features (the probe's targets)
    thumbs: np.ndarray      # (n, 768) 16x16 thumbnails
    onset: np.ndarray       # (n,) raw onset envelope
    change: np.ndarray      # (n,) frame-to-frame change, change[0] = 0
    colour: np.ndarray      # (n,) colourfulness
    samples: list[np.ndarray] = field(default_factory=list)  # frames for a contact sheet
    sample_times: list[float] = field(default_factory=list)


def evaluate_track(bundle: ModelBundle, look: Look, raw: np.ndarray, size: tuple[int, int],
                   name: str = "", seed: int = 0, detail: int = GENERATION_SHORT_SIDE,
                   fps: float = 30.0, progress=None) -> TrackEval:
    """Run one track's raw features (n, F) through the frame loop and measure every frame."""
    loop = render_loop(bundle, look, size, seed, detail)
    n = len(raw)
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
        """The rendered frames, measured on the way to the decoder."""
        for i, row in enumerate(raw):
            rgb = to_rgb_uint8(loop.step(row))
            given.append(loop.given.cpu().numpy())
            batch.append(rgb)
            if i in sample_at:
                samples.append(rgb)
                sample_times.append(i / fps)
            if len(batch) == _BATCH or i == n - 1:
                measure()
            if progress is not None:
                progress.update()
            yield rgb

    decoded = bundle.stats.normalize(decode_pictures(bundle, frames(), bfloat16=False,
                                                     detail=detail, hue=look.hue))
    onset = raw[:, bundle.features.names.index("onset")] if n else np.zeros(0)
    return TrackEval(name=name, given=np.asarray(given), decoded=decoded,
                     normalised=bundle.stats.normalize(raw), thumbs=np.concatenate(thumbs),
                     onset=np.asarray(onset, np.float64), change=np.concatenate(change),
                     colour=np.concatenate(colour), samples=samples, sample_times=sample_times)


def silence_flicker(bundle: ModelBundle, look: Look, size: tuple[int, int], fps: float,
                    seed: int = 0, detail: int = GENERATION_SHORT_SIDE) -> float:
    """Mean frame-to-frame change over `SILENCE_SECONDS` of digital silence (0-1 scale)."""
    from synd.features import FeatureExtractor

    cfg = replace(bundle.features, fps=fps)
    silence = np.zeros(int((SETTLE_SECONDS + SILENCE_SECONDS) * cfg.sample_rate), np.float32)
    raw = FeatureExtractor(cfg).offline(silence)
    loop = render_loop(bundle, look, size, seed, detail)
    settle = int(round(SETTLE_SECONDS * fps))
    frames = [to_rgb_uint8(loop.step(row)) for row in raw]
    return flicker(frames[settle:])


def summarize(tracks: list[TrackEval], flicker_silence: float, fps: float) -> dict:
    """The metrics over all tracks; see the module docstring."""
    if not tracks or all(len(t.given) <= WARMUP_FRAMES for t in tracks):
        raise ValueError("the audio is too short to evaluate (need more than "
                         f"{WARMUP_FRAMES / fps:.2f} s)")
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


def evaluate(bundle: ModelBundle, look: Look, files: list[Path], size: tuple[int, int] = (1280, 720),
             fps: float = 30.0, seed: int = 0, detail: int = GENERATION_SHORT_SIDE,
             progress: bool = True) -> tuple[dict, list[TrackEval]]:
    """Evaluate on `files`; returns (result with the metric keys at the top level, tracks)."""
    from tqdm import tqdm

    raws = [song_features(f, bundle, fps) for f in files]
    bar = tqdm(total=sum(len(r) for r in raws), unit="frame", desc="eval", disable=not progress,
               dynamic_ncols=True)
    try:
        tracks = [evaluate_track(bundle, look, raw, size, name=f.name, seed=seed, detail=detail,
                                 fps=fps, progress=bar) for f, raw in zip(files, raws)]
    finally:
        bar.close()
    result = summarize(tracks, silence_flicker(bundle, look, size, fps, seed, detail), fps)
    gw, gh = generation_size(*size, short=detail)
    result.update(
        model=bundle.name, files=[str(f) for f in files],
        seconds=round(sum(len(t.given) for t in tracks) / fps, 1),
        size=f"{size[0]}x{size[1]}", painted_at=f"{gw}x{gh}", fps=fps,
        tracks={t.name: {"frames": len(t.given),
                         "colorfulness": round(float(np.median(t.colour)), 2)} for t in tracks},
        targets=dict(TARGETS),
    )
    from synd.report import check_target

    result["passed"] = {k: check_target(result[k], v) for k, v in TARGETS.items()}
    return result, tracks


def write_eval_report(result: dict, tracks: list[TrackEval], out_dir: Path, bundle: ModelBundle,
                      fps: float) -> Path:
    """The HTML report (plots and a contact sheet) of an evaluation."""
    from synd.report import ReportData, write_report

    first = tracks[0]
    data = ReportData(
        targets=np.concatenate([t.given for t in tracks]),
        decoded=np.concatenate([t.decoded for t in tracks]),
        feature_names=list(bundle.features.names),
        sync_curve=np.asarray(result["sync_curve"]), sync_lags=sync_lags(MAX_LAG),
        frames_for_sheet=first.samples,
        sheet_labels=[f"{first.name[:18]} {s:.1f} s" for s in first.sample_times],
        onset=np.concatenate([t.onset for t in tracks]),
        change=np.concatenate([t.change for t in tracks]),
        fps=fps, title=f"synd eval: {bundle.name}",
        notes=[f"{len(tracks)} track(s), {result['seconds']} s, painted at {result['painted_at']} "
               f"for {result['size']} at {fps:g} fps", *[t.name for t in tracks]],
    )
    shown = {k: v for k, v in result.items() if k not in ("sync_curve", "tracks", "files", "passed")}
    return write_report(out_dir, shown, data)


def print_summary(result: dict) -> str:
    """A small text table of the metrics with their targets and pass/miss."""
    lines = []
    for key, target in result["targets"].items():
        ok = result["passed"].get(key)
        mark = "ok  " if ok else "miss" if ok is False else "n/a "
        lines.append(f"  {mark} {key:<16} {result[key]!s:>10}   target {target}")
    return "\n".join(lines)
