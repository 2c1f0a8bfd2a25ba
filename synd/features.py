"""Audio features per video frame: one implementation for training, rendering and live.

Framing
-------
Video frame ``i`` shows time ``t_i = i / fps``. Its analysis window is the ``n_fft``
samples ending at ``end_i = round(i * sample_rate / fps) + n_fft // 2`` (so the window
is centred on ``t_i``); samples before the start and after the end of the audio are
zeros. The window function is a periodic Hann window. A signal of ``n`` samples has
``ceil(n * fps / sample_rate)`` frames: the frames of a video as long as the audio.

Values per frame (all computed in float64, returned as float32), in this order:

* ``bands`` values of the chosen kind:
  - ``mel``: ``log(E + 1e-10)`` of the power spectrum ``|rfft(hann * window)|**2``
    weighted by ``bands`` triangular filters evenly spaced on the HTK mel scale between
    ``fmin`` and ``fmax`` (every filter covers at least one FFT bin);
  - ``fft``: ``log(P + 1e-10)`` of the mean power in ``bands`` bands of equal width in
    Hz between ``fmin`` and ``fmax``;
  - ``log``: the same for bands of equal width in log frequency (octave-like bands, as
    the ear hears them; needs ``fmin > 0``);
  - ``wave``: the window (without Hann weighting) cut into ``bands`` consecutive
    segments of (nearly) equal length, each replaced by its mean: a coarse waveform.
* ``loudness`` (optional): ``10 * log10(mean(window**2) + 1e-10)``, the RMS level in dB.
* ``onset`` (optional): spectral flux, the mean over the ``bands`` log-mel values of
  ``max(0, logmel(window ending at end_i) - logmel(window ending at end_i - n_fft // 2))``,
  always from the log-mel whatever ``kind`` is. The comparison window lies a fixed time
  back (not one video frame back), so onset values mean the same at any frame rate; a
  hit shows in the frames whose window has it in its newest half.

`FeatureExtractor.offline` computes all frames of a signal at once; its
`StreamingExtractor` produces the same frames from blocks of any size with bounded
memory, so that ``push(x) + flush()`` equals ``offline(x)``. Both call `_frame_features`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from synd.tables import reject_unknown

__all__ = [
    "FeatureConfig",
    "FeatureExtractor",
    "StreamingExtractor",
    "FeatureStats",
    "KINDS",
]

KINDS = ("mel", "fft", "log", "wave")
_EPS = 1e-10
# Frames computed per batch in `offline`: bounds the temporary window/spectrum arrays
# (about 2 x 16 MB at n_fft=2048) whatever the length of the song.
_BATCH = 1024


@dataclass(frozen=True)
class FeatureConfig:
    """What features are computed and how audio is framed (see the module docstring)."""

    kind: str = "mel"
    sample_rate: int = 24000
    fps: float = 30.0
    n_fft: int = 2048
    bands: int = 32
    fmin: float = 30.0
    fmax: float = 11000.0
    loudness: bool = True
    onset: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"FeatureConfig.{name}: {why}, got {getattr(self, name)!r}")

        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        if self.kind not in KINDS:
            raise bad("kind", f"must be one of {', '.join(KINDS)}")
        if not is_int(self.sample_rate) or self.sample_rate <= 0:
            raise bad("sample_rate", "must be a positive integer")
        if not is_num(self.fps) or not math.isfinite(self.fps) or self.fps <= 0:
            raise bad("fps", "must be a positive finite number")
        if not is_int(self.n_fft) or self.n_fft < 16:
            raise bad("n_fft", "must be an integer >= 16")
        if not is_int(self.bands) or self.bands < 1:
            raise bad("bands", "must be a positive integer")
        if self.kind == "wave" and self.bands > self.n_fft:
            raise bad("bands", f"must be <= n_fft ({self.n_fft}) for kind 'wave'")
        if not is_num(self.fmin) or not math.isfinite(self.fmin) or self.fmin < 0:
            raise bad("fmin", "must be a finite number >= 0")
        if self.kind == "log" and self.fmin <= 0:
            raise bad("fmin", "must be more than 0 for kind 'log'")
        nyquist = self.sample_rate / 2
        if not is_num(self.fmax) or not (self.fmin < self.fmax <= nyquist):
            raise bad("fmax", f"must be > fmin ({self.fmin}) and <= sample_rate / 2 ({nyquist:g})")
        for name in ("loudness", "onset"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise bad(name, "must be true or false")
        # Store plain Python types (numpy scalars are accepted) so to_dict is JSON-able.
        for name, kind in (
            ("sample_rate", int),
            ("n_fft", int),
            ("bands", int),
            ("fps", float),
            ("fmin", float),
            ("fmax", float),
            ("loudness", bool),
            ("onset", bool),
        ):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @property
    def dim(self) -> int:
        """Number of values per frame."""
        return self.bands + int(self.loudness) + int(self.onset)

    @property
    def names(self) -> list[str]:
        """One name per value, e.g. ``mel00 .. mel31, loudness, onset``."""
        width = max(2, len(str(self.bands - 1)))
        names = [f"{self.kind}{i:0{width}d}" for i in range(self.bands)]
        return names + ["loudness"] * self.loudness + ["onset"] * self.onset

    def n_frames(self, n_samples: int) -> int:
        """Frames for a signal of `n_samples`: ``ceil(n_samples * fps / sample_rate)``."""
        # Exact rational arithmetic: a float product could land just above an integer.
        return math.ceil(Fraction(int(n_samples)) * Fraction(self.fps) / self.sample_rate)

    def frame_ends(self, index: np.ndarray | int) -> np.ndarray:
        """Sample index (exclusive) where the window of each frame index ends."""
        i = np.asarray(index, dtype=np.float64)
        return np.rint(i * self.sample_rate / self.fps).astype(np.int64) + self.n_fft // 2

    def to_dict(self) -> dict:
        """JSON-able dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> FeatureConfig:
        """Build from `to_dict` output; unknown keys or bad values raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"FeatureConfig: expected a dict, got {type(d).__name__}")
        reject_unknown(cls, d, "FeatureConfig")
        values = dict(d)
        for name in ("sample_rate", "n_fft", "bands"):
            # JSON writers may turn 24000 into 24000.0: accept integral floats.
            v = values.get(name)
            if isinstance(v, float) and v.is_integer():
                values[name] = int(v)
        return cls(**values)


# ----------------------------------------------------------------------------- kernels


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _ensure_nonempty(weights: np.ndarray, centres: np.ndarray, bin_hz: np.ndarray) -> None:
    """Give any filter that covers no FFT bin the bin nearest its centre (in place)."""
    for b in np.flatnonzero(weights.sum(axis=1) <= 0):
        weights[b, np.argmin(np.abs(bin_hz - centres[b]))] = 1.0


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular HTK-mel filters, shape (bands, n_fft // 2 + 1), peak weight 1."""
    bin_hz = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.bands + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_hz - lo) / (mid - lo)
    falling = (hi - bin_hz) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    _ensure_nonempty(weights, edges[1:-1], bin_hz)
    return weights


