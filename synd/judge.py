"""The judge: does a viewer see the music? Scores for any video with a soundtrack.

How it differs from its neighbours: `synd.quality` measures synd's own frames against
the features its model was driven with, and `synd.evaluate` runs a model to get them.
The judge needs nothing but the pictures and the sound, so synd's renders and a capture
of projectM, Resolume or any other tool are scored the same way.

All distances are CIELAB delta-E 1976 (Euclidean distance in L*a*b*, D65) between
area-downscaled sRGB frames; about 2.3 is the smallest difference a viewer notices. The
first ``SKIP_SECONDS`` (2 s) are left out of everything but the flash count (a strobe
at the very start is still a strobe). Frames are squeezed to 16:9 grids whatever their
shape.

* ``motion_de``: median over frames of the mean per-pixel distance to the previous
  frame (64x36 grid). ~0 for a still picture, tens for cuts every frame.
* ``swing_de``: mean over pixels of the per-pixel standard deviation over the clip
  (32x18 grid; sqrt of the summed L, a, b variances): how far each spot travels.
* ``sound_de``, ``sound_frac``: ridge regression from audio features to the 16x9
  picture: 12 log band energies on a log-spaced 40 Hz-Nyquist scale, loudness and
  onset (`synd.features`, kind ``log``), plus each smoothed by exponential averages
  of 0.3 s and 2 s (42 inputs). The strength is chosen inside the first half, the
  regression fitted on the first half and scored on the second (`synd.quality`'s
  probe). Per pixel, explained variance = the second half's variance minus the
  prediction's mean squared error, summed over L, a, b and floored at 0. ``sound_de``
  is the mean over pixels of its square root, ``sound_frac`` explained / total variance.
* ``onset_sync``: peak correlation over lags 0-4 frames of the spectral-flux onset
  envelope with the per-frame motion; ``beat_sync``: the same with both curves
  smoothed over 0.2 s and lags 0-8; ``energy_sync``: loudness against motion, both
  smoothed over 1 s, lags 0-15. A positive lag is the picture answering late.
* ``variety_de``: median distance between 16x9 pictures at least 8 s apart (pictures
  taken every 0.5 s): does the song's course show?
* ``spread_de``: median over frames of the picture's spatial spread (32x18 grid: sqrt
  of the summed L, a, b variances across the frame); ~0 for a flat colour field.
* ``tiling``: median over frames (every second frame) of the highest secondary peak of
  the luminance (L*) autocorrelation at 128x72, over offsets of 10-50 % of the width,
  local maxima only, each peak counted as its height less any rise from the midpoint
  between it and the origin (a ridge, such as a gradient's, is not a repeat): 1 is a
  repeating lattice, ~0 a picture that does not repeat.
* ``flashes_max``, ``flash_hazard_s``: `synd.flash`'s rule (ITU-R BT.1702, WCAG
  2.3.1): the most flashes any 1 s window had over a quarter of the screen, and the
  seconds during which that exceeded 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import maximum_filter, uniform_filter1d
from scipy.signal import lfilter

from synd.features import FeatureConfig, FeatureExtractor
from synd.flash import FlashCounter, srgb_to_linear
from synd.quality import pearson, probe_predictions

__all__ = [
    "JUDGE_KEYS",
    "JUDGE_RATE",
    "MIN_SECONDS",
    "SKIP_SECONDS",
    "Judge",
    "JudgedTrack",
    "combine",
    "judge_features",
    "lab",
    "silence_motion",
]

SKIP_SECONDS = 2.0
#: The shortest clip the judge scores (the skipped start plus 4 s).
MIN_SECONDS = SKIP_SECONDS + 4.0
#: Sample rate of the judge's audio features (Nyquist 12 kHz).
JUDGE_RATE = 24000
#: The judge's numbers, in the order they are shown.
JUDGE_KEYS = (
    "motion_de",
    "swing_de",
    "variety_de",
    "spread_de",
    "tiling",
    "onset_sync",
    "beat_sync",
    "energy_sync",
    "sound_de",
    "sound_frac",
    "flashes_max",
    "flash_hazard_s",
)
SHEET_FRAMES = 16
SHEET_WIDTH = 320
VARIETY_GAP_S = 8.0
VARIETY_EVERY_S = 0.5
TILING_EVERY = 2
EMA_SECONDS = (0.3, 2.0)
_TILE = (128, 72)
_CHUNK = 32
# D65 white and the sRGB -> XYZ matrix (IEC 61966-2-1).
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)
_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    np.float32,
)


def _lab_f(t: np.ndarray) -> np.ndarray:
    d = np.float32(6 / 29)
    return np.where(t > d**3, np.cbrt(t), t / (3 * d * d) + np.float32(4 / 29))


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB on the 0-1 scale (..., 3) -> CIELAB (..., 3) float32 (D65 white)."""
    xyz = srgb_to_linear(rgb) @ _XYZ.T / _WHITE
    f = _lab_f(xyz)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1
    ).astype(np.float32)


