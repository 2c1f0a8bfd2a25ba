"""A reproducible, synthesized music corpus: no downloads, numpy + scipy only.

The shipped models learn to turn sound features (log-mel bands, loudness, onset
strength) into pictures and to read them back, and they must generalise to music they
never saw. So the corpus is built for coverage rather than beauty: every seed draws a
style (four-on-the-floor, breakbeat, hip-hop, rock, chiptune, lo-fi, minimal, ambient,
experimental), a tempo (70-175 BPM), a key and scale, an instrumentation (analog-style
drums, bass lines, pads and stabs in several waveforms, arpeggios and leads, plucked
strings, FM bells, noise sweeps and chirps), an arrangement with intros, breakdowns,
build-ups, drops, quiet passages and silences, a stereo image, a room and a master
(dark, bright, squashed, dynamic). Everything is drawn from
``numpy.random.default_rng(seed)`` so a seed always gives the same samples.

Command line::

    python -m synd.corpus OUT_DIR --tracks 20 --duration 30 --seed 0
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from scipy import signal

from synd.files import atomic_write_bytes, write_json

__all__ = ["PEAK", "STYLES", "demo_clip", "main", "synth_track", "track_seed", "write_corpus"]

#: Peak level of every rendered track (leaves headroom below full scale).
PEAK = 0.9

#: Styles a seed can draw, with their relative probabilities.
STYLES: dict[str, float] = {
    "four_floor": 3.0,
    "breakbeat": 2.0,
    "hiphop": 2.0,
    "rock": 2.0,
    "chip": 1.5,
    "lofi": 1.5,
    "minimal": 1.5,
    "ambient": 1.5,
    "experimental": 1.5,
}

# Tempo range (BPM) per style; together they span 70-175.
_TEMPO: dict[str, tuple[float, float]] = {
    "four_floor": (118, 136),
    "breakbeat": (140, 175),
    "hiphop": (70, 98),
    "rock": (95, 165),
    "chip": (120, 175),
    "lofi": (70, 92),
    "minimal": (112, 128),
    "ambient": (70, 110),
    "experimental": (70, 175),
}

_SCALES: dict[str, list[int]] = {
    "major": [0, 2, 4, 5, 7, 9, 11],
    "minor": [0, 2, 3, 5, 7, 8, 10],
    "dorian": [0, 2, 3, 5, 7, 9, 10],
    "phrygian": [0, 1, 3, 5, 7, 8, 10],
    "mixolydian": [0, 2, 4, 5, 7, 9, 10],
    "harmonic_minor": [0, 2, 3, 5, 7, 8, 11],
    "pentatonic": [0, 3, 5, 7, 10],
    "whole_tone": [0, 2, 4, 6, 8, 10],
}

# Chord roots as scale degrees, looped over the track.
_PROGRESSIONS: list[list[int]] = [
    [0, 5, 3, 4],
    [0, 3, 4, 4],
    [5, 3, 0, 4],
    [0, 0, 3, 4],
    [0, 6, 5, 6],
    [0, 4, 5, 3],
    [0, 2, 3, 1],
    [0, 0, 0, 0],
    [0, 3, 0, 4],
    [1, 4, 0, 0],
]

# 16-step drum patterns per style: lists of alternatives, "x" = hit, "o" = ghost note.
_PATTERNS: dict[str, dict[str, list[str]]] = {
    "four_floor": {
        "kick": ["x...x...x...x..."],
        "snare": ["....x.......x...", "................"],
        "clap": ["....x.......x...", "................"],
        "hat": ["..x...x...x...x.", "xoxoxoxoxoxoxoxo", "..x...x...x...xo"],
        "open": ["..x...x...x...x.", "................"],
    },
    "minimal": {
        "kick": ["x...x...x...x..."],
        "snare": ["................", "............x..."],
        "clap": ["....x.......x...", "................"],
        "hat": ["..x...x...x...x.", "..xo..x...xo..x."],
        "open": ["................", "......x.......x."],
    },
    "breakbeat": {
        "kick": ["x.........x.....", "x.x.......x.....", "x......x..x....."],
        "snare": ["....x.......x...", "....x..o.o..x..o"],
        "clap": ["................"],
        "hat": ["x.x.x.x.x.x.x.x.", "xoxoxoxoxoxoxoxo"],
        "open": ["................", "..............x."],
    },
    "hiphop": {
        "kick": ["x......x..x.....", "x.....x...x..x..", "x..x......x....."],
        "snare": ["....x.......x...", "....x.......x..o"],
        "clap": ["................", "....x.......x..."],
        "hat": ["x.x.x.x.x.x.x.x.", "x.xox.x.x.xox.x."],
        "open": ["................"],
    },
    "lofi": {
        "kick": ["x......x..x.....", "x.........x....."],
        "snare": ["....x.......x..."],
        "clap": ["................"],
        "hat": ["x.x.x.x.x.x.x.x.", "x.x.x.xox.x.x.xo"],
        "open": ["................"],
    },
    "rock": {
        "kick": ["x.......x.......", "x.....x.x.......", "x.x.....x.x....."],
        "snare": ["....x.......x...", "....x.......x.oo"],
        "clap": ["................"],
        "hat": ["x.x.x.x.x.x.x.x.", "x.x.x.x.x.x.x.x."],
        "open": ["................", "x..............."],
    },
    "chip": {
        "kick": ["x.......x.......", "x...x...x...x..."],
        "snare": ["....x.......x...", "....x..x....x..."],
        "clap": ["................"],
        "hat": ["xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x."],
        "open": ["................"],
    },
}


def _midi_hz(note: float | np.ndarray) -> Any:
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


# -- oscillators, envelopes, filters -------------------------------------------------------


def _polyblep(t: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """PolyBLEP correction that removes most aliasing from a naive saw/square."""
    out = np.zeros_like(t)
    lo = t < dt
    x = t[lo] / dt[lo]
    out[lo] = x + x - x * x - 1.0
    hi = t > 1.0 - dt
    x = (t[hi] - 1.0) / dt[hi]
    out[hi] = x * x + x + x + 1.0
    return out


def _osc(wave: str, freq: float | np.ndarray, n: int, sr: int, phase: float = 0.0) -> np.ndarray:
    """Oscillator: sine, triangle, saw, square or pulse (25 %), band-limited with PolyBLEP."""
    if np.ndim(freq) == 0:
        cycles = phase + float(freq) * np.arange(n) / sr
        dt = np.full(n, float(freq) / sr)
    else:
        cycles = phase + np.cumsum(freq) / sr
        dt = np.asarray(freq, dtype=np.float64) / sr
    dt = np.clip(dt, 1e-9, 0.5)
    t = cycles % 1.0
    if wave == "sine":
        return np.sin(2 * np.pi * cycles)
    if wave == "triangle":
        return 2.0 * np.abs(2.0 * t - 1.0) - 1.0
    saw = 2.0 * t - 1.0 - _polyblep(t, dt)
    if wave == "saw":
        return saw
    width = 0.5 if wave == "square" else 0.25
    t2 = (t + width) % 1.0
    saw2 = 2.0 * t2 - 1.0 - _polyblep(t2, dt)
    return saw - saw2 + (2.0 * width - 1.0)  # remove the pulse's DC offset


def _env(
    n: int, sr: int, attack: float, decay: float, sustain: float, gate: float, release: float
) -> np.ndarray:
    """ADSR: linear attack, exponential decay to ``sustain``, exponential release after ``gate`` s."""
    t = np.arange(n) / sr
    attack = max(attack, 1e-4)
    env = np.where(
        t < attack, t / attack, sustain + (1.0 - sustain) * np.exp(-(t - attack) / max(decay, 1e-4))
    )
    if gate < n / sr:
        g = int(gate * sr)
        env[g:] = env[g] * np.exp(-(t[g:] - t[g]) / max(release, 1e-4))
    return env


_FilterKind = Literal["lowpass", "highpass", "bandpass"]


def _sos(kind: _FilterKind, cutoff: float | Sequence[float], sr: int, order: int = 2) -> np.ndarray:
    nyq = 0.5 * sr
    if np.ndim(cutoff):
        lo, hi = sorted(cutoff)  # type: ignore[arg-type]  # np.ndim does not narrow: a sequence here
        lo, hi = max(lo, 10.0), min(hi, 0.9 * nyq)
        if lo >= hi:
            lo = hi * 0.5
        return signal.butter(order, [lo, hi], btype=kind, fs=sr, output="sos")
    return signal.butter(order, float(np.clip(cutoff, 10.0, 0.9 * nyq)), btype=kind, fs=sr, output="sos")


def _filt(
    x: np.ndarray, kind: _FilterKind, cutoff: float | Sequence[float], sr: int, order: int = 2
) -> np.ndarray:
    return signal.sosfilt(_sos(kind, cutoff, sr, order), x, axis=0)


def _tv_filter(
    x: np.ndarray, sr: int, centre: Callable[[np.ndarray], np.ndarray], kind: str, width: float = 1.0
) -> np.ndarray:
    """Time-varying filter by overlap-added FFT blocks (sweeps, risers, filter automation).

    ``centre`` maps block times (s, from the start of ``x``) to cutoff/centre
    frequencies in Hz; ``kind`` is lowpass, highpass or bandpass (Gaussian in octaves,
    ``width`` octaves wide). Works on (n,) or (n, channels).
    """
    if x.ndim == 2:
        return np.stack([_tv_filter(x[:, c], sr, centre, kind, width) for c in range(x.shape[1])], axis=1)
    size = 1024 if sr <= 24000 else 2048
    hop = size // 2
    n = x.shape[0]
    n_blocks = -(-n // hop) + 1
    padded = np.zeros((n_blocks + 1) * hop)
    padded[hop : hop + n] = x
    blocks = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop][:n_blocks]
    spec = np.fft.rfft(blocks * signal.get_window("hann", size), axis=1)
    freqs = np.fft.rfftfreq(size, 1.0 / sr)[None, :]
    fc = np.clip(centre((np.arange(n_blocks) * hop) / sr)[:, None], 10.0, 0.49 * sr)
    ratio = np.maximum(freqs, 1.0) / fc
    if kind == "lowpass":
        mask = 1.0 / (1.0 + ratio**4)
    elif kind == "highpass":
        mask = 1.0 / (1.0 + ratio**-4)
    else:
        mask = np.exp(-0.5 * (np.log2(ratio) / (0.5 * width)) ** 2)
    out_blocks = np.fft.irfft(spec * mask, n=size, axis=1)
    out = np.zeros((n_blocks + 1, hop))
    out[:-1] += out_blocks[:, :hop]
    out[1:] += out_blocks[:, hop:]
    return out.reshape(-1)[hop : hop + n]


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1.0))
    x = np.fft.irfft(spec, n=n)
    return x / (np.std(x) + 1e-12)


def _pluck(freq: float, n: int, sr: int, rng: np.random.Generator, damping: float) -> np.ndarray:
    """Karplus-Strong plucked string, computed one period (delay length) at a time."""
    period = max(2, int(round(sr / freq)))
    y = np.zeros(n + period + 1)
    y[1 : period + 1] = rng.uniform(-1, 1, period)
    # y[i] = mean(y[i - p], y[i - p - 1]) * damping: each block only needs the previous one.
    for start in range(period + 1, y.size, period):
        stop = min(start + period, y.size)
        y[start:stop] = (
            damping * 0.5 * (y[start - period : stop - period] + y[start - period - 1 : stop - period - 1])
        )
    return y[1 : n + 1]


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    c = np.cumsum(np.concatenate([np.full(width // 2, x[0]), x, np.full(width - width // 2, x[-1])]))
    return (c[width:] - c[:-width])[: x.size] / width


# -- arrangement ---------------------------------------------------------------------------


@dataclass
class _Section:
    kind: str
    start: float  # seconds
    end: float
    gain: float
    layers: set[str]


@dataclass
class _Track:
    """Everything drawn for one track plus the stereo buses being rendered into."""

    seed: int
    sr: int
    n: int
    rng: np.random.Generator
    style: str
    bpm: float
    root: int  # MIDI note of the bass root
    scale_name: str
    swing: float
    layers: set[str]
    sections: list[_Section] = field(default_factory=list)
    drums: np.ndarray = field(init=False)
    music: np.ndarray = field(init=False)  # ducked by the kick in EDM styles
    send: np.ndarray = field(init=False)  # feeds the reverb
    kick_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.drums = np.zeros((self.n, 2))
        self.music = np.zeros((self.n, 2))
        self.send = np.zeros((self.n, 2))
        self.scale = _SCALES[self.scale_name]

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar(self) -> float:
        return 4.0 * self.beat

    @property
    def duration(self) -> float:
        return self.n / self.sr

    def step_time(self, bar: int, step: float) -> float:
        """Start time of a 16th step, with swing on the off-16ths."""
        swing = self.swing * self.beat / 4 if int(step) % 2 == 1 and step == int(step) else 0.0
        return bar * self.bar + step * self.beat / 4 + swing

    def section_at(self, t: float) -> _Section:
        starts = [s.start for s in self.sections]
        return self.sections[max(0, bisect.bisect_right(starts, t) - 1)]

    def active(self, layer: str, t: float) -> bool:
        return 0.0 <= t < self.duration and layer in self.section_at(t).layers

    def note(self, degree: int, octave: int = 0) -> int:
        """MIDI note of a scale degree (may exceed the scale length) above the root."""
        k = len(self.scale)
        return self.root + 12 * (octave + degree // k) + self.scale[degree % k]

    def place(
        self, bus: np.ndarray, t: float, sound: np.ndarray, gain: float, pan: float, send: float = 0.0
    ) -> None:
        """Mix a mono sound at time t with constant-power panning (pan in [-1, 1])."""
        start = int(round(t * self.sr))
        if start >= self.n or sound.size == 0:
            return
        if start < 0:
            sound, start = sound[-start:], 0
        sound = sound[: self.n - start]
        angle = (np.clip(pan, -1, 1) + 1) * np.pi / 4
        lr = np.array([np.cos(angle), np.sin(angle)]) * gain
        seg = sound[:, None] * lr[None, :]
        bus[start : start + sound.size] += seg
        if send:
            self.send[start : start + sound.size] += send * seg


# Arrangement of the demo song: every kind of moment early on, in (kind, bars).
_DEMO_SCRIPT: list[tuple[str, float]] = [
    ("intro", 1),
    ("main", 2),
    ("build", 1),
    ("silence", 0.25),
    ("drop", 2),
    ("breakdown", 1),
    ("quiet", 0.5),
    ("build", 1),
    ("drop", 4),
    ("sparse", 1),
    ("main", 2),
    ("drop", 4),
]


def _plan_sections(trk: _Track, script: Sequence[tuple[str, float]] | None = None) -> None:
    """Lay out sections (in bars) and which layers play in each.

    Kinds and lengths are drawn at random unless a ``script`` of (kind, bars) is given
    (after it runs out, main and drop sections alternate).
    """
    rng = trk.rng
    total_bars = trk.duration / trk.bar
    max_len = max(1, min(8, int(total_bars // 3) or 1))
    lengths = [x for x in (1, 2, 4, 8) if x <= max_len] or [1]
    layers = sorted(trk.layers)
    t_bar, prev = 0.0, ""
    sections: list[_Section] = []

    def subset(pool: Sequence[str], k_lo: int, k_hi: int) -> set[str]:
        pool = [p for p in pool if p in trk.layers] or layers
        k = int(rng.integers(min(k_lo, len(pool)), min(k_hi, len(pool)) + 1))
        return {str(p) for p in rng.choice(pool, size=max(1, k), replace=False)}

    while t_bar < total_bars:
        bars = 0.0
        if script is not None:
            i = len(sections)
            kind, bars = script[i] if i < len(script) else (("main", "drop")[i % 2], 2.0)
        elif not sections:
            kind = str(rng.choice(["intro", "main", "sparse", "quiet"], p=[0.5, 0.3, 0.1, 0.1]))
        elif prev == "build":
            kind = "drop" if rng.random() < 0.8 else "silence"
        elif prev == "silence" and any(s.kind == "build" for s in sections[-2:]):
            kind = "drop"
        else:
            kinds = ["main", "build", "breakdown", "quiet", "sparse", "silence"]
            weights = np.array([3.0, 1.3, 1.2, 0.9, 0.9, 0.6])
            if prev in kinds:  # avoid long runs of the same thing
                weights[kinds.index(prev)] *= 0.0 if prev == "silence" else 0.3
            kind = str(rng.choice(kinds, p=weights / weights.sum()))
        if bars:
            pass
        elif kind == "silence":
            bars = float(rng.choice([0.25, 0.5, 1.0]))
        else:
            bars = float(rng.choice(lengths))
        drums = ["kick", "snare", "hat", "perc"]
        if kind in ("main", "drop"):
            keep = set(layers) if kind == "drop" else {x for x in layers if rng.random() < 0.85}
            active, gain = keep or set(layers), float(rng.uniform(0.75, 1.0)) if kind == "main" else 1.0
        elif kind == "intro":
            active, gain = (
                subset(["pad", "hat", "lead", "fx", "texture", "bass"], 1, 3),
                float(rng.uniform(0.3, 0.8)),
            )
        elif kind == "breakdown":
            active, gain = (
                subset(["pad", "lead", "texture", "fx", "bass"], 1, 3),
                float(rng.uniform(0.3, 0.75)),
            )
        elif kind == "build":
            active = {x for x in layers if x != "bass" and rng.random() < 0.7}
            gain = 1.0
        elif kind == "quiet":
            active, gain = subset(layers, 1, 3), float(rng.uniform(0.03, 0.22))
        elif kind == "sparse":
            active, gain = (
                subset(drums[:1] + ["bass", "pad", "hat", "texture"], 1, 2),
                float(rng.uniform(0.4, 0.9)),
            )
        else:  # silence
            active, gain = set(), 0.0
        sections.append(_Section(kind, t_bar * trk.bar, (t_bar + bars) * trk.bar, gain, active))
        t_bar += bars
        prev = kind
    trk.sections = sections


# -- instruments ---------------------------------------------------------------------------


def _kick_sound(trk: _Track) -> np.ndarray:
    rng, sr = trk.rng, trk.sr
    f_hi, f_lo = rng.uniform(110, 260), rng.uniform(38, 62)
    p_decay, a_decay = rng.uniform(0.015, 0.06), rng.uniform(0.08, 0.45)
    t = np.arange(int(sr * min(1.5, a_decay * 6))) / sr
    freq = f_lo + (f_hi - f_lo) * np.exp(-t / p_decay)
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / a_decay)
    click = rng.standard_normal(t.size) * np.exp(-t / 0.0015) * rng.uniform(0.0, 0.6)
    kick = body + _filt(click, "highpass", 1500, sr)
    drive = rng.uniform(1.0, 4.0)
    return np.tanh(drive * kick) / np.tanh(drive)


def _snare_sound(trk: _Track, clap: bool = False) -> np.ndarray:
    rng, sr = trk.rng, trk.sr
    n_decay = rng.uniform(0.05, 0.25)
    t = np.arange(int(sr * n_decay * 6)) / sr
    noise = _filt(
        rng.standard_normal(t.size), "bandpass", (rng.uniform(600, 1500), rng.uniform(4000, 12000)), sr
    )
    if clap:  # several quick bursts, then a tail
        env = sum(np.exp(-np.maximum(t - k * 0.011, 0) / 0.006) * (t >= k * 0.011) for k in range(4))
        env = env + 0.6 * np.exp(-t / n_decay)
        return 0.5 * noise * env / (np.abs(noise * env).max() + 1e-12)
    tone_f = rng.uniform(150, 280)
    tone = np.sin(2 * np.pi * tone_f * t * (1 + 0.3 * np.exp(-t / 0.01))) * np.exp(
        -t / rng.uniform(0.03, 0.1)
    )
    mix = rng.uniform(0.3, 0.8)
    snd = mix * noise / (np.abs(noise).max() + 1e-12) * np.exp(-t / n_decay) + (1 - mix) * tone
    return snd / (np.abs(snd).max() + 1e-12)


def _hat_sound(trk: _Track, decay: float) -> np.ndarray:
    rng, sr = trk.rng, trk.sr
    t = np.arange(int(sr * decay * 6)) / sr
    if rng.random() < 0.4:  # metallic: inharmonic square partials, 808 style
        base = rng.uniform(280, 420)
        ratios = (1.0, 1.342, 1.2312, 1.6532, 1.9523, 2.1523)
        src = sum((_osc("square", base * r, t.size, sr) for r in ratios), np.zeros(t.size))
    else:
        src = rng.standard_normal(t.size)
    hat = _filt(src, "highpass", rng.uniform(5000, 10000), sr, order=4) * np.exp(-t / decay)
    return hat / (np.abs(hat).max() + 1e-12)


def _perc_sound(trk: _Track) -> np.ndarray:
    """A tom, rim, cowbell or shaker: extra colour for the drum kit."""
    rng, sr = trk.rng, trk.sr
    kind = rng.choice(["tom", "rim", "cowbell", "shaker"])
    if kind == "tom":
        t = np.arange(int(sr * 0.5)) / sr
        f = rng.uniform(90, 220) * (1 + 0.5 * np.exp(-t / 0.03))
        return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / rng.uniform(0.08, 0.2))
    if kind == "rim":
        t = np.arange(int(sr * 0.08)) / sr
        return _filt(rng.standard_normal(t.size), "bandpass", (1500, 5000), sr) * np.exp(-t / 0.008) * 2
    if kind == "cowbell":
        t = np.arange(int(sr * 0.4)) / sr
        s = _osc("square", 540, t.size, sr) + _osc("square", 800, t.size, sr)
        return _filt(s, "bandpass", (500, 3000), sr) * np.exp(-t / 0.09) * 0.7
    t = np.arange(int(sr * 0.12)) / sr
    env = np.minimum(t / 0.03, 1.0) * np.exp(-t / 0.04)
    return _filt(rng.standard_normal(t.size), "highpass", 4000, sr) * env


def _euclid(hits: int, steps: int, rotate: int) -> str:
    """Euclidean rhythm as an x/. string."""
    pattern = ["x" if (i * hits) % steps < hits else "." for i in range(steps)]
    return "".join(np.roll(pattern, rotate))


def _render_drums(trk: _Track) -> None:
    rng = trk.rng
    style = trk.style
    if style in _PATTERNS:
        pats = {k: str(rng.choice(v)) for k, v in _PATTERNS[style].items()}
    else:  # experimental, ambient: Euclidean rhythms
        pats = {
            "kick": _euclid(int(rng.integers(2, 6)), 16, 0),
            "snare": _euclid(int(rng.integers(1, 4)), 16, int(rng.integers(2, 6))),
            "clap": "." * 16,
            "hat": _euclid(int(rng.integers(3, 12)), 16, int(rng.integers(0, 4))),
            "open": "." * 16,
        }
    pats["perc"] = _euclid(int(rng.integers(1, 6)), 16, int(rng.integers(0, 16)))
    density = rng.uniform(0.0, 0.25)  # extra random ghost notes
    sounds = {
        "kick": _kick_sound(trk),
        "snare": _snare_sound(trk),
        "clap": _snare_sound(trk, clap=True),
        "hat": _hat_sound(trk, rng.uniform(0.01, 0.05)),
        "open": _hat_sound(trk, rng.uniform(0.12, 0.35)),
        "perc": _perc_sound(trk),
    }
    level = {
        "kick": rng.uniform(0.8, 1.0),
        "snare": rng.uniform(0.5, 0.8),
        "clap": rng.uniform(0.4, 0.7),
        "hat": rng.uniform(0.15, 0.35),
        "open": rng.uniform(0.12, 0.3),
        "perc": rng.uniform(0.2, 0.45),
    }
    width = rng.uniform(0.1, 0.9)
    pan = {
        "kick": 0.0,
        "snare": rng.uniform(-0.1, 0.1),
        "clap": rng.uniform(-0.2, 0.2),
        "hat": rng.uniform(-1, 1) * width,
        "open": rng.uniform(-1, 1) * width,
        "perc": rng.uniform(-1, 1) * width,
    }
    send = rng.uniform(0.0, 0.5)
    layer_of = {
        "kick": "kick",
        "snare": "snare",
        "clap": "snare",
        "hat": "hat",
        "open": "hat",
        "perc": "perc",
    }
    n_bars = int(np.ceil(trk.duration / trk.bar)) + 1
    for bar in range(n_bars):
        fill = bar % 4 == 3 and rng.random() < 0.5
        for step in range(16):
            t = trk.step_time(bar, step)
            if t >= trk.duration:
                break
            section = trk.section_at(t)
            for name, pat in pats.items():
                layer = layer_of[name]
                if layer not in section.layers:
                    continue
                ch = pat[step]
                vel = 0.0
                if ch == "x":
                    vel = rng.uniform(0.8, 1.0)
                elif ch == "o" or (name in ("hat", "snare", "perc") and rng.random() < density * 0.4):
                    vel = rng.uniform(0.25, 0.5)
                if fill and name == "snare" and step >= 12 and rng.random() < 0.6:
                    vel = max(vel, rng.uniform(0.4, 0.9))
                if vel <= 0:
                    continue
                if name == "kick":
                    trk.kick_times.append(t)
                trk.place(
                    trk.drums,
                    t,
                    sounds[name],
                    level[name] * vel,
                    pan[name] + rng.normal(0, 0.05) * width,
                    send=send if name in ("snare", "clap", "perc") else 0.0,
                )
    # Build-ups: a snare roll that speeds up and gets louder.
    for sec in trk.sections:
        if sec.kind != "build":
            continue
        length = sec.end - sec.start
        t = sec.start
        while t < sec.end and t < trk.duration:
            x = (t - sec.start) / length
            div = 4 if x < 0.5 else 8 if x < 0.75 else 16
            trk.place(
                trk.drums, t, sounds["snare"], level["snare"] * (0.2 + 0.8 * x), pan["snare"], send=send
            )
            t += trk.bar / div


def _chords(trk: _Track) -> list[list[int]]:
    """Chord tones (scale degrees) for each bar."""
    rng = trk.rng
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    bars_per_chord = int(rng.choice([1, 2]))
    seventh = rng.random() < 0.4
    n_bars = int(np.ceil(trk.duration / trk.bar)) + 1
    out = []
    for bar in range(n_bars):
        deg = prog[(bar // bars_per_chord) % len(prog)]
        chord = [deg, deg + 2, deg + 4] + ([deg + 6] if seventh else [])
        out.append(chord)
    return out


def _synth_note(
    trk: _Track,
    wave: str,
    midi: float,
    dur: float,
    *,
    detune: float = 0.0,
    voices: int = 1,
    attack: float = 0.005,
    decay: float = 0.2,
    sustain: float = 0.6,
    release: float = 0.1,
    cutoff: float | None = None,
    glide_from: float | None = None,
) -> np.ndarray:
    """One note: oscillator(s) + ADSR + low-pass; waves include pluck and fm."""
    sr = trk.sr
    n = int((dur + release * 4) * sr)
    if n <= 0:
        return np.zeros(0)
    f = float(_midi_hz(midi))
    if wave == "pluck":
        snd = _pluck(f, n, sr, trk.rng, damping=float(trk.rng.uniform(0.990, 0.999)))
        env = _env(n, sr, 0.001, 10.0, 1.0, dur, release)
    elif wave == "fm":
        t = np.arange(n) / sr
        ratio = float(trk.rng.choice([1.0, 2.0, 3.5, 1.41]))
        index = trk.rng.uniform(1.0, 6.0) * np.exp(-t / trk.rng.uniform(0.05, 0.6))
        snd = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * ratio * t))
        env = _env(n, sr, attack, decay, sustain, dur, release)
    else:
        if glide_from is not None:
            t = np.arange(n) / sr
            freq: float | np.ndarray = f + (float(_midi_hz(glide_from)) - f) * np.exp(-t / 0.04)
        else:
            freq = f
        snd = np.zeros(n)
        for v in range(voices):
            cents = detune * (v - (voices - 1) / 2) / max(1, (voices - 1) / 2) if voices > 1 else 0.0
            snd += _osc(wave, freq * 2 ** (cents / 1200), n, sr, phase=float(trk.rng.random()))
        snd /= np.sqrt(voices)
        env = _env(n, sr, attack, decay, sustain, dur, release)
    snd = snd * env
    if cutoff is not None:
        snd = _filt(snd, "lowpass", cutoff, sr)
    return snd


def _render_bass(trk: _Track, chords: list[list[int]]) -> None:
    rng = trk.rng
    style = trk.style
    kind = str(
        rng.choice(["offbeat", "rolling", "root8", "long", "808", "walk", "acid"], p=_bass_weights(style))
    )
    wave = {"808": "sine", "long": str(rng.choice(["saw", "square", "sine"]))}.get(
        kind, str(rng.choice(["saw", "square", "triangle", "sine"], p=[0.4, 0.3, 0.15, 0.15]))
    )
    cutoff = rng.uniform(180, 1600) * (3.0 if kind == "acid" else 1.0)
    level = rng.uniform(0.35, 0.6)
    voices, detune = (3, rng.uniform(8, 25)) if kind == "long" and rng.random() < 0.5 else (1, 0.0)
    octave = int(rng.choice([0, 1], p=[0.6, 0.4])) if kind != "808" else 0
    prev = None
    n_bars = len(chords)
    for bar in range(n_bars):
        chord = chords[bar]
        if kind == "offbeat":
            steps = [(s, 1.5, chord[0]) for s in (2, 6, 10, 14)]
        elif kind == "rolling":
            steps = [
                (s, 0.8, chord[0] if s % 4 else chord[0] + 7 * (s % 8 == 4)) for s in range(16) if s % 4 != 0
            ]
        elif kind == "root8":
            steps = [(s, 1.8, chord[0]) for s in range(0, 16, 2)]
        elif kind == "long":
            steps = [(0, 16.0, chord[0])]
        elif kind == "808":
            steps = [(0, 6.0, chord[0]), (7, 3.0, chord[0]), (10, 5.0, chord[int(rng.integers(0, 3))])]
        elif kind == "walk":
            steps = [(s, 3.5, chord[0] + int(rng.integers(-2, 5))) for s in range(0, 16, 4)]
        else:  # acid: random 16ths, accents, slides
            steps = [
                (s, 0.9, chord[0] + int(rng.choice([0, 0, 7, 12, 3, 5])))
                for s in range(16)
                if rng.random() < 0.6
            ]
        for step, length, degree in steps:
            t = trk.step_time(bar, step)
            if not trk.active("bass", t):
                continue
            midi = trk.note(degree, octave)
            dur = length * trk.beat / 4
            glide = prev if (kind in ("808", "acid") and prev is not None and rng.random() < 0.3) else None
            snd = _synth_note(
                trk,
                wave,
                midi,
                dur,
                detune=detune,
                voices=voices,
                attack=0.003,
                decay=rng.uniform(0.1, 0.4),
                sustain=0.7 if kind != "acid" else 0.3,
                release=0.05,
                cutoff=cutoff * (rng.uniform(1.0, 2.5) if kind == "acid" else 1.0),
                glide_from=glide,
            )
            if kind == "808":
                snd = np.tanh(2.0 * snd)
            vel = rng.uniform(0.8, 1.0)
            trk.place(trk.music, t, snd, level * vel, rng.normal(0, 0.05))
            prev = midi


def _bass_weights(style: str) -> list[float]:
    # offbeat, rolling, root8, long, 808, walk, acid
    table = {
        "four_floor": [4, 3, 1, 1, 0, 0, 2],
        "minimal": [3, 3, 0, 1, 0, 0, 2],
        "breakbeat": [0, 1, 1, 4, 2, 0, 1],
        "hiphop": [0, 0, 0, 1, 4, 2, 0],
        "lofi": [0, 0, 0, 2, 1, 4, 0],
        "rock": [0, 1, 5, 0, 0, 2, 0],
        "chip": [1, 2, 3, 0, 0, 1, 2],
        "ambient": [0, 0, 0, 5, 0, 1, 0],
        "experimental": [1, 1, 1, 2, 1, 1, 2],
    }
    w = np.array(table[style], dtype=float)
    return list(w / w.sum())


def _render_pad(trk: _Track, chords: list[list[int]]) -> None:
    rng = trk.rng
    style = trk.style
    wave = str(
        rng.choice(
            ["saw", "square", "sine", "triangle", "pulse", "pluck", "fm"],
            p=[0.25, 0.15, 0.15, 0.1, 0.1, 0.15, 0.1],
        )
    )
    if style == "chip":
        wave = str(rng.choice(["square", "pulse", "triangle"]))
    mode = str(rng.choice(["sustain", "stab", "pulse", "strum"], p=[0.45, 0.25, 0.15, 0.15]))
    if wave in ("pluck", "fm") and mode == "sustain":
        mode = "strum"
    voices = int(rng.integers(1, 4)) if wave in ("saw", "square", "pulse") else 1
    detune = rng.uniform(5, 30)
    cutoff = float(np.exp(rng.uniform(np.log(500), np.log(9000))))
    attack = rng.uniform(0.005, 0.05) if mode != "sustain" else rng.uniform(0.05, 1.2)
    release = rng.uniform(0.05, 0.3) if mode != "sustain" else rng.uniform(0.3, 1.5)
    level = rng.uniform(0.15, 0.4) / np.sqrt(voices)
    octave = int(rng.choice([1, 2]))
    spread = rng.uniform(0.1, 1.0)
    send = rng.uniform(0.1, 0.8)
    n_bars = len(chords)
    bar = 0
    while bar < n_bars:
        chord = chords[bar]
        span = 1
        while bar + span < n_bars and chords[bar + span] == chord and span < 2:
            span += 1
        if mode == "sustain":
            hits = [(0.0, 16.0 * span)]
        elif mode == "stab":
            hits = [(s + 16 * b, 1.0) for b in range(span) for s in (2, 6, 10, 14) if rng.random() < 0.85]
        elif mode == "pulse":
            hits = [(s + 16 * b, 0.6) for b in range(span) for s in range(0, 16, 2)]
        else:
            hits = [
                (16.0 * b + s, 3.5) for b in range(span) for s in (0, 6, 10) if s == 0 or rng.random() < 0.5
            ]
        for step, length in hits:
            t = trk.step_time(bar, step)
            if not trk.active("pad", t):
                continue
            dur = length * trk.beat / 4
            for i, degree in enumerate(chord):
                midi = trk.note(degree, octave)
                strum = i * rng.uniform(0.005, 0.03) if mode == "strum" else 0.0
                snd = _synth_note(
                    trk,
                    wave,
                    midi,
                    dur,
                    detune=detune,
                    voices=voices,
                    attack=attack,
                    decay=rng.uniform(0.2, 1.0),
                    sustain=rng.uniform(0.4, 0.9),
                    release=release,
                    cutoff=cutoff,
                )
                pan = spread * (1 if i % 2 else -1) * (0.5 + 0.5 * i / max(1, len(chord) - 1))
                trk.place(trk.music, t + strum, snd, level, pan, send=send)
        bar += span


def _render_lead(trk: _Track, chords: list[list[int]]) -> None:
    rng = trk.rng
    wave = str(rng.choice(["square", "saw", "sine", "triangle", "pluck", "fm", "pulse"]))
    mode = str(rng.choice(["arp", "melody"]))
    rate = int(rng.choice([2, 4]))  # steps per note (8ths or 16ths)
    direction = str(rng.choice(["up", "down", "updown", "random"]))
    octave = int(rng.choice([2, 3]))
    level = rng.uniform(0.12, 0.3)
    cutoff = float(np.exp(rng.uniform(np.log(1200), np.log(12000))))
    gate = rng.uniform(0.3, 0.95)
    pan_mode = rng.uniform(-0.7, 0.7), rng.uniform(0.0, 0.8)  # centre, per-note random spread
    send = rng.uniform(0.0, 0.6)
    delay = rng.random() < 0.5
    degree = 0
    lead = np.zeros((trk.n, 2))
    for bar, chord in enumerate(chords):
        tones = chord + [d + len(trk.scale) for d in chord]
        if direction == "down":
            tones = tones[::-1]
        elif direction == "updown":
            tones = tones + tones[-2:0:-1]
        for i, step in enumerate(range(0, 16, rate)):
            t = trk.step_time(bar, step)
            if not trk.active("lead", t):
                continue
            if mode == "arp":
                deg = tones[int(rng.integers(len(tones)))] if direction == "random" else tones[i % len(tones)]
                length = rate * gate
            else:
                if rng.random() < 0.35:  # rests make phrases
                    continue
                degree = int(np.clip(degree + rng.choice([-2, -1, 0, 1, 2, 3, -3]), -3, 10))
                deg = degree
                length = rate * gate * float(rng.choice([1, 1, 2, 3]))
            snd = _synth_note(
                trk,
                wave,
                trk.note(deg, octave),
                length * trk.beat / 4,
                attack=0.003,
                decay=rng.uniform(0.05, 0.3),
                sustain=rng.uniform(0.2, 0.8),
                release=0.05,
                cutoff=cutoff,
            )
            trk.place(
                lead, t, snd, level * rng.uniform(0.7, 1.0), pan_mode[0] + rng.uniform(-1, 1) * pan_mode[1]
            )
    if delay:  # ping-pong echo on the beat grid
        d = int(trk.beat * float(rng.choice([0.75, 0.5, 1.0 / 3.0])) * trk.sr)
        feedback = rng.uniform(0.25, 0.6)
        echo = np.zeros_like(lead)
        mono = lead.mean(axis=1)
        for k in range(1, 7):
            if k * d >= trk.n:
                break
            echo[k * d :, k % 2] += feedback**k * mono[: trk.n - k * d]
        lead += _filt(echo, "lowpass", 4000, trk.sr)
    trk.music += lead
    trk.send += send * lead


def _riser(trk: _Track, length: float, up: bool) -> np.ndarray:
    """White or pink noise with a band-pass sweeping up (riser) or down (downlifter)."""
    rng, sr = trk.rng, trk.sr
    n = int(length * sr)
    noise = rng.standard_normal(n) if rng.random() < 0.5 else _pink(n, rng)
    lo, hi = rng.uniform(150, 600), rng.uniform(3000, 0.45 * sr)
    a, b = (lo, hi) if up else (hi, lo)
    snd = _tv_filter(
        noise, sr, lambda t: a * (b / a) ** np.clip(t / length, 0, 1), "bandpass", rng.uniform(0.5, 2.0)
    )
    t = np.arange(n) / sr
    env = (t / length) ** 2 if up else np.exp(-t / (0.3 * length))
    return snd * env / (np.abs(snd).max() + 1e-12)


_ChirpMethod = Literal["linear", "logarithmic", "quadratic", "hyperbolic"]


def _chirp(trk: _Track, length: float) -> np.ndarray:
    rng, sr = trk.rng, trk.sr
    t = np.arange(int(length * sr)) / sr
    f0, f1 = np.exp(rng.uniform(np.log(40), np.log(0.4 * sr), 2))
    method = cast(_ChirpMethod, str(rng.choice(["linear", "logarithmic", "quadratic", "hyperbolic"])))
    snd = signal.chirp(t, f0, max(length, 1e-3), f1, method=method)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01) if t.size > 1 else np.ones_like(t)
    return snd * fade


def _render_fx(trk: _Track) -> None:
    """Risers into drops, impacts, transition sweeps and chirps."""
    rng = trk.rng
    level = rng.uniform(0.15, 0.35)
    for i, sec in enumerate(trk.sections):
        length = sec.end - sec.start
        if sec.kind == "build":
            trk.place(
                trk.music,
                sec.start,
                _riser(trk, length, up=True),
                level * 1.5,
                rng.uniform(-0.3, 0.3),
                send=0.3,
            )
            if rng.random() < 0.5:  # rising sine chirp on top
                t = np.arange(int(length * trk.sr)) / trk.sr
                f0, f1 = rng.uniform(100, 400), rng.uniform(1500, 5000)
                snd = signal.chirp(t, f0, length, f1, method="logarithmic") * (t / length) ** 2
                trk.place(trk.music, sec.start, snd, level * 0.5, 0.0)
        elif sec.kind == "drop" and i > 0:
            n = int(2.0 * trk.sr)  # an impact: a long, pitch-dropping sine boom
            pitch = 45 + 60 * np.exp(-np.arange(n) / (0.1 * trk.sr))
            boom = _env(n, trk.sr, 0.001, 0.6, 0.0, 2.0, 0.1) * _osc("sine", pitch, n, trk.sr)
            trk.place(trk.drums, sec.start, boom, 0.8, 0.0, send=0.2)
            if rng.random() < 0.6:
                trk.place(
                    trk.music,
                    sec.start,
                    _riser(trk, min(2.0, length), up=False),
                    level,
                    rng.uniform(-0.5, 0.5),
                    send=0.3,
                )
        elif "fx" in sec.layers and rng.random() < 0.5:
            t0 = sec.start + rng.uniform(0, max(1e-3, length * 0.7))
            if rng.random() < 0.5:
                trk.place(
                    trk.music,
                    t0,
                    _chirp(trk, rng.uniform(0.1, 1.5)),
                    level * 0.6,
                    rng.uniform(-0.8, 0.8),
                    send=0.4,
                )
            else:
                trk.place(
                    trk.music,
                    t0,
                    _riser(trk, rng.uniform(0.5, 3.0), up=bool(rng.random() < 0.5)),
                    level,
                    rng.uniform(-0.8, 0.8),
                    send=0.4,
                )


def _render_texture(trk: _Track, chords: list[list[int]]) -> None:
    """Non-rhythmic material: drones, noise beds, chirp swarms, clicks, sine pulses."""
    for sec in trk.sections:
        if "texture" in sec.layers:
            _texture(trk, sec, chords, ["drone", "noise", "chirps", "clicks", "pulses"])


def _fill_empty_sections(trk: _Track, chords: list[list[int]]) -> None:
    """Give a drone or noise bed to any section that should sound but got no events.

    Short sections can miss every event of their layers (notes start on bar lines that
    fall in the neighbouring sections), and a silent track cannot be normalised.
    """
    sr = trk.sr
    for sec in trk.sections:
        s0, s1 = int(sec.start * sr), min(trk.n, int(sec.end * sr))
        if sec.kind == "silence" or s1 <= s0:
            continue
        energy = np.sum(trk.drums[s0:s1] ** 2) + np.sum(trk.music[s0:s1] ** 2)
        if energy <= 1e-6 * (s1 - s0):
            _texture(trk, sec, chords, ["drone", "noise"])


def _texture(trk: _Track, sec: _Section, chords: list[list[int]], kinds: list[str]) -> None:
    rng, sr = trk.rng, trk.sr
    length = min(sec.end, trk.duration) - sec.start
    n = int(length * sr)
    if n < 16:
        return
    kind = str(rng.choice(kinds))
    t = np.arange(n) / sr
    if kind == "drone":
        bar = min(len(chords) - 1, int(sec.start / trk.bar))
        snd = sum(
            _osc(
                "sine",
                float(_midi_hz(trk.note(d, 1))) * (1 + rng.normal(0, 0.002)),
                n,
                sr,
                float(rng.random()),
            )
            for d in chords[bar]
        )
        snd = snd * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 4.0) * t))
    elif kind == "noise":
        raw = _pink(n, rng) if rng.random() < 0.5 else rng.standard_normal(n)
        if rng.random() < 0.3:
            raw = np.cumsum(raw)  # brown noise
            raw = _filt(raw - raw.mean(), "highpass", 20, sr)
        lo, hi = np.exp(rng.uniform(np.log(100), np.log(0.4 * sr), 2))
        rate = rng.uniform(0.05, 1.0)
        snd = _tv_filter(
            raw,
            sr,
            lambda tt: lo * (hi / lo) ** (0.5 + 0.5 * np.sin(2 * np.pi * rate * tt)),
            str(rng.choice(["lowpass", "bandpass", "highpass"])),
            rng.uniform(0.5, 3),
        )
    elif kind == "chirps":
        snd = np.zeros(n)
        for _ in range(int(rng.integers(2, 10))):
            c = _chirp(trk, rng.uniform(0.05, max(0.06, min(2.0, length))))
            s0 = int(rng.integers(0, max(1, n - c.size)))
            snd[s0 : s0 + c.size] += c[: n - s0] * rng.uniform(0.3, 1.0)
    elif kind == "clicks":
        density = rng.uniform(2, 60)  # per second
        imp = (rng.random(n) < density / sr) * rng.uniform(-1, 1, n)
        snd = _filt(imp, "bandpass", sorted(np.exp(rng.uniform(np.log(200), np.log(0.4 * sr), 2))), sr) * 20
    else:
        f = float(_midi_hz(trk.note(int(rng.integers(0, 8)), int(rng.integers(1, 4)))))
        rate = rng.uniform(1, 12)
        snd = _osc("sine", f, n, sr) * (np.sin(2 * np.pi * rate * t) > rng.uniform(-0.5, 0.8))
        snd = _filt(snd, "lowpass", 6000, sr)
    snd = snd / (np.abs(snd).max() + 1e-12)
    fade = np.minimum(1.0, np.minimum(t, length - t) / min(0.05, length / 4))
    trk.place(trk.music, sec.start, snd * fade, rng.uniform(0.15, 0.45), rng.uniform(-0.7, 0.7), send=0.5)


def _reverb(trk: _Track, x: np.ndarray) -> np.ndarray:
    """Stereo reverb: each channel convolved with its own decaying, damped noise."""
    rng, sr = trk.rng, trk.sr
    rt60 = rng.uniform(0.3, 3.0)
    length = int(min(rt60, 2.5) * sr)
    t = np.arange(length) / sr
    pre = int(rng.uniform(0.0, 0.04) * sr)
    damp = rng.uniform(2500, 10000)
    out = np.zeros_like(x)
    for c in range(2):
        ir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
        ir = _filt(ir, "lowpass", damp, sr)
        ir = np.concatenate([np.zeros(pre), ir / (np.sqrt(np.sum(ir**2)) + 1e-12)])
        out[:, c] = signal.oaconvolve(x[:, c], ir)[: x.shape[0]]
    return out


def _duck(trk: _Track) -> np.ndarray:
    """Side-chain pumping: the music bus dips after every kick."""
    rng, sr = trk.rng, trk.sr
    depth = (
        rng.uniform(0.3, 0.8)
        if trk.style in ("four_floor", "minimal", "breakbeat") and rng.random() < 0.7
        else 0.0
    )
    if depth == 0.0 or not trk.kick_times:
        return np.ones(trk.n)
    imp = np.zeros(trk.n)
    idx = np.clip((np.array(trk.kick_times) * sr).astype(int), 0, trk.n - 1)
    imp[idx] = 1.0
    a = np.exp(-1.0 / (rng.uniform(0.08, 0.25) * sr))
    env = signal.lfilter([1.0], [1.0, -a], imp)
    return 1.0 - depth * np.clip(env, 0.0, 1.0)


def _master(trk: _Track, mix: np.ndarray) -> np.ndarray:
    """Section gains and filters, fades, saturation and peak normalisation."""
    rng, sr, n = trk.rng, trk.sr, trk.n
    # Tone of the whole track: dark, thin or untouched.
    r = rng.random()
    if r < 0.25 or trk.style == "lofi":
        mix = _filt(mix, "lowpass", float(np.exp(rng.uniform(np.log(1200), np.log(7000)))), sr)
    elif r < 0.4:
        mix = _filt(mix, "highpass", rng.uniform(80, 400), sr)
    # Build-ups sweep a high-pass up; some quiet passages are muffled.
    for sec in trk.sections:
        s0, s1 = int(sec.start * sr), min(n, int(sec.end * sr))
        if s1 - s0 < 64:
            continue
        length = sec.end - sec.start
        if sec.kind == "build":
            top = rng.uniform(400, 3000)
            mix[s0:s1] = _tv_filter(
                mix[s0:s1],
                sr,
                lambda t: 30 * (top / 30) ** np.clip(t / length, 0, 1),  # noqa: B023 - called before _tv_filter returns
                "highpass",
            )
        elif sec.kind in ("quiet", "breakdown") and rng.random() < 0.4:
            fc = rng.uniform(300, 2000)
            mix[s0:s1] = _tv_filter(
                mix[s0:s1],
                sr,
                lambda t: np.full_like(t, fc),  # noqa: B023 - called before _tv_filter returns
                "lowpass",
            )
    peak = np.abs(mix).max()
    if peak > 0:
        mix = mix / peak
    drive = float(rng.choice([0.0, 1.0, 2.5, 5.0], p=[0.35, 0.3, 0.2, 0.15]))
    if trk.style in ("ambient", "experimental", "lofi"):
        drive = min(drive, 1.0)
    if drive > 0:
        mix = np.tanh(drive * mix) / np.tanh(drive)
    # Gain per section, with ramps: builds swell, everything else steps (5 ms smoothing
    # against clicks keeps onsets sharp).
    gain = np.zeros(n)
    for sec in trk.sections:
        s0, s1 = int(sec.start * sr), min(n, int(sec.end * sr))
        if s1 <= s0:
            continue
        if sec.kind == "build":
            gain[s0:s1] = np.linspace(0.45, 1.0, s1 - s0)
        else:
            gain[s0:s1] = sec.gain
    gain = _moving_average(gain, int(0.005 * sr))
    fade_in = min(float(rng.choice([0.0, 0.0, 0.5, 2.0, 4.0])), trk.duration / 4)
    fade_out = min(float(rng.choice([0.0, 0.5, 2.0, 4.0])), trk.duration / 4)
    t = np.arange(n) / sr
    if fade_in > 0:
        gain *= np.clip(t / fade_in, 0, 1) ** 2
    if fade_out > 0:
        gain *= np.clip((trk.duration - t) / fade_out, 0, 1) ** 2
    mix = mix * gain[:, None]
    peak = np.abs(mix).max()
    if not np.isfinite(peak) or peak <= 1e-9:  # cannot happen with any section playing
        return np.zeros((n, 2), np.float32)
    return np.clip(mix * (PEAK / peak), -1.0, 1.0).astype(np.float32)


def _choose_layers(rng: np.random.Generator, style: str) -> set[str]:
    drums = {"kick", "snare", "hat", "perc"}
    if style == "ambient":
        layers = {"pad", "texture", "fx"} | ({"lead"} if rng.random() < 0.6 else set())
        layers |= {"bass"} if rng.random() < 0.5 else set()
        layers |= {"kick", "hat"} if rng.random() < 0.25 else set()
    elif style == "experimental":
        layers = {"texture", "fx"} | {x for x in ("pad", "lead", "bass") if rng.random() < 0.4}
        layers |= drums if rng.random() < 0.5 else set()
    else:
        layers = {"kick", "snare", "hat", "bass", "pad", "lead", "fx"}
        # sorted: a set iterates in hash order, which changes between processes
        layers = {x for x in sorted(layers) if x in ("kick", "bass") or rng.random() < 0.85}
        layers |= {"perc"} if rng.random() < 0.5 else set()
        layers |= {"texture"} if rng.random() < 0.3 else set()
    return layers


def _render(
    seed: int,
    duration: float,
    sample_rate: int,
    style: str | None = None,
    script: Sequence[tuple[str, float]] | None = None,
) -> tuple[np.ndarray, dict]:
    """Render one track and describe what was drawn."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    if style is not None and style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    rng = np.random.default_rng(seed)
    names = list(STYLES)
    weights = np.array([STYLES[s] for s in names])
    drawn = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    style = style or drawn
    lo, hi = _TEMPO[style]
    bpm = float(round(rng.uniform(lo, hi), 1))
    swing = rng.uniform(0.08, 0.3) if style in ("hiphop", "lofi") or rng.random() < 0.15 else 0.0
    scale = str(rng.choice(list(_SCALES), p=[0.22, 0.26, 0.12, 0.07, 0.08, 0.07, 0.13, 0.05]))
    root = int(rng.integers(28, 41))  # E1 .. E2
    n = max(1, int(round(duration * sample_rate)))
    trk = _Track(seed, sample_rate, n, rng, style, bpm, root, scale, swing, _choose_layers(rng, style))
    _plan_sections(trk, script)
    chords = _chords(trk)
    if trk.layers & {"kick", "snare", "hat", "perc"}:
        _render_drums(trk)
    if "bass" in trk.layers:
        _render_bass(trk, chords)
    if "pad" in trk.layers:
        _render_pad(trk, chords)
    if "lead" in trk.layers:
        _render_lead(trk, chords)
    if "fx" in trk.layers:
        _render_fx(trk)
    if "texture" in trk.layers:
        _render_texture(trk, chords)
    _fill_empty_sections(trk, chords)
    wet = rng.uniform(0.1, 0.6)
    mix = trk.drums + trk.music * _duck(trk)[:, None] + wet * _reverb(trk, trk.send)
    # Stereo width from near-mono to extra wide (mid/side).
    side_gain = rng.uniform(0.2, 1.6)
    mid, side = mix.mean(axis=1), 0.5 * (mix[:, 0] - mix[:, 1]) * side_gain
    mix = np.stack([mid + side, mid - side], axis=1)
    audio = _master(trk, mix)
    key = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][root % 12]
    info = {
        "style": style,
        "bpm": bpm,
        "key": f"{key} {scale}",
        "layers": sorted(trk.layers),
        "sections": [
            [s.kind, round(s.start, 3), round(min(s.end, trk.duration), 3)]
            for s in trk.sections
            if s.start < trk.duration
        ],
    }
    return audio, info