def linear_bands(cfg: FeatureConfig) -> np.ndarray:
    """Averaging matrix (bands, n_fft // 2 + 1) for bands fmin..fmax of equal width: in Hz,
    or in log frequency for kind ``log``."""
    bin_hz = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    spacing = np.geomspace if cfg.kind == "log" else np.linspace
    edges = spacing(cfg.fmin, cfg.fmax, cfg.bands + 1)
    inside = (bin_hz >= edges[:-1, None]) & (bin_hz < edges[1:, None])
    inside[-1] |= bin_hz == edges[-1]  # fmax belongs to the last band
    weights = inside.astype(np.float64)
    _ensure_nonempty(weights, (edges[:-1] + edges[1:]) / 2, bin_hz)
    return weights / weights.sum(axis=1, keepdims=True)


class _Kernel:
    """Constants derived from a config (window, filter matrices), built once per config."""

    def __init__(self, cfg: FeatureConfig) -> None:
        n = cfg.n_fft
        self.cfg = cfg
        self.hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic Hann
        self.mel = mel_filterbank(cfg)
        self.fft = linear_bands(cfg) if cfg.kind in ("fft", "log") else None
        self.need_spectrum = cfg.kind != "wave" or cfg.onset
        self.need_mel = cfg.kind == "mel" or cfg.onset
        # Segment boundaries for `wave` (reduceat wants the start of each segment).
        bounds = np.rint(np.linspace(0, n, cfg.bands + 1)).astype(np.int64)
        self.wave_starts = bounds[:-1]
        self.wave_sizes = np.diff(bounds).astype(np.float64)
        # Onset compares each window with the one ending this many samples earlier.
        self.lag = n // 2


@functools.lru_cache(maxsize=16)
def _kernel(cfg: FeatureConfig) -> _Kernel:
    return _Kernel(cfg)


def _log_mel(kern: _Kernel, windows: np.ndarray) -> np.ndarray:
    spec = np.fft.rfft(windows * kern.hann, axis=1)
    return np.log((spec.real**2 + spec.imag**2) @ kern.mel.T + _EPS)


