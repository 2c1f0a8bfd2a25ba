"""The evaluation report: one self-contained folder with index.html and PNG plots.

`write_report(out_dir, result, data)` writes

* ``index.html``: a table of every metric in `result` (with pass/miss against the
  optional ``result["targets"]`` thresholds), then the plots below; all text escaped;
* ``features.png``: target features and the decoder's read-back as two time x feature
  heatmaps on one colour scale;
* ``feature_lines.png``: loudness, onset, the lowest and the highest band over time,
  target vs read-back;
* ``contact_sheet.png``: sample frames (via `synd.sheets`);
* ``sync_curve.png``: onset/frame-change correlation against lag, peak marked;
* ``sync_time.png``: onset envelope and frame change over a short stretch;
* per judged clip ``k`` (`synd.judge`): its numbers, ``judge_motion_k.png`` (the
  picture's motion against the sound's onsets and the flash count over the whole clip)
  and ``judge_sheet_k.png`` (frames spread over the clip).

A plot is left out (and not referenced) when `ReportData` lacks its data. PNGs are
written first, each atomically, and index.html last through a temporary file and a
rename, so a report that fails part-way never leaves a half-written index.html (an older
one stays as it was). matplotlib is imported only when plotting, and drawn with its Agg
canvas directly (no pyplot, so the process's backend is left alone): ``import
synd.report`` stays cheap.
"""

from __future__ import annotations

import html
import io
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synd.files import atomic_write_bytes
from synd.quality import r2_score

__all__ = ["ReportData", "write_report", "check_target", "parse_target"]

_OPS = (">=", "<=", ">", "<")
_ABS = "|x|"


@dataclass
class ReportData:
    """Arrays behind the report's plots; every field may be left out (its plot is skipped).

    * ``targets``, ``decoded``: (n, F) normalised sound features per frame and what the
      decoder read back from the frames, one row per frame, same shape.
    * ``feature_names``: F column names (e.g. ``FeatureConfig.names``); defaults to
      ``f0 .. f{F-1}``. Lines are drawn for ``loudness``, ``onset`` and the first and last
      of the other columns (the lowest and highest band).
    * ``sync_curve``: correlation per lag as returned by `synd.quality.sync`;
      ``sync_lags`` the matching lags in frames (default: centred, ``-m .. m``).
    * ``frames_for_sheet``: (H, W, 3) uint8 RGB frames of one size for the contact sheet;
      ``sheet_labels`` optional captions, one per frame.
    * ``onset``, ``change``: (n,) onset envelope and `synd.quality.frame_change`, for the
      time plot.
    * ``fps``: frames per second, to label time axes in seconds and lags in milliseconds.
    * ``title``: the page heading; ``notes``: extra lines shown under it (e.g. model and
      audio names).
    * ``judged``: `synd.judge.JudgedTrack` objects, one section each.
    """

    targets: np.ndarray | None = None
    decoded: np.ndarray | None = None
    feature_names: list[str] | None = None
    sync_curve: np.ndarray | None = None
    sync_lags: np.ndarray | None = None
    frames_for_sheet: list[np.ndarray] = field(default_factory=list)
    sheet_labels: list[str] | None = None
    onset: np.ndarray | None = None
    change: np.ndarray | None = None
    fps: float = 30.0
    title: str = "synd eval"
    notes: list[str] = field(default_factory=list)
    judged: list[Any] = field(default_factory=list)


# ----------------------------------------------------------------------------- targets


def _range(target: Any) -> tuple[float, float] | None:
    """``"lo .. hi"`` as (lo, hi); None for any other form."""
    if not (isinstance(target, str) and ".." in target):
        return None
    lo, _, hi = target.partition("..")
    try:
        return float(lo), float(hi)
    except ValueError:
        raise ValueError(f"target {target!r}: expected 'low .. high' with two numbers") from None