def _blocks(x: np.ndarray, k: int) -> np.ndarray:
    """Exact k x k block means of (n, H, W, 3) frames (H and W multiples of k)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // k, k, w // k, k, c).mean(axis=(2, 4))


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean per-pixel delta-E 1976 between Lab pictures (..., pixels, 3)."""
    return np.sqrt(((a - b) ** 2).sum(axis=-1)).mean(axis=-1)


class _Autocorrelation:
    """Normalised luminance autocorrelation at 128x72 and its tiling score."""

    def __init__(self) -> None:
        w, h = _TILE
        self.shape = (2 * h, 2 * w)
        ones = np.fft.rfft2(np.ones((h, w)), s=self.shape)
        overlap = np.fft.irfft2(ones * ones.conj(), s=self.shape)
        self.overlap = np.fft.fftshift(np.maximum(np.rint(overlap), 1.0))
        cy, cx = h, w  # the zero offset after fftshift
        dy, dx = np.mgrid[-cy:cy, -cx:cx]
        radius = np.hypot(dx, dy)
        self.candidates = (radius >= 0.1 * w) & (radius <= 0.5 * w) & (np.abs(dy) <= h // 2)
        # The offset halfway to the origin, as an index into the shifted array.
        self.mid = ((dy / 2).round().astype(int) + cy, (dx / 2).round().astype(int) + cx)

    def tiling(self, luma: np.ndarray) -> float:
        """Tiling score of one (72, 128) luminance picture (see the module docstring)."""
        x = luma.astype(np.float64) - luma.mean()
        var = float((x * x).mean())
        if var < 1e-6:
            return 0.0  # a flat picture repeats nothing
        spec = np.fft.rfft2(x, s=self.shape)
        ac = np.fft.fftshift(np.fft.irfft2(spec * spec.conj(), s=self.shape)) / self.overlap / var
        peaks = self.candidates & (maximum_filter(ac, size=3, mode="constant", cval=-np.inf) <= ac)
        if not peaks.any():
            return 0.0
        height = ac[peaks]
        dip = ac[self.mid[0][peaks], self.mid[1][peaks]]
        score = np.minimum(height, height - dip).max()
        return float(np.clip(score, 0.0, 1.0))


_AUTOCORRELATION: _Autocorrelation | None = None


def _autocorrelation() -> _Autocorrelation:
    global _AUTOCORRELATION
    if _AUTOCORRELATION is None:
        _AUTOCORRELATION = _Autocorrelation()
    return _AUTOCORRELATION


def judge_features(samples: np.ndarray, fps: float) -> tuple[np.ndarray, list[str]]:
    """The judge's audio features of mono samples at `JUDGE_RATE`, one row per frame.

    12 log band energies (40 Hz - Nyquist), loudness (dB) and onset (spectral flux), then
    each smoothed by exponential averages of 0.3 s and 2 s: (n, 42) and the column names.
    """
    cfg = FeatureConfig(kind="log", sample_rate=JUDGE_RATE, fps=fps, bands=12, fmin=40.0, fmax=JUDGE_RATE / 2)
    raw = FeatureExtractor(cfg).offline(samples).astype(np.float64)
    columns, names = [raw], list(cfg.names)
    for tau in EMA_SECONDS:
        a = 1.0 - math.exp(-1.0 / (fps * tau))
        if len(raw):
            smooth, _ = lfilter([a], [1.0, a - 1.0], raw, axis=0, zi=(1 - a) * raw[:1])
        else:
            smooth = raw
        columns.append(smooth)
        names += [f"{n}~{tau:g}s" for n in cfg.names]
    return np.concatenate(columns, axis=1), names


@dataclass
class JudgedTrack:
    """The judge's numbers for one clip, and the series behind its plots."""

    name: str
    fps: float
    frames: int
    numbers: dict
    motion: np.ndarray = field(repr=False)  # (n,) delta-E to the previous frame; [0] = 0
    onset: np.ndarray = field(repr=False)  # (n,) onset envelope of the soundtrack
    flashes: np.ndarray = field(repr=False)  # (n,) flash count of each frame
    sheet: list[np.ndarray] = field(default_factory=list, repr=False)
    sheet_times: list[float] = field(default_factory=list)


class Judge:
    """Takes a clip's frames one by one (bounded memory per frame), then scores it.

    `expected_frames` (if known) places the contact sheet's frames evenly over the clip.
    """

    def __init__(self, fps: float, expected_frames: int | None = None, name: str = "") -> None:
        if not fps > 0:
            raise ValueError(f"fps must be more than 0, got {fps!r}")
        self.fps = float(fps)
        self.name = name
        self.skip = int(round(SKIP_SECONDS * self.fps))
        self._flash = FlashCounter(self.fps)
        self._flashes: list[float] = []
        self._pending: list[np.ndarray] = []
        self._lab32: list[np.ndarray] = []
        self._lab16: list[np.ndarray] = []
        self._motion: list[np.ndarray] = []
        self._tiling: list[float] = []
        self._previous: np.ndarray | None = None  # the last 64x36 Lab picture
        self._shape: tuple[int, ...] | None = None
        self.frames = 0
        self._sheet_at: set[int] = set()
        if expected_frames:
            first = min(self.skip, max(0, expected_frames - 1))
            self._sheet_at = set(
                np.linspace(first, expected_frames - 1, SHEET_FRAMES).round().astype(int).tolist()
            )
        self.sheet: list[np.ndarray] = []
        self.sheet_times: list[float] = []

    def add(self, frame: np.ndarray) -> None:
        """The next frame: (H, W, 3) uint8 RGB."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(
                f"frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, the first "
                f"was {self._shape[1]}x{self._shape[0]}"
            )
        self._flashes.append(self._flash.push(frame).flashes)
        if self.frames in self._sheet_at:
            h = max(1, round(SHEET_WIDTH * frame.shape[0] / frame.shape[1]))
            self.sheet.append(cv2.resize(frame, (SHEET_WIDTH, h), interpolation=cv2.INTER_AREA))
            self.sheet_times.append(self.frames / self.fps)
        self._pending.append(
            cv2.resize(frame, _TILE, interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)
        )
        self.frames += 1
        if len(self._pending) == _CHUNK:
            self._measure()

    def _measure(self) -> None:
        if not self._pending:
            return
        start = self.frames - len(self._pending)
        tile = np.stack(self._pending)  # (c, 72, 128, 3) sRGB 0-1
        self._pending = []
        lab64 = lab(_blocks(tile, 2)).reshape(len(tile), -1, 3)
        self._lab32.append(lab(_blocks(tile, 4)).reshape(len(tile), -1, 3))
        self._lab16.append(lab(_blocks(tile, 8)).reshape(len(tile), -1, 3))
        # The first frame has no previous frame: compared with itself, its motion is 0.
        first = lab64[:1] if self._previous is None else self._previous[None]
        motion = _distance(lab64, np.concatenate([first, lab64[:-1]]))
        self._motion.append(motion)
        self._previous = lab64[-1]
        ac = _autocorrelation()
        for i in range(len(tile)):
            if (start + i) % TILING_EVERY == 0 and start + i >= self.skip:
                luma = lab(tile[i])[..., 0]
                self._tiling.append(ac.tiling(luma))

    def motion(self) -> np.ndarray:
        """Per-frame motion (delta-E to the previous frame, 64x36) of every frame so far."""
        self._measure()
        return np.concatenate(self._motion) if self._motion else np.zeros(0)

    def score(self, samples: np.ndarray) -> JudgedTrack:
        """The numbers, given the soundtrack as mono samples at `JUDGE_RATE`."""
        self._measure()
        n_video = self.frames
        feats, names = judge_features(np.asarray(samples, np.float32).ravel(), self.fps)
        n = min(n_video, len(feats))
        if n < MIN_SECONDS * self.fps:
            raise ValueError(
                f"'{self.name}': {n / self.fps:.1f} s of pictures with sound; the "
                f"judge needs at least {MIN_SECONDS:g} s"
            )
        lab32 = np.concatenate(self._lab32)[self.skip : n]
        lab16 = np.concatenate(self._lab16)[self.skip : n]
        motion = self.motion()[:n]
        feats = feats[:n]
        onset = feats[:, names.index("onset")]
        loudness = feats[:, names.index("loudness")]
        flashes = np.asarray(self._flashes, np.float64)
        s = self.skip
        numbers = {
            "motion_de": float(np.median(motion[max(s, 1) :])),
            "swing_de": float(np.sqrt(lab32.astype(np.float64).var(axis=0).sum(axis=-1)).mean()),
            "variety_de": _variety(lab16, self.fps),
            "spread_de": float(np.median(np.sqrt(lab32.astype(np.float64).var(axis=1).sum(axis=-1)))),
            "tiling": float(np.median(self._tiling)) if self._tiling else 0.0,
            "onset_sync": _lagged(onset[s:], motion[s:], 4),
            "beat_sync": _lagged(*_smooth(onset[s:], motion[s:], seconds=0.2, fps=self.fps), 8),
            "energy_sync": _lagged(*_smooth(loudness[s:], motion[s:], seconds=1.0, fps=self.fps), 15),
            **_sound(feats[s:], lab16),
            "flashes_max": float(flashes.max()) if len(flashes) else 0.0,
            "flash_hazard_s": float((flashes > 3).sum() / self.fps),
        }
        # NaN (variety of a clip too short for two pictures 8 s apart) becomes None: JSON's null.
        numbers = {k: round(numbers[k], 4) if math.isfinite(numbers[k]) else None for k in JUDGE_KEYS}
        return JudgedTrack(
            name=self.name,
            fps=self.fps,
            frames=n,
            numbers=numbers,
            motion=motion,
            onset=onset,
            flashes=flashes,
            sheet=self.sheet,
            sheet_times=self.sheet_times,
        )


def _variety(lab16: np.ndarray, fps: float) -> float:
    """Median distance between pictures at least `VARIETY_GAP_S` apart (NaN if too short)."""
    step = max(1, int(round(VARIETY_EVERY_S * fps)))
    pictures = lab16[::step].astype(np.float32)
    gap = int(math.ceil(VARIETY_GAP_S * fps / step))
    distances = [_distance(pictures[i], pictures[i + gap :]) for i in range(len(pictures) - gap)]
    if not distances:
        return float("nan")
    return float(np.median(np.concatenate(distances)))


def _smooth(
    sound: np.ndarray, picture: np.ndarray, *, seconds: float, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    size = max(1, int(round(seconds * fps)))
    return (
        uniform_filter1d(np.asarray(sound, np.float64), size, mode="nearest"),
        uniform_filter1d(np.asarray(picture, np.float64), size, mode="nearest"),
    )


def _lagged(sound: np.ndarray, picture: np.ndarray, max_lag: int) -> float:
    """Peak Pearson correlation of sound[t] with picture[t + k] over k = 0..max_lag."""
    m = len(sound)
    return max(pearson(sound[: m - k], picture[k:]) for k in range(max_lag + 1) if m - k >= 3)


def _sound(feats: np.ndarray, lab16: np.ndarray) -> dict:
    """sound_de and sound_frac: how much of the 16x9 picture the sound explains."""
    y = lab16.reshape(len(lab16), -1).astype(np.float64)
    truth, predicted = probe_predictions([(feats, y)])
    truth = truth.reshape(len(truth), -1, 3)
    predicted = predicted.reshape(truth.shape)
    total = truth.var(axis=0).sum(axis=-1)  # per pixel
    residual = ((truth - predicted) ** 2).mean(axis=0).sum(axis=-1)
    explained = np.maximum(0.0, total - residual)
    frac = float(explained.sum() / total.sum()) if total.sum() > 1e-9 else 0.0
    return {"sound_de": float(np.sqrt(explained).mean()), "sound_frac": frac}


def combine(tracks: list[JudgedTrack]) -> dict:
    """The numbers over several clips: frame-weighted means, except the flashes (the
    worst clip's `flashes_max` and the summed `flash_hazard_s`)."""
    if not tracks:
        raise ValueError("nothing was judged")
    weights = np.array([t.frames for t in tracks], np.float64)
    out: dict[str, float | None] = {}
    for key in JUDGE_KEYS:
        values = np.array([np.nan if t.numbers[key] is None else t.numbers[key] for t in tracks], np.float64)
        if key == "flashes_max":
            out[key] = float(values.max())
        elif key == "flash_hazard_s":
            out[key] = round(float(values.sum()), 4)
        else:
            ok = np.isfinite(values)
            out[key] = (
                round(float((values[ok] * weights[ok]).sum() / weights[ok].sum()), 4) if ok.any() else None
            )
    return out


def silence_motion(frames: list[np.ndarray], fps: float) -> float:
    """Median `motion_de` of frames rendered on silence, all of them (nothing skipped)."""
    judge = Judge(fps)
    for f in frames:
        judge.add(f)
    motion = judge.motion()
    return float(np.median(motion[1:])) if len(motion) > 1 else 0.0


def judge_video(video, audio=None, name: str | None = None, progress=None) -> JudgedTrack:
    """Judge a video file made by any program, with its own soundtrack or `audio`.

    Raises ValueError (one line) for a file that is not a video, a video without sound
    and no `audio`, or a clip too short to judge; `synd.audio.AudioError` for sound that
    cannot be read.
    """
    from pathlib import Path

    from synd.audio import load_audio
    from synd.video import read_frames, read_video_info

    video = Path(video)
    try:
        info = read_video_info(video)
    except (ValueError, OSError) as e:
        raise ValueError(f"cannot read the video '{video}': {e}") from None
    except Exception as e:  # noqa: BLE001 - PyAV's errors: not a video at all
        raise ValueError(f"'{video}' is not a video file ({type(e).__name__}: {e})") from None
    if not info.get("fps"):
        raise ValueError(f"'{video}' does not say its frame rate")
    if audio is None and info.get("audio_codec") is None:
        raise ValueError(f"'{video}' has no soundtrack: give the music with --audio")
    samples = load_audio(audio if audio is not None else video, JUDGE_RATE)
    judge = Judge(info["fps"], expected_frames=info.get("n_frames"), name=name or video.name)
    for frame in read_frames(video):
        judge.add(frame)
        if progress is not None:
            progress.update()
    return judge.score(samples)