def _frame_features(kern: _Kernel, windows: np.ndarray, lagged: np.ndarray) -> np.ndarray:
    """Features of frames from their raw windows.

    `windows` is (k, n_fft) float64 and `lagged` the windows ending `kern.lag` samples
    earlier (used for onset only). Returns (k, dim) float32. The single implementation
    behind both offline and streaming extraction.
    """
    cfg = kern.cfg
    k = windows.shape[0]
    out = np.empty((k, cfg.dim), dtype=np.float64)
    logmel = None
    if kern.need_spectrum:
        spec = np.fft.rfft(windows * kern.hann, axis=1)
        power = spec.real**2 + spec.imag**2
        if kern.need_mel:
            logmel = np.log(power @ kern.mel.T + _EPS)
    if cfg.kind == "mel":
        out[:, : cfg.bands] = logmel
    elif kern.fft is not None:
        out[:, : cfg.bands] = np.log(power @ kern.fft.T + _EPS)
    else:
        sums = np.add.reduceat(windows, kern.wave_starts, axis=1)
        out[:, : cfg.bands] = sums / kern.wave_sizes
    col = cfg.bands
    if cfg.loudness:
        out[:, col] = 10.0 * np.log10(np.mean(windows * windows, axis=1) + _EPS)
        col += 1
    if cfg.onset:
        assert logmel is not None
        out[:, col] = np.maximum(0.0, logmel - _log_mel(kern, lagged)).mean(axis=1)
    return out.astype(np.float32)


