"""The photosensitive flash rule: one implementation for the judge and the flash guard.

It follows the general-flash and red-flash thresholds of ITU-R BT.1702 (the same as
WCAG 2.3.1 and Ofcom's guidance), measured on a coarse grid of the frame, the frame
taken as filling the screen:

* A **transition** is a change of a cell's relative luminance Y (linear sRGB,
  ``0.2126 R + 0.7152 G + 0.0722 B``) of at least ``TRANSITION`` (0.1, 10 % of white)
  between a brighter and a darker state, where the darker state is below ``DARK_LIMIT``
  (0.8). A change counts once it has built up, however many frames it takes; a cell
  that keeps rising (or falling) makes one transition, not many.
* A **red transition** is a change of ``max(0, R - G - B) * 320`` (linear R, G, B) of
  more than ``RED_TRANSITION`` (20 in the standard's units) where one of the two states
  is a saturated red (``R / (R + G + B) >= 0.8``).
* A **flash** is a pair of opposing transitions, so a cell's flash count over the last
  second is half its transitions there (luminance and red counted separately).
* The frame's **flash count** is the number of flashes that at least ``AREA`` (25 %) of
  the screen made within the last second: half the transitions of the cell at that
  quantile. More than ``MAX_FLASHES`` (3) is a **hazard**: more than 6 transitions in
  any 1 s window over a quarter of the screen.

Cells are the frame area-averaged to ``GRID`` (32x18) in sRGB and then linearised, so
detail finer than a cell is averaged in gamma space (a fine black-and-white checker
reads as mid-grey, not as its linear mean): the rule is about large areas, and this
keeps it cheap (a few tens of microseconds a frame).

`FlashCounter` follows a stream of frames. `peek` says what a frame would do without
taking it (the guard's question), `push` takes it. It is a measurement, not a
certification: the standard's own tests (e.g. the Harding FPA analyser) also weigh
viewing distance and spatial patterns, which this does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

__all__ = ["GRID", "FlashCounter", "FlashGuard", "FlashReading", "cell_signals", "srgb_to_linear"]

GRID = (32, 18)  # cells across and down
TRANSITION = 0.1  # relative luminance
DARK_LIMIT = 0.8  # the darker state of a transition is below this
RED_SATURATION = 0.8  # R / (R + G + B) of a saturated red
RED_SCALE = 320.0  # the standard's units for R - G - B
RED_TRANSITION = 20.0  # a red transition changes more than this
MAX_FLASHES = 3  # allowed within any 1 s
AREA = 0.25  # share of the screen that must flash together
_MAX_TRANSITIONS = 2 * MAX_FLASHES  # 6 transitions are 3 flashes: the 7th is too many
#: The guard holds itself to a stricter rule, so that its output stays within the real
#: one after scaling and lossy encoding (which move a cell's luminance by about 0.01).
GUARD_MARGIN = 0.8


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB values on the 0-1 scale -> linear light (IEC 61966-2-1), float32."""
    v = np.asarray(values, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def cell_signals(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One RGB frame (H, W, 3), uint8 or float in [0, 1], -> its cells' signals.

    Returns flat arrays over the ``GRID`` cells (row-major): relative luminance Y,
    the red value ``max(0, R - G - B) * 320`` and whether the cell is a saturated red.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame must be (H, W, 3), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        frame = frame.astype(np.float32, copy=False)
    small = cv2.resize(frame, GRID, interpolation=cv2.INTER_AREA).reshape(-1, 3)
    unit = small.astype(np.float32) * np.float32(1 / 255) if frame.dtype == np.uint8 else small
    lin = srgb_to_linear(unit)
    r, g, b = lin[:, 0], lin[:, 1], lin[:, 2]
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    red = np.maximum(0.0, r - g - b) * RED_SCALE
    saturated = r >= RED_SATURATION * (r + g + b + 1e-12)
    saturated &= red > 0
    return luminance, red, saturated


class _Transitions:
    """Per-cell transition detector for one signal (hysteresis between extremes).

    Since its last transition a cell remembers the lowest and highest value it reached
    (and whether those states were saturated red, for the red signal); a move of at
    least the threshold away from the opposite extreme, in the direction opposite to the
    last transition, is a new transition and starts the extremes afresh.
    """

    def __init__(self, cells: int, threshold: float, red: bool) -> None:
        self.threshold = threshold
        self.red = red
        self.trend = np.zeros(cells, np.int8)  # +1 after a rise, -1 after a fall, 0 none yet
        self.lo = np.full(cells, np.nan, np.float32)
        self.hi = np.full(cells, np.nan, np.float32)
        self.lo_sat = np.zeros(cells, bool)
        self.hi_sat = np.zeros(cells, bool)

    def _qualifies(self, low, high, low_sat, high_sat) -> np.ndarray:
        if self.red:  # more than 20, to or from a saturated red
            return (high - low > self.threshold) & (low_sat | high_sat)
        return (high - low >= self.threshold) & (low < DARK_LIMIT)

    def peek(self, value: np.ndarray, sat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rising, falling) boolean arrays: the transitions `value` would make."""
        first = np.isnan(self.lo)
        lo = np.where(first, value, self.lo)
        hi = np.where(first, value, self.hi)
        lo_sat = np.where(first, sat, self.lo_sat)
        hi_sat = np.where(first, sat, self.hi_sat)
        rising = self._qualifies(lo, value, lo_sat, sat) & (self.trend != 1)
        falling = self._qualifies(value, hi, sat, hi_sat) & (self.trend != -1)
        both = rising & falling  # only before the first transition: the larger swing wins
        if both.any():
            up = (value - lo) >= (hi - value)
            rising &= ~both | up
            falling &= ~both | ~up
        return rising, falling

    def push(self, value: np.ndarray, sat: np.ndarray) -> np.ndarray:
        """Take `value`; returns where it made a transition."""
        rising, falling = self.peek(value, sat)
        moved = rising | falling
        first = np.isnan(self.lo)
        low = value < self.lo
        high = value > self.hi
        self.lo = np.where(moved | first | low, value, self.lo)
        self.hi = np.where(moved | first | high, value, self.hi)
        self.lo_sat = np.where(moved | first | low, sat, self.lo_sat)
        self.hi_sat = np.where(moved | first | high, sat, self.hi_sat)
        self.trend = np.where(rising, 1, np.where(falling, -1, self.trend)).astype(np.int8)
        return moved


@dataclass(frozen=True)
class FlashReading:
    """What one frame did to the flash count (see the module docstring)."""

    flashes: float  # flashes within the last second over at least AREA of the screen
    hazard: bool  # flashes > MAX_FLASHES
    transitions: int  # cells that made a transition (luminance or red) in this frame


class FlashCounter:
    """Counts flashes over a sliding 1 s window of a stream of frames at `fps`.

    `strictness` scales the transition thresholds and the area, and divides the window's
    length (1: the standard's rule; `GUARD_MARGIN`: the guard's stricter one).
    """

    def __init__(self, fps: float, strictness: float = 1.0) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be more than 0, got {fps!r}")
        self.window = max(1, int(round(fps / strictness)))
        cells = GRID[0] * GRID[1]
        self._luma = _Transitions(cells, TRANSITION * strictness, red=False)
        self._red = _Transitions(cells, RED_TRANSITION * strictness, red=True)
        # Transitions per frame of the last second, luminance and red: (window, 2, cells).
        self._history = np.zeros((self.window, 2, cells), np.int16)
        self._counts = np.zeros((2, cells), np.int32)
        self._pos = 0
        self._quantile = max(1, int(np.ceil(AREA * strictness * cells)))  # a quarter
        self.frames = 0

    def _after(self, new: np.ndarray) -> np.ndarray:
        """Per-cell transitions in the window if a frame with `new` (2, cells) were taken."""
        return self._counts - self._history[self._pos] + new

    def _reading(self, counts: np.ndarray, new: np.ndarray) -> FlashReading:
        worst = counts.max(axis=0)
        # The count reached by at least a quarter of the cells: the quantile from the top.
        area_count = float(np.partition(worst, -self._quantile)[-self._quantile])
        flashes = area_count / 2.0
        return FlashReading(
            flashes=flashes, hazard=area_count > _MAX_TRANSITIONS, transitions=int(new.any(axis=0).sum())
        )

    def _new(self, frame: np.ndarray, take: bool, signals=None) -> np.ndarray:
        luminance, red, saturated = signals if signals is not None else cell_signals(frame)
        no_sat = np.zeros_like(saturated)
        if take:
            luma = self._luma.push(luminance, no_sat)
            reds = self._red.push(red, saturated)
        else:
            luma = np.logical_or(*self._luma.peek(luminance, no_sat))
            reds = np.logical_or(*self._red.peek(red, saturated))
        return np.stack([luma, reds]).astype(np.int16)

    def at_risk(self, frame: np.ndarray, signals=None) -> np.ndarray:
        """Cells (flat, row-major over ``GRID``) where `frame` would make a transition
        beyond the allowed count within the last second, taking nothing (`signals` as in
        `peek`)."""
        new = self._new(frame, take=False, signals=signals)
        # any(axis=0) of a 2-D array is an array (numpy's stubs allow a scalar)
        return cast(np.ndarray, ((self._after(new) > _MAX_TRANSITIONS) & (new > 0)).any(axis=0))

    def peek(self, frame: np.ndarray, signals=None) -> FlashReading:
        """The reading `frame` would give, without taking it. `signals` may give the
        frame's `cell_signals` when they are known already."""
        new = self._new(frame, take=False, signals=signals)
        return self._reading(self._after(new), new)

    def push(self, frame: np.ndarray, signals=None) -> FlashReading:
        """Take the next frame of the stream; returns its reading (`signals` as in `peek`)."""
        new = self._new(frame, take=True, signals=signals)
        self._counts = self._after(new)
        self._history[self._pos] = new
        self._pos = (self._pos + 1) % self.window
        self.frames += 1
        return self._reading(self._counts, new)


class FlashGuard:
    """Keeps a stream of frames under the flash limit, changing only frames that would cross it.

    Each frame is checked before it is shown, under the standard's rule and under one
    stricter by `GUARD_MARGIN` (transitions of 0.08 and red changes of 16, over a fifth
    of the screen, at most 6 in 1.25 s), so that what reaches a screen or a file stays
    within the real rule after scaling and encoding too. A frame that would make the
    flash count exceed `MAX_FLASHES` within 1 s under either is limited: in the cells
    where it would make one transition too many, it is blended towards the frame shown
    before, just far enough that the change stays below a transition (a soft-edged map
    of blend weights, a linear estimate with a margin). If the limited frame still
    crosses the limit, those cells keep the previous picture outright, and failing that
    the whole previous frame is shown again, which makes no transition at all: so the
    limit is never crossed. Frames that do not cross it pass through untouched (the same
    array, bit for bit).

    With `measure_unguarded` the guard also counts the flashes the frames would have had
    without it, for reports.
    """

    def __init__(self, fps: float, enabled: bool = True, measure_unguarded: bool = False) -> None:
        self.enabled = enabled
        # What is shown, by the standard's rule and the stricter one.
        self.rules = (FlashCounter(fps), FlashCounter(fps, strictness=GUARD_MARGIN))
        self.unguarded = FlashCounter(fps) if measure_unguarded else None
        self.changed = 0  # frames the guard altered
        self.frames = 0
        #: Without the guard (with `measure_unguarded`): the most flashes, hazardous frames.
        self.unguarded_flashes_max = 0.0
        self.unguarded_hazard_frames = 0
        self._previous: np.ndarray | None = None
        self._previous_signals: tuple | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """The frame to show instead of `frame`: (H, W, 3) uint8 RGB."""
        self.frames += 1
        signals = cell_signals(frame)
        if self.unguarded is not None:
            reading = self.unguarded.push(frame, signals)
            self.unguarded_flashes_max = max(self.unguarded_flashes_max, reading.flashes)
            self.unguarded_hazard_frames += reading.hazard
        out = frame
        if self.enabled and self._previous is not None and self._crosses(frame, signals):
            out, signals = self._limit(frame, signals)
            self.changed += 1
        for rule in self.rules:
            rule.push(out, signals)
        self._previous, self._previous_signals = out, signals
        return out

    def _crosses(self, frame: np.ndarray, signals) -> bool:
        return any(rule.peek(frame, signals).hazard for rule in self.rules)

    def _previous_like(self, frame: np.ndarray) -> np.ndarray:
        previous = self._previous
        assert previous is not None  # only called once a frame was shown (see __call__)
        if previous.shape != frame.shape:  # the painted size changed (another model)
            previous = cv2.resize(previous, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_AREA)
        return previous

    def _limit(self, frame: np.ndarray, signals) -> tuple[np.ndarray, tuple]:
        """The limited frame and its cell signals."""
        previous = self._previous_like(frame)
        risky = np.logical_or(*(rule.at_risk(frame, signals) for rule in self.rules))
        weights = np.where(risky, self._allowed(signals), 1.0).astype(np.float32)
        for attempt in (weights, np.where(risky, 0.0, 1.0).astype(np.float32)):
            out = _blend(previous, frame, attempt)
            out_signals = cell_signals(out)
            if not self._crosses(out, out_signals):
                return out, out_signals
        return previous.copy(), cell_signals(previous)

    def _allowed(self, new) -> np.ndarray:
        """Per cell, the share of the change from the previous frame to the one with
        signals `new` that stays under a transition (both signals, both rules, a linear
        estimate with a margin)."""
        share = np.ones(GRID[0] * GRID[1], np.float32)
        old = self._previous_signals
        assert old is not None  # set with _previous, which __call__ checks first
        for rule in self.rules:
            for tracker, index in ((rule._luma, 0), (rule._red, 1)):
                delta = new[index] - old[index]
                lo = np.where(np.isnan(tracker.lo), old[index], tracker.lo)
                hi = np.where(np.isnan(tracker.hi), old[index], tracker.hi)
                step = tracker.threshold
                room = np.where(delta > 0, lo + step - old[index], old[index] - (hi - step))
                moving = np.abs(delta) > 1e-6
                ratio = np.where(moving, np.clip(room, 0, None) / np.where(moving, np.abs(delta), 1), 1)
                share = np.minimum(share, np.clip(0.7 * ratio, 0.0, 1.0))
        return share


def _blend(previous: np.ndarray, frame: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """previous + w * (frame - previous), with the per-cell weights `w` spread smoothly
    over the frame (each risky cell fully inside its own weight)."""
    grid = weights.reshape(GRID[1], GRID[0])
    grid = cv2.erode(grid, np.ones((3, 3), np.uint8))  # edges fall outside the risky cells
    grid = np.minimum(grid, cv2.GaussianBlur(grid, (5, 5), 0))  # softer, never higher
    h, w = frame.shape[:2]
    field = np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    # OpenCV's per-pixel weighted blend of two uint8 pictures (rounded), in one pass.
    return cv2.blendLinear(np.ascontiguousarray(frame), np.ascontiguousarray(previous), field, 1.0 - field)
