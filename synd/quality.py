"""Pure measurements of rendered pictures: do they see the sound, and do they look good?

How it differs from its neighbours: these compare synd's own frames with the features
its model painted them from. `synd.judge` scores any video from its pictures and sound
alone (what a viewer sees), `synd.evaluate` runs a model over songs and reports both,
and `synd.measure` times and counts (speed, the machine's limits) for `synd bench`.

Frames
------
Every function here takes ``frames`` as either

* a uint8 RGB array ``(n, H, W, 3)`` with values 0..255 (what `synd.frameloop.to_rgb_uint8`
  produces), or
* a float array ``(n, H, W, 3)`` with values in [0, 1] (not clipped: keep them in range),

or a sequence (e.g. a list) of ``(H, W, 3)`` frames of one such kind and one size.
`to_unit_float` is the one conversion: uint8 is divided by 255, floats are taken as they
are, and everything is float32 in [0, 1]. Work is done in chunks of a few tens of
megabytes, so ten thousand 456x256 frames never become one giant float copy.

Measures
--------
* `r2_score`: the share of the sound features' variance a read-out explains (the
  decoder's `sound_r2`, the probe's `probe_r2`).
* `thumbnails`: tiny area-averaged pictures, the input of the read-out probe.
* `probe_r2`: how much of the sound features a fresh linear (ridge) probe can read from
  the thumbnails of frames it was not fitted on.
* `frame_change` and `sync`: does the picture change when the sound has an onset, and
  how many frames late?
* `colorfulness`: Hasler & Suesstrunk (2003) colourfulness, per frame.
* `flicker`: mean absolute frame-to-frame change (meant for frames rendered on silence).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = [
    "r2_score",
    "to_unit_float",
    "thumbnails",
    "probe_r2",
    "probe_predictions",
    "pearson",
    "frame_change",
    "sync",
    "sync_lags",
    "colorfulness",
    "flicker",
]

# Float32 bytes per chunk of frames converted at once (about 32 MB).
_CHUNK_BYTES = 32 * 1024 * 1024
# Ridge strengths tried, relative to trace(X^T X) / D of the standardised training inputs.
_ALPHA_GRID = 10.0 ** np.arange(-6.0, 4.01, 0.5)
# Columns whose training standard deviation is below this (on the 0-1 scale) are constant.
_CONSTANT_STD = 1e-6
# Smallest track accepted by `probe_r2` (each half must split again for validation).
_MIN_TRACK = 8


# ----------------------------------------------------------------------------- frames


FrameInput = np.ndarray | Sequence[np.ndarray]


def r2_score(target: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination of a multi-column read-out, variance-weighted.

    The share of the target's total variance (summed over columns) that the prediction
    explains: 1.0 is a perfect read-out, 0.0 is no better than always guessing each
    column's mean. Pooling the columns (scikit-learn's "variance_weighted") keeps a column
    that hardly varies in this audio, such as a band that stays silent, from dominating.
    """
    target = np.asarray(target, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if target.shape != predicted.shape or target.ndim != 2:
        raise ValueError(
            f"r2_score needs two (n, d) arrays of one shape, got {target.shape} and {predicted.shape}"
        )
    residual = ((target - predicted) ** 2).sum(axis=0)
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    if total.sum() <= 1e-12:
        raise ValueError("r2_score: the target does not vary")
    return float(1.0 - residual.sum() / total.sum())


def to_unit_float(frames: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float ([0, 1]) RGB frames -> float32 in [0, 1], same shape.

    The one conversion used by this module: uint8 is divided by 255; floating-point input
    is cast to float32 unchanged (it is assumed to be in [0, 1] already). Any other dtype
    raises ValueError.
    """
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(frames.dtype, np.floating):
        return frames.astype(np.float32, copy=False)
    raise ValueError(f"frames must be uint8 (0..255) or float ([0, 1]), got dtype {frames.dtype}")


def _frame_shape(frames: FrameInput) -> tuple[int, int, int]:
    """(n, H, W) of valid frames; raises ValueError for anything that is not RGB frames."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (n, H, W, 3), got shape {frames.shape}")
        return frames.shape[0], frames.shape[1], frames.shape[2]
    n = len(frames)
    if n == 0:
        raise ValueError("no frames given")
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[-1] != 3:
        raise ValueError(f"each frame must be (H, W, 3), got shape {first.shape}")
    return n, first.shape[0], first.shape[1]


def _chunks(frames: FrameInput) -> Iterator[np.ndarray]:
    """Yield consecutive float32 [0, 1] chunks (c, H, W, 3) covering all frames in order."""
    n, h, w = _frame_shape(frames)
    step = max(1, _CHUNK_BYTES // (h * w * 3 * 4))
    for a in range(0, n, step):
        part = frames[a : a + step]
        if not isinstance(part, np.ndarray):
            part = np.stack([np.asarray(f) for f in part])
        if part.shape[1:] != (h, w, 3):
            raise ValueError(f"frames differ in size: {part.shape[1:]} vs {(h, w, 3)}")
        yield to_unit_float(part)


# ----------------------------------------------------------------------------- thumbnails


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of area-resampling weights; each row sums to 1.

    Output pixel i covers the input interval [i * n_in / n_out, (i + 1) * n_in / n_out);
    its weight on input pixel j is the length of overlap with [j, j + 1), normalised.
    When n_in is a multiple of n_out this is an exact block mean.
    """
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def thumbnails(frames: FrameInput, side: int = 16) -> np.ndarray:
    """Area-averaged ``side x side`` thumbnails, flattened: (n, side * side * 3) float32.

    Each thumbnail pixel is the mean of the input area it covers (an exact block mean when
    H and W are multiples of `side`; otherwise partly covered pixels count by the share of
    their area inside, as in an area resample). Values are on the 0-1 scale, flattened in
    (row, column, channel) order.
    """
    if not isinstance(side, (int, np.integer)) or side < 1:
        raise ValueError(f"side must be a positive integer, got {side!r}")
    n, h, w = _frame_shape(frames)
    wy = _area_weights(h, side).astype(np.float32)  # (side, H)
    wx = _area_weights(w, side).astype(np.float32)  # (side, W)
    out = np.empty((n, side, side, 3), dtype=np.float32)
    a = 0
    for chunk in _chunks(frames):
        c = len(chunk)
        cols = np.tensordot(chunk, wx, axes=([2], [1]))  # (c, H, 3, side_x)
        both = np.tensordot(wy, cols, axes=([1], [1]))  # (side_y, c, 3, side_x)
        out[a : a + c] = both.transpose(1, 0, 3, 2)  # (c, side_y, side_x, 3)
        a += c
    return out.reshape(n, side * side * 3)


# ----------------------------------------------------------------------------- probe


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the columns of x; constant columns get scale 1 (they become 0)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > _CONSTANT_STD, std, 1.0)


class _RidgePath:
    """Ridge regressions of y on standardised x for many strengths, from one eigh.

    Primal form (D <= n): W = V diag(1 / (l + alpha)) V^T X^T Y with X^T X = V diag(l) V^T.
    Dual form (D > n): W = X^T U diag(1 / (l + alpha)) U^T Y with X X^T = U diag(l) U^T.
    Inputs are standardised and targets centred with this training set's statistics, so
    the intercept is the training mean of y.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.x_mean, self.x_scale = _standardiser(x)
        self.y_mean = y.mean(axis=0)
        xs = (x - self.x_mean) / self.x_scale
        yc = y - self.y_mean
        n, d = xs.shape
        self.dual = d > n
        if self.dual:
            lam, u = np.linalg.eigh(xs @ xs.T)
            self._left = xs.T @ u  # (D, n): X^T U
            self._right = u.T @ yc  # (n, F): U^T Y
        else:
            lam, v = np.linalg.eigh(xs.T @ xs)
            self._left = v  # (D, D)
            self._right = v.T @ (xs.T @ yc)  # (D, F): V^T X^T Y
        self.eigenvalues = np.clip(lam, 0.0, None)
        # Alphas are relative to trace(X^T X) / D (the same in both forms): about the
        # number of training frames, so a relative strength carries over between sets.
        self.scale = float(self.eigenvalues.sum()) / d

    def alphas(self) -> np.ndarray:
        """The grid of absolute ridge strengths tried for this training set."""
        return _ALPHA_GRID * max(self.scale, 1e-12)

    def weights(self, alpha: float) -> np.ndarray:
        """(D, F) coefficients on standardised inputs for ridge strength `alpha`."""
        return self._left @ (self._right / (self.eigenvalues + alpha)[:, None])

    def predict(self, x: np.ndarray, alpha: float) -> np.ndarray:
        """Predicted targets (n, F) for raw inputs x."""
        xs = (np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_scale
        return xs @ self.weights(alpha) + self.y_mean


Track = tuple[np.ndarray, np.ndarray]


def _check_tracks(tracks: list[Track]) -> list[Track]:
    if not tracks:
        raise ValueError("probe_r2 needs at least one track")
    out, d, f = [], None, None
    for k, (x, y) in enumerate(tracks):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise ValueError(
                f"track {k}: need thumbs (n, D) and targets (n, F) of one length, got {x.shape} and {y.shape}"
            )
        if len(x) < _MIN_TRACK:
            raise ValueError(f"track {k}: {len(x)} frames, need at least {_MIN_TRACK}")
        if d is None:
            d, f = x.shape[1], y.shape[1]
        elif (x.shape[1], y.shape[1]) != (d, f):
            raise ValueError(f"track {k}: widths {x.shape[1]}, {y.shape[1]} differ from track 0's {d}, {f}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"track {k}: thumbs or targets are not all finite")
        out.append((x, y))
    return out


def _probe_split(tracks: list[Track]) -> dict[str, np.ndarray]:
    """Pooled split of every track: fit / validate / train (= fit + validate) / test.

    Track of n frames: train = frames [0, n // 2), test = [n // 2, n); within train,
    fit = its first n_train - n_train // 4 frames, validate = its last n_train // 4.
    """
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("x_fit", "y_fit", "x_val", "y_val", "x_train", "y_train", "x_test", "y_test")
    }
    for x, y in tracks:
        half = len(x) // 2
        cut = half - half // 4
        for name, sl in (
            ("fit", slice(0, cut)),
            ("val", slice(cut, half)),
            ("train", slice(0, half)),
            ("test", slice(half, None)),
        ):
            parts["x_" + name].append(x[sl])
            parts["y_" + name].append(y[sl])
    return {k: np.concatenate(v) for k, v in parts.items()}


def probe_r2(tracks: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """R^2 of a fresh linear probe reading the sound features from frame thumbnails.

    `tracks` is a list of ``(thumbs (n_i, D), targets (n_i, F))``, one per piece of audio,
    frames in time order (e.g. `thumbnails` of the rendered frames and the normalised
    features that drove them). Per track, the first half (``n_i // 2`` frames) is for
    training and the second half for testing; halves are pooled over tracks. Consecutive
    frames are alike, so splitting in time (rather than at random) keeps the probe from
    scoring by remembering near-duplicates of the test frames.

    The probe is ridge regression with an intercept on inputs standardised with the
    training half's mean and standard deviation (constant columns are dropped), solved in
    closed form (dual form when D exceeds the number of training frames). Its strength
    is chosen from a log grid (relative to trace(X^T X) / D, about the frame count)
    using the training halves only: fit on the first 75% of each training half, pick the
    strength with the smallest squared error on the last 25%, refit on the whole training
    half. The score is `r2_score` (variance-weighted R^2) of the pooled
    second halves: 1 is a perfect read-out, 0 no better than the training mean, negative
    worse. Deterministic. Raises ValueError for tracks shorter than 8 frames, mismatched
    widths, non-finite values, or test targets that do not vary.
    """
    return r2_score(*probe_predictions(tracks))


def probe_predictions(tracks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The probe of `probe_r2`, returned as (pooled test targets, their predictions).

    Same split, strength choice and refit as `probe_r2`, for scores other than R^2 (the
    judge's explained variance per picture cell, for one). Same errors.
    """
    s = _probe_split(_check_tracks(tracks))
    inner = _RidgePath(s["x_fit"], s["y_fit"])
    errors = [float(((inner.predict(s["x_val"], a) - s["y_val"]) ** 2).sum()) for a in inner.alphas()]
    best = int(np.argmin(errors))  # first (weakest) strength among equals
    full = _RidgePath(s["x_train"], s["y_train"])
    # The chosen strength is relative to the Gram scale, which grows with the frame count.
    alpha = _ALPHA_GRID[best] * max(full.scale, 1e-12)
    return s["y_test"], full.predict(s["x_test"], alpha)


# ----------------------------------------------------------------------------- change and sync


def frame_change(frames: FrameInput) -> np.ndarray:
    """Mean absolute change from the previous frame, on the 0-1 scale: (n,) float64.

    ``change[t] = mean over pixels and channels of |frame[t] - frame[t-1]|`` for t >= 1, so
    change[t] belongs to frame t (the frame that shows the change), the same index as the
    audio feature of frame t. ``change[0]`` has no previous frame and is 0 by definition;
    `sync` ignores it.
    """
    n, _, _ = _frame_shape(frames)
    out = np.zeros(n, dtype=np.float64)
    prev = None
    a = 0
    for chunk in _chunks(frames):
        c = len(chunk)
        if prev is not None:
            out[a] = np.abs(chunk[0] - prev).mean()
        if c > 1:
            # float32 means use pairwise summation: accurate to about 1e-7 here.
            out[a + 1 : a + c] = np.abs(np.diff(chunk.reshape(c, -1), axis=0)).mean(axis=1)
        prev = chunk[-1].copy()
        a += c
    return out


def sync_lags(max_lag: int = 15) -> np.ndarray:
    """The lags (in frames) of `sync`'s curve: ``-max_lag .. max_lag``."""
    return np.arange(-int(max_lag), int(max_lag) + 1)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equal-length series; 0 where either is constant."""
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 1e-300 else 0.0


def sync(onset: np.ndarray, change: np.ndarray, max_lag: int = 15) -> tuple[float, int, np.ndarray]:
    """Cross-correlation of the audio onset envelope with the picture's frame change.

    `onset` is (n,), one value per video frame. `change` is either (n,) as returned by
    `frame_change` (``change[t]`` = change from frame t-1 to frame t; ``change[0]`` is
    ignored) or (n-1,) with ``change[i]`` the change from frame i to frame i+1 (it is then
    aligned with ``onset[i+1]``). Both become series over frames t = 1 .. n-1.

    Convention: the correlation at lag k is the Pearson correlation of ``onset[t]`` with
    ``change[t + k]`` over every t where both exist. A positive lag means the picture
    changes k frames AFTER the sound; a negative lag means before (which a causal
    renderer cannot do); 0 means the frame that first hears an onset is the frame that
    changes. Where either overlapping series is constant the correlation is undefined and
    counted as 0 (no evidence of sync).

    Returns ``(corr, lag, curve)``: the peak correlation, its lag (the smallest |lag|
    among equal peaks, the negative one first), and the curve, one value per lag in
    ``sync_lags(max_lag)``. Needs n - 1 >= max_lag + 3 so every lag has 3 frames.
    """
    onset = np.asarray(onset, dtype=np.float64).ravel()
    change = np.asarray(change, dtype=np.float64).ravel()
    n = len(onset)
    if len(change) == n:
        change = change[1:]
    elif len(change) != n - 1:
        raise ValueError(f"change must have n ({n}) or n - 1 values, got {len(change)}")
    if not isinstance(max_lag, (int, np.integer)) or max_lag < 0:
        raise ValueError(f"max_lag must be an integer >= 0, got {max_lag!r}")
    m = n - 1
    if m < max_lag + 3:
        raise ValueError(f"sync needs at least max_lag + 4 = {max_lag + 4} frames, got {n}")
    if not (np.isfinite(onset).all() and np.isfinite(change).all()):
        raise ValueError("onset and change must be finite")
    o = onset[1:]  # onset[t] for t = 1 .. n-1, aligned with change[t]
    lags = sync_lags(max_lag)
    curve = np.array(
        [pearson(o[: m - k], change[k:]) if k >= 0 else pearson(o[-k:], change[: m + k]) for k in lags]
    )
    # Peak: the largest correlation; among (near-)equals the lag closest to 0.
    order = sorted(range(len(lags)), key=lambda i: (-np.round(curve[i], 12), abs(lags[i]), lags[i]))
    best = order[0]
    return float(curve[best]), int(lags[best]), curve


# ----------------------------------------------------------------------------- looks


def colorfulness(frames: FrameInput) -> np.ndarray:
    """Hasler & Suesstrunk (2003) colourfulness of each frame, on the 0-255 scale: (n,).

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B`` over the frame's pixels (population
    standard deviations), ``C = sqrt(std_rg^2 + std_yb^2) + 0.3 * sqrt(mean_rg^2 + mean_yb^2)``.
    0 for any grey picture; the paper calls about 33 "moderately", 59 "quite", 82 "highly"
    and 109 "extremely" colourful. Take the median over frames for a summary.
    """
    n, _, _ = _frame_shape(frames)
    out = np.empty(n, dtype=np.float64)
    a = 0
    for chunk in _chunks(frames):
        c = len(chunk)
        px = chunk.reshape(c, -1, 3)
        r, g, b = px[..., 0], px[..., 1], px[..., 2]
        rg = r - g
        yb = np.float32(0.5) * (r + g) - b
        # On the 0-1 scale in float32 (pairwise sums), then scaled: C is linear in scale.
        std = np.sqrt(rg.var(axis=1).astype(np.float64) + yb.var(axis=1).astype(np.float64))
        mean = np.hypot(rg.mean(axis=1).astype(np.float64), yb.mean(axis=1).astype(np.float64))
        out[a : a + c] = 255.0 * (std + 0.3 * mean)
        a += c
    return out


def flicker(frames: FrameInput) -> float:
    """Mean absolute frame-to-frame change over the given frames, on the 0-1 scale.

    The mean of ``frame_change(frames)[1:]`` (n - 1 changes): 0 for a still picture, 1 for
    frames alternating black and white. Meant for frames rendered on silence, where a
    calm visualizer should hardly move. Needs at least 2 frames.
    """
    n, _, _ = _frame_shape(frames)
    if n < 2:
        raise ValueError(f"flicker needs at least 2 frames, got {n}")
    return float(frame_change(frames)[1:].mean())