def parse_target(target: Any) -> tuple[str, float]:
    """A threshold as (operator, value).

    Accepted forms: a number ``x`` (meaning ``>= x``, higher is better), a string such as
    ``"<= 0.02"`` or ``">=0.5"``, or a pair ``["<=", 0.02]``. Operators: >=, <=, >, <.
    A string may start with ``|x|`` (``"|x| <= 1"``): the value's magnitude is compared.
    A range ``"1.5 .. 8"`` (both ends included) is returned as ``(">=", low)``; use
    `check_target` to test it.
    """
    bounds = _range(target)
    if bounds is not None:
        return ">=", bounds[0]
    if isinstance(target, str) and target.strip().startswith(_ABS):
        return parse_target(target.strip()[len(_ABS) :])
    if isinstance(target, numbers.Real) and not isinstance(target, bool):
        return ">=", float(target)
    if isinstance(target, str):
        s = target.strip()
        for op in _OPS:  # two-character operators are tried first
            if s.startswith(op):
                try:
                    return op, float(s[len(op) :])
                except ValueError:
                    break
        raise ValueError(
            f"target {target!r}: expected a number or '<op> <number>' with op one of {', '.join(_OPS)}"
        )
    if isinstance(target, (list, tuple)) and len(target) == 2 and target[0] in _OPS:
        value = target[1]
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return target[0], float(value)
    raise ValueError(f"target {target!r}: expected a number, '<op> <number>' or [op, number]")


def check_target(value: Any, target: Any) -> bool | None:
    """True if `value` meets `target` (see `parse_target`), False if not, None if `value`
    is not a finite number (it can neither pass nor miss)."""
    op, limit = parse_target(target)
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        return None
    bounds = _range(target)
    if bounds is not None:
        return bounds[0] <= value <= bounds[1]  # type: ignore[operator]  # typeshed's Real has no reflected <=
    if isinstance(target, str) and target.strip().startswith(_ABS):
        value = abs(value)
    return {">=": value >= limit, "<=": value <= limit, ">": value > limit, "<": value < limit}[op]


# ----------------------------------------------------------------------------- helpers


def _mpl_text(s: str) -> str:
    """Text for matplotlib that is never parsed as mathtext."""
    return str(s).replace("$", r"\$")


def _format_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return f"{float(v):.4g}"
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, default=str)
    except (TypeError, ValueError):
        return str(v)


def _check_data(data: ReportData) -> None:
    """Reject inconsistent inputs before anything is written."""
    if (data.targets is None) != (data.decoded is None):
        raise ValueError("ReportData: give both targets and decoded, or neither")
    if data.targets is not None:
        t, d = np.asarray(data.targets), np.asarray(data.decoded)
        if t.ndim != 2 or t.shape != d.shape or len(t) == 0:
            raise ValueError(
                f"ReportData: targets and decoded must be (n, F) of one shape, got {t.shape} and {d.shape}"
            )
        if data.feature_names is not None and len(data.feature_names) != t.shape[1]:
            raise ValueError(f"ReportData: {len(data.feature_names)} feature names for {t.shape[1]} columns")
    if data.sync_curve is not None:
        c = np.asarray(data.sync_curve)
        if c.ndim != 1 or len(c) == 0:
            raise ValueError(f"ReportData: sync_curve must be a non-empty (L,) array, got {c.shape}")
        if data.sync_lags is None and len(c) % 2 == 0:
            raise ValueError("ReportData: an even-length sync_curve needs sync_lags")
        if data.sync_lags is not None and np.shape(data.sync_lags) != c.shape:
            raise ValueError("ReportData: sync_lags and sync_curve differ in length")
    if (data.onset is None) != (data.change is None):
        raise ValueError("ReportData: give both onset and change, or neither")
    # (change is given with onset, as just checked)
    if (
        data.onset is not None
        and data.change is not None
        and (np.ndim(data.onset) != 1 or len(data.onset) < 2 or np.shape(data.onset) != np.shape(data.change))
    ):
        raise ValueError(
            f"ReportData: onset and change must be (n,) arrays of one length "
            f"n >= 2, got {np.shape(data.onset)} and {np.shape(data.change)}"
        )
    frames = data.frames_for_sheet
    if frames:
        shape = np.shape(frames[0])
        for k, f in enumerate(frames):
            f = np.asarray(f)
            if f.dtype != np.uint8 or f.ndim != 3 or f.shape[-1] != 3 or f.shape != shape:
                raise ValueError(
                    f"ReportData: sheet frame {k} must be (H, W, 3) uint8 like "
                    f"frame 0 {shape}, got {f.shape} {f.dtype}"
                )
        if data.sheet_labels is not None and len(data.sheet_labels) != len(frames):
            raise ValueError("ReportData: one sheet label per frame")
    if not (isinstance(data.fps, numbers.Real) and data.fps > 0):
        raise ValueError(f"ReportData: fps must be positive, got {data.fps!r}")