def _as_signal(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():  # one bad sample must not poison whole frames
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


# ---------------------------------------------------------------------------- extractors


class FeatureExtractor:
    """Computes `FeatureConfig` features, offline or as a stream."""

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        self.cfg = cfg or FeatureConfig()
        self._kern = _kernel(self.cfg)

    @property
    def dim(self) -> int:
        """Values per frame (same as ``cfg.dim``)."""
        return self.cfg.dim

    def offline(self, samples: np.ndarray) -> np.ndarray:
        """All frames of a mono signal at ``cfg.sample_rate``: (n_frames, dim) float32."""
        cfg = self.cfg
        x = _as_signal(samples)
        n_frames = cfg.n_frames(x.shape[0])
        out = np.empty((n_frames, cfg.dim), dtype=np.float32)
        if n_frames == 0:
            return out
        n = cfg.n_fft
        # Pad n_fft zeros on both sides: window of frame i is padded[end_i : end_i + n]
        # (end_i <= len(x) + n_fft // 2, so the right pad always suffices).
        padded = np.concatenate([np.zeros(n), x, np.zeros(n)])
        views = sliding_window_view(padded, n)
        ends = cfg.frame_ends(np.arange(n_frames))
        lag = self._kern.lag
        for lo in range(0, n_frames, _BATCH):
            hi = min(lo + _BATCH, n_frames)
            out[lo:hi] = _frame_features(self._kern, views[ends[lo:hi]], views[ends[lo:hi] - lag])
        return out

    def stream(self) -> StreamingExtractor:
        """A fresh streaming extractor with this configuration."""
        return StreamingExtractor(self.cfg)


class StreamingExtractor:
    """Incremental features: blocks of samples in, completed frames out.

    Frame i is complete once ``end_i`` samples have been pushed. Only the last
    ``n_fft + n_fft // 2`` samples (a window and the onset lag) plus one block piece are
    kept, so memory stays constant however long the stream runs. ``push`` over a whole
    signal followed by ``flush`` returns exactly the frames of `FeatureExtractor.offline`.
    """

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        self.cfg = cfg or FeatureConfig()
        self._kern = _kernel(self.cfg)
        # History: a window plus the onset lag before it.
        self._history = self.cfg.n_fft + self._kern.lag
        # Large blocks are consumed in pieces of at most `_piece` samples, so the buffer
        # never grows beyond the history plus one piece.
        self._piece = max(self.cfg.n_fft, 4096)
        self._buf = np.zeros(self._history + self._piece, dtype=np.float64)
        self._empty = np.zeros((0, self.cfg.dim), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget everything and start a new stream at time 0."""
        n = self._history
        self._buf[:n] = 0.0  # the zeros before the start of the audio
        self._fill = n  # valid samples in _buf
        self._buf_start = -n  # absolute sample index of _buf[0]
        self._total = 0  # samples pushed so far
        self._finished = False
        self.frames_emitted = 0
        self._next_end = int(self.cfg.frame_ends(0))

    @property
    def samples_pushed(self) -> int:
        """Number of samples pushed since the start (or the last reset)."""
        return self._total

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add samples; return the (k, dim) float32 frames completed by them (k >= 0)."""
        if self._finished:
            raise RuntimeError("push() after flush(): call reset() to start a new stream")
        x = _as_signal(block)
        if x.shape[0] == 0:
            return self._empty
        out = []
        for lo in range(0, x.shape[0], self._piece):
            piece = x[lo : lo + self._piece]
            self._append(piece)
            self._total += piece.shape[0]
            frames = self._emit(None)
            if frames.shape[0]:
                out.append(frames)
        if not out:
            return self._empty
        return out[0] if len(out) == 1 else np.concatenate(out)

    def flush(self) -> np.ndarray:
        """End the stream: return the remaining frames as if zeros followed.

        The total frame count is ``ceil(samples_pushed * fps / sample_rate)``, the same
        as `FeatureExtractor.offline` for the concatenated blocks.
        """
        if self._finished:
            return self._empty
        self._finished = True
        limit = self.cfg.n_frames(self._total)
        out = []
        while self.frames_emitted < limit:
            # Zeros after the end, as offline pads them; never counted in _total.
            need = int(self.cfg.frame_ends(limit - 1)) - (self._buf_start + self._fill)
            self._append(np.zeros(min(max(need, 0), self._piece)))
            out.append(self._emit(limit))
        out = [f for f in out if f.shape[0]]
        if not out:
            return self._empty
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _append(self, piece: np.ndarray) -> None:
        n = self._history
        m = piece.shape[0]
        if self._fill + m > self._buf.shape[0]:
            # Frames not emitted yet end after the newest sample, so their windows (and
            # lagged windows) start within the last `_history` samples: keep only those.
            self._buf[:n] = self._buf[self._fill - n : self._fill]
            self._buf_start += self._fill - n
            self._fill = n
        self._buf[self._fill : self._fill + m] = piece
        self._fill += m

    def _emit(self, limit: int | None) -> np.ndarray:
        """All frames whose window is in the buffer (and whose index is below `limit`)."""
        cfg = self.cfg
        available = self._buf_start + self._fill
        out = []
        while self._next_end <= available and (limit is None or self.frames_emitted < limit):
            # Candidate frames from the hop (+2 covers rounding), trimmed by exact ends.
            first = self.frames_emitted
            stop = first + int((available - self._next_end) * cfg.fps / cfg.sample_rate) + 2
            if limit is not None:
                stop = min(stop, limit)
            ends = cfg.frame_ends(np.arange(first, stop))
            ends = ends[ends <= available]
            views = sliding_window_view(self._buf[: self._fill], cfg.n_fft)
            starts = ends - cfg.n_fft - self._buf_start
            frames = _frame_features(self._kern, views[starts], views[starts - self._kern.lag])
            out.append(frames)
            self.frames_emitted += ends.shape[0]
            self._next_end = int(cfg.frame_ends(self.frames_emitted))
        if not out:
            return self._empty
        return out[0] if len(out) == 1 else np.concatenate(out)


# ------------------------------------------------------------------------- normalisation


@dataclass
class FeatureStats:
    """Per-feature mean and standard deviation used to normalise features."""

    mean: np.ndarray
    std: np.ndarray

    MIN_STD = 1e-3  # floor so that constant features do not blow up

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"FeatureStats: mean has {self.mean.size} values, std {self.std.size}")

    @classmethod
    def fit(cls, features: np.ndarray) -> FeatureStats:
        """Statistics of (n_frames, dim) features (computed in float64)."""
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[0] == 0:
            raise ValueError(f"FeatureStats.fit: expected (n_frames >= 1, dim), got {f.shape}")
        return cls(f.mean(axis=0), np.maximum(f.std(axis=0), cls.MIN_STD))

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean) / std`` as float32; works on (..., dim) arrays."""
        f = np.asarray(features)
        if f.shape[-1:] != self.mean.shape:
            raise ValueError(f"FeatureStats.normalize: expected last dim {self.mean.size}, got {f.shape}")
        return ((f - self.mean) / self.std).astype(np.float32, copy=False)

    def to_dict(self) -> dict:
        """JSON-able dict: ``{"mean": [...], "std": [...]}``."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: Any) -> FeatureStats:
        """Inverse of `to_dict`; checks keys, lengths, finiteness and std > 0."""
        if not isinstance(d, dict):
            raise ValueError(f"FeatureStats: expected a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - {"mean", "std"}, key=str)
        if unknown:
            raise ValueError(f"FeatureStats: unknown field(s) {', '.join(map(repr, unknown))}")
        arrays = {}
        for name in ("mean", "std"):
            v = d.get(name)
            if not isinstance(v, (list, tuple)) or not v:
                raise ValueError(f"FeatureStats.{name}: expected a non-empty list of numbers")
            try:
                a = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"FeatureStats.{name}: not a list of numbers ({exc})") from None
            if a.ndim != 1 or not np.isfinite(a).all():
                raise ValueError(f"FeatureStats.{name}: values must be finite numbers")
            arrays[name] = a
        if arrays["mean"].size != arrays["std"].size:
            raise ValueError(
                f"FeatureStats.std: {arrays['std'].size} values but mean has {arrays['mean'].size}"
            )
        if (arrays["std"] <= 0).any():
            raise ValueError("FeatureStats.std: values must be > 0")
        return cls(arrays["mean"], arrays["std"])