def synth_track(seed: int, duration: float = 30.0, sample_rate: int = 44100) -> np.ndarray:
    """Synthesize one music-like stereo track.

    Style, tempo, key, instrumentation, arrangement, stereo image and mastering are all
    drawn from ``numpy.random.default_rng(seed)``: the same arguments always give
    bit-identical samples, different seeds give clearly different tracks.

    Returns:
        float32 array of shape (round(duration * sample_rate), 2), peak-normalised to
        :data:`PEAK` (0.9).
    """
    return _render(int(seed), float(duration), int(sample_rate))[0]


def track_seed(corpus_seed: int, index: int) -> int:
    """Seed of track ``index`` in the corpus made with ``corpus_seed`` (independent of its size)."""
    return int(np.random.SeedSequence([int(corpus_seed), int(index)]).generate_state(1, np.uint32)[0])


def write_audio(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write (n, channels) float samples as FLAC or WAV (by extension), atomically."""
    suffix = path.suffix.lower()
    if suffix not in (".flac", ".wav"):
        raise ValueError(f"unsupported audio format {path.suffix!r} for '{path}' (use .flac or .wav)")
    if suffix == ".wav":
        from synd.audio import write_wav

        write_wav(path, samples, sample_rate)  # atomic itself
        return
    atomic_write_bytes(path, _flac_bytes(samples, sample_rate))


def _flac_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """(n, channels) float samples in [-1, 1] as a 16-bit FLAC file."""
    import io

    import av

    data = samples if samples.ndim == 2 else samples[:, None]
    channels = data.shape[1]
    pcm = np.round(np.clip(data.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    layout = "mono" if channels == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=int(sample_rate))
        stream.layout = layout
        stream.format = "s16"
        chunk = 4096
        for start in range(0, pcm.shape[0], chunk):
            block = np.ascontiguousarray(pcm[start : start + chunk]).reshape(1, -1)  # packed
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout=layout)
            frame.sample_rate = int(sample_rate)
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def write_corpus(
    out_dir: str | os.PathLike[str],
    n_tracks: int,
    duration: float = 30.0,
    seed: int = 0,
    sample_rate: int = 44100,
    fmt: str = "flac",
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write ``n_tracks`` synthesized tracks and a ``corpus.json`` describing them.

    Files are ``track_000.flac``, ``track_001.flac``, ... (``fmt`` "flac" or "wav"). Track
    ``i`` uses :func:`track_seed` ``(seed, i)``, so a bigger corpus with the same seed
    starts with the same tracks. Every file (the JSON too) is written under a temporary
    name in ``out_dir`` and renamed into place, so an interrupted run leaves no
    half-written file behind.

    Returns:
        The audio file paths, in order.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("flac", "wav"):
        raise ValueError(f"fmt must be 'flac' or 'wav', got {fmt!r}")
    if n_tracks < 0:
        raise ValueError(f"n_tracks must be >= 0, got {n_tracks}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    tracks: list[dict[str, Any]] = []
    for i in range(n_tracks):
        s = track_seed(seed, i)
        audio, info = _render(s, duration, sample_rate)
        path = out / f"track_{i:03d}.{fmt}"
        write_audio(path, audio, sample_rate)
        paths.append(path)
        tracks.append({"file": path.name, "seed": s, "duration": audio.shape[0] / sample_rate, **info})
        if log is not None:
            log(f"wrote {path} ({info['style']}, {info['bpm']:g} BPM, {info['key']}, {duration:g} s)")
    meta = {
        "generator": "synd.corpus",
        "version": 1,
        "seed": int(seed),
        "n_tracks": int(n_tracks),
        "duration": float(duration),
        "sample_rate": int(sample_rate),
        "channels": 2,
        "format": fmt,
        "tracks": tracks,
    }
    json_path = write_json(meta, out / "corpus.json")
    if log is not None:
        log(f"wrote {json_path}")
    return paths


def demo_clip(
    path: str | os.PathLike[str], duration: float = 20.0, seed: int = 2024, sample_rate: int = 44100
) -> Path:
    """Write the demo song (a lively, drum-driven track) as .flac or .wav by extension.

    Returns:
        The path written.
    """
    rng = np.random.default_rng(seed)
    style = str(rng.choice(["four_floor", "breakbeat", "hiphop", "rock", "chip"]))
    audio, _ = _render(int(seed), float(duration), int(sample_rate), style=style, script=_DEMO_SCRIPT)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_audio(out, audio, int(sample_rate))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m synd.corpus OUT_DIR --tracks N --duration S --seed K``.

    With ``--demo PATH`` (and no OUT_DIR) it writes only the demo clip.
    """
    parser = argparse.ArgumentParser(
        prog="python -m synd.corpus",
        description="Write a reproducible synthesized music corpus (no downloads).",
    )
    parser.add_argument("out_dir", type=Path, nargs="?", help="folder for track_000.flac ... and corpus.json")
    parser.add_argument("--tracks", type=int, default=20, help="number of tracks (default 20)")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per track (default 30; 20 for --demo)"
    )
    parser.add_argument("--seed", type=int, default=None, help="corpus seed (default 0; 2024 for --demo)")
    parser.add_argument("--sample-rate", type=int, default=44100, help="Hz (default 44100)")
    parser.add_argument(
        "--format", choices=["flac", "wav"], default="flac", help="audio format (default flac)"
    )
    parser.add_argument(
        "--demo", type=Path, metavar="PATH", help="write the demo song to PATH (.flac or .wav)"
    )
    args = parser.parse_args(argv)
    if (args.out_dir is None) == (args.demo is None):
        parser.error("give either OUT_DIR or --demo PATH")
    if args.tracks < 0 or (args.duration is not None and not args.duration > 0):
        parser.error("--tracks must be >= 0 and --duration > 0")
    if args.demo is not None:
        path = demo_clip(
            args.demo,
            duration=args.duration or 20.0,
            seed=2024 if args.seed is None else args.seed,
            sample_rate=args.sample_rate,
        )
        print(f"wrote {path}")
        return 0
    write_corpus(
        args.out_dir,
        args.tracks,
        args.duration or 30.0,
        args.seed or 0,
        args.sample_rate,
        args.format,
        log=lambda msg: print(msg, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