# ----------------------------------------------------------------------------- plots


def _figure(figsize: tuple[float, float]):
    """A matplotlib Figure drawn by the Agg canvas: no pyplot, no global backend change."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def _line_columns(names: list[str]) -> list[int]:
    """Columns for the line plot: loudness, onset, the lowest and highest band."""
    special = [names.index(n) for n in ("loudness", "onset") if n in names]
    bands = [i for i, n in enumerate(names) if n not in ("loudness", "onset")]
    picks = special + ([bands[0]] if bands else []) + ([bands[-1]] if len(bands) > 1 else [])
    return sorted(set(picks), key=picks.index)


def _plot_features(out: Path, data: ReportData, names: list[str]) -> list[tuple[str, str]]:
    t = np.asarray(data.targets, dtype=np.float64)
    d = np.asarray(data.decoded, dtype=np.float64)
    n, f = t.shape
    seconds = n / data.fps
    finite = np.concatenate([t[np.isfinite(t)], d[np.isfinite(d)]])
    v = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    v = v if v > 0 else 1.0

    fig = _figure((11, 7))
    axes = fig.subplots(2, 1, sharex=True)
    panels = ((axes[0], t, "target features"), (axes[1], d, "read back from the frames"))
    for ax, arr, label in panels:
        im = ax.imshow(
            arr.T,
            aspect="auto",
            origin="lower",
            cmap="coolwarm",
            vmin=-v,
            vmax=v,
            extent=(0, seconds, -0.5, f - 0.5),
            interpolation="nearest",
        )
        ax.set_title(_mpl_text(label))
        ax.set_ylabel("feature")
        step = max(1, -(-f // 24))
        ticks = list(range(0, f, step))
        ax.set_yticks(ticks)
        ax.set_yticklabels([_mpl_text(names[i]) for i in ticks], fontsize=7)
    axes[1].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes, label="normalised value", shrink=0.8)
    _save(fig, out / "features.png")
    files = [
        (
            "features.png",
            "Target features (top) and what the decoder reads back from "
            "the frames (bottom), time x feature, one colour scale.",
        )
    ]

    cols = _line_columns(names)
    if cols:
        time = np.arange(n) / data.fps
        fig = _figure((11, 2.1 * len(cols)))
        axes = fig.subplots(len(cols), 1, sharex=True, squeeze=False)
        for ax, j in zip(axes[:, 0], cols):
            ax.plot(time, t[:, j], lw=0.9, color="black", label="target")
            ax.plot(time, d[:, j], lw=0.9, color="tab:orange", alpha=0.85, label="read back")
            try:
                score = f"R² {r2_score(t[:, [j]], d[:, [j]]):.3f}"
            except ValueError:
                score = "target constant"
            ax.set_title(_mpl_text(f"{names[j]} ({score})"), fontsize=9, loc="left")
            ax.legend(loc="upper right", fontsize=7)
        axes[-1, 0].set_xlabel("time (s)")
        _save(fig, out / "feature_lines.png")
        files.append(("feature_lines.png", "Selected features over time: target vs read back."))
    return files


def _plot_sync(out: Path, data: ReportData) -> list[tuple[str, str]]:
    files = []
    if data.sync_curve is not None:
        curve = np.asarray(data.sync_curve, dtype=np.float64)
        m = (len(curve) - 1) // 2
        lags = np.asarray(data.sync_lags) if data.sync_lags is not None else np.arange(-m, m + 1)
        fig = _figure((8, 3.6))
        ax = fig.subplots()
        ax.axvline(0, color="grey", lw=0.8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.plot(lags, curve, marker=".", color="tab:blue")
        if np.isfinite(curve).any():
            best = int(np.nanargmax(curve))
            ms = 1000.0 * lags[best] / data.fps
            ax.plot([lags[best]], [curve[best]], "o", color="tab:red", ms=9, mfc="none")
            ax.annotate(
                f"peak r = {curve[best]:.3f} at {int(lags[best])} frames ({ms:.0f} ms)",
                (lags[best], curve[best]),
                textcoords="offset points",
                xytext=(8, -14),
                fontsize=9,
                color="tab:red",
            )
        ax.set_xlabel("lag (frames; > 0: the picture changes after the sound)")
        ax.set_ylabel("correlation")
        ax.set_title("onset envelope vs frame change")
        _save(fig, out / "sync_curve.png")
        files.append(
            (
                "sync_curve.png",
                "Correlation of the onset envelope with the frame change at each lag; the peak is circled.",
            )
        )
    if data.onset is not None:
        onset = np.asarray(data.onset, dtype=np.float64)
        change = np.asarray(data.change, dtype=np.float64)
        n = len(onset)
        span = max(1, min(n, int(round(10 * data.fps))))
        # The stretch of `span` frames with the most onset energy.
        energy = np.concatenate([[0.0], np.cumsum(np.nan_to_num(onset))])
        start = int(np.argmax(energy[span:] - energy[:-span])) if n > span else 0
        sl = slice(start, start + span)
        time = np.arange(start, start + span) / data.fps

        change = change.copy()
        change[0] = np.nan  # frame 0 has no previous frame

        def unit(x: np.ndarray) -> np.ndarray:
            """Min-max scaled to 0..1 within the window (a flat series stays at 0)."""
            if not np.isfinite(x).any():
                return x
            lo, hi = np.nanmin(x), np.nanmax(x)
            return (x - lo) / (hi - lo) if hi > lo else x - lo

        fig = _figure((11, 3.2))
        ax = fig.subplots()
        ax.plot(time, unit(onset[sl]), lw=1.0, color="black", label="onset envelope")
        ax.plot(time, unit(change[sl]), lw=1.0, color="tab:green", alpha=0.85, label="frame change")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("each scaled to 0..1")
        ax.legend(loc="upper right", fontsize=8)
        _save(fig, out / "sync_time.png")
        files.append(
            (
                "sync_time.png",
                f"Onset envelope and frame change over the {span / data.fps:.1f} s with the most onsets.",
            )
        )
    return files


def _plot_judged(out: Path, k: int, track: Any) -> str:
    """Motion against onsets, and the flash count, over one judged clip; the file name."""
    fps = track.fps
    n = track.frames
    time = np.arange(n) / fps
    smooth = max(1, int(round(0.2 * fps)))
    kernel = np.ones(smooth) / smooth
    fig = _figure((11, 4.2))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    onset = np.convolve(np.asarray(track.onset[:n], np.float64), kernel, mode="same")
    scale = float(np.percentile(onset, 99)) or 1.0
    motion = np.asarray(track.motion[:n], np.float64)
    top.plot(time, motion, lw=0.8, color="tab:green", label="motion (delta-E per frame)")
    top.set_ylabel("motion (delta-E)")
    settled = motion[int(2 * fps) :] if n > 4 * fps else motion  # the first frames may jump
    if len(settled) and np.isfinite(settled).all():
        top.set_ylim(0, max(5.0, 1.15 * float(settled.max())))
    top.axhline(2.3, color="grey", lw=0.6, ls=":")
    twin = top.twinx()
    twin.plot(time, onset / scale, lw=0.8, color="black", alpha=0.6, label="onsets (0.2 s)")
    twin.set_ylabel("onset envelope (scaled)")
    twin.set_ylim(bottom=0)
    top.set_title(_mpl_text(f"{track.name}: motion against the sound's onsets"))
    handles = top.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    top.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=8)
    flashes = np.asarray(track.flashes[:n], np.float64)
    bottom.plot(np.arange(len(flashes)) / fps, flashes, lw=0.8, color="tab:red")
    bottom.axhline(3, color="tab:red", lw=0.6, ls=":")
    bottom.set_ylabel("flashes / s")
    bottom.set_xlabel("time (s)")
    name = f"judge_motion_{k}.png"
    _save(fig, out / name)
    return name


def _judged_sections(out: Path, data: ReportData, targets: dict) -> list[tuple[str, list[str]]]:
    sections = []
    for k, track in enumerate(data.judged):
        body = [
            "<table><tr><th>number</th><th>value</th><th>target</th><th></th></tr>",
            *_metric_rows(
                dict(track.numbers), {key: v for key, v in targets.items() if key in track.numbers}
            ),
            "</table>",
        ]
        body.append(
            _figure_html(
                _plot_judged(out, k, track),
                "Motion per frame (green; the dotted line is the smallest "
                "difference a viewer notices) against the sound's onsets "
                "(black), and the flash count (red; more than 3 is a hazard).",
            )
        )
        if track.sheet:
            from synd.sheets import save_contact_sheet

            name = f"judge_sheet_{k}.png"
            save_contact_sheet(
                track.sheet,
                out / name,
                columns=min(4, len(track.sheet)),
                labels=[f"{t:.1f} s" for t in track.sheet_times],
            )
            body.append(_figure_html(name, f"{len(track.sheet)} frames spread over the clip."))
        sections.append((f"What a viewer sees: {track.name} ({track.frames / track.fps:.1f} s)", body))
    return sections


# ----------------------------------------------------------------------------- html


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #176b2c; font-weight: bold; }
.miss { color: #b3261e; font-weight: bold; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _metric_rows(result: dict, targets: dict) -> list[str]:
    e = html.escape
    rows = []
    names = list(result) + [k for k in targets if k not in result]
    for name in names:
        if name == "targets":
            continue
        value = result.get(name)
        if name not in result:
            cells = '<td class="num">(not measured)</td>'
        else:
            numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
            cls = ' class="num"' if numeric else ""
            cells = f"<td{cls}>{e(_format_value(value))}</td>"
        if name in targets:
            op, limit = parse_target(targets[name])
            ok = check_target(value, targets[name])
            verdict = {
                True: '<td class="pass">pass</td>',
                False: '<td class="miss">miss</td>',
                None: "<td>n/a</td>",
            }[ok]
            shown = targets[name] if _range(targets[name]) else f"{op} {limit:g}"
            cells += f'<td class="num">{e(shown)}</td>{verdict}'
        else:
            cells += "<td></td><td></td>"
        rows.append(f"<tr><th>{e(str(name))}</th>{cells}</tr>")
    return rows


def _per_feature(t: np.ndarray, d: np.ndarray) -> list[tuple[float | None, float | None]]:
    """(R^2, Pearson r) of each column's read-back; None where the target is constant."""
    rows: list[tuple[float | None, float | None]] = []
    for j in range(t.shape[1]):
        try:
            r2 = r2_score(t[:, [j]], d[:, [j]])
        except ValueError:
            rows.append((None, None))
            continue
        tc, dc = t[:, j] - t[:, j].mean(), d[:, j] - d[:, j].mean()
        den = math.sqrt(float((tc * tc).sum() * (dc * dc).sum()))
        rows.append((r2, float((tc * dc).sum() / den) if den > 0 else 0.0))
    return rows


def _feature_table(names: list[str], stats: list[tuple[float | None, float | None]]) -> str:
    e = html.escape
    out = ["<table><tr><th>feature</th><th>R²</th><th>correlation</th></tr>"]
    for name, (r2, r) in zip(names, stats):
        cells = (
            '<td class="num" colspan="2">target constant</td>'
            if r2 is None
            else f'<td class="num">{r2:.3f}</td><td class="num">{r:.3f}</td>'
        )
        out.append(f"<tr><th>{e(name)}</th>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figure_html(src: str, caption: str) -> str:
    e = html.escape
    return (
        f'<figure><img src="{e(src, quote=True)}" alt="{e(caption, quote=True)}">'
        f"<figcaption>{e(caption)}</figcaption></figure>"
    )


def _html(result: dict, data: ReportData, sections: list[tuple[str, list[str]]]) -> str:
    """The page: title, notes, metric table, then each (heading, ready-made HTML parts)."""
    e = html.escape
    targets = result.get("targets") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(data.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(data.title)}</h1>",
    ]
    parts += [f"<p>{e(str(line))}</p>" for line in data.notes]
    parts += [
        "<h2>Metrics</h2>",
        "<table><tr><th>metric</th><th>value</th><th>target</th><th></th></tr>",
        *_metric_rows(result, targets),
        "</table>",
    ]
    for heading, body in sections:
        parts.append(f"<h2>{e(heading)}</h2>")
        parts += body
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- entry point


def write_report(out_dir: str | os.PathLike, result: dict, extras: ReportData | None = None) -> Path:
    """Write the report folder `out_dir` (created if needed); returns the index.html path.

    `result` maps metric names to values (numbers, or anything JSON-able, shown as text);
    its optional key ``"targets"`` maps metric names to thresholds (see `parse_target`:
    a bare number means "at least"), shown per row as pass, miss or n/a (value missing or
    not finite). `extras` holds the arrays for the plots (see `ReportData`). Inputs are
    checked before anything is written; ValueError names the problem.
    """
    if not isinstance(result, dict):
        raise ValueError(f"result must be a dict, got {type(result).__name__}")
    data = extras if extras is not None else ReportData()
    _check_data(data)
    targets = result.get("targets") or {}
    if not isinstance(targets, dict):
        raise ValueError(
            f"result['targets'] must be a dict of name -> threshold, got {type(targets).__name__}"
        )
    for target in targets.values():
        parse_target(target)  # fail early on a malformed threshold
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    sections: list[tuple[str, list[str]]] = []
    if data.targets is not None:
        t = np.asarray(data.targets, dtype=np.float64)
        d = np.asarray(data.decoded, dtype=np.float64)
        names = (
            [str(n) for n in data.feature_names]
            if data.feature_names is not None
            else [f"f{i}" for i in range(t.shape[1])]
        )
        body = [_figure_html(src, cap) for src, cap in _plot_features(out, data, names)]
        body.append(_feature_table(names, _per_feature(t, d)))
        sections.append(("Does the picture carry the sound?", body))
    if data.frames_for_sheet:
        from synd.sheets import save_contact_sheet

        frames = [np.asarray(fr) for fr in data.frames_for_sheet]
        labels = [str(s) for s in data.sheet_labels] if data.sheet_labels is not None else None
        save_contact_sheet(frames, out / "contact_sheet.png", columns=min(8, len(frames)), labels=labels)
        sections.append(("Frames", [_figure_html("contact_sheet.png", f"{len(frames)} sample frames.")]))
    sync_figures = _plot_sync(out, data)
    if sync_figures:
        sections.append(
            ("Is the picture in time with the sound?", [_figure_html(src, cap) for src, cap in sync_figures])
        )

    sections += _judged_sections(out, data, targets)
    index = out / "index.html"
    atomic_write_bytes(index, _html(result, data, sections).encode("utf-8"))
    return index
