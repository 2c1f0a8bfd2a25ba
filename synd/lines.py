"""Contour lines: the painted picture drawn as glowing lines on the dark.

`Look.lines` (0-1) redraws the generator's picture as a neon topographic map: each colour
channel, slightly blurred, is cut at `LEVELS` evenly spaced values and a thin glowing line
is drawn where it crosses one, in that channel's colour (red, green and blue lines;
yellow, cyan or magenta where two run together). The lines sit where the picture's
shapes have their edges and slopes, so they follow the same sound-driven flow as the
fields they trace: as the fields slide and merge, the lines crowd, part and close into
rings. Between them the picture shows faintly (`FILL`). A channel that is nearly constant
over the frame draws no lines (`QUIET_SPREAD`): its faint grain would make a lattice.

The line's width is measured in pixels, not in channel value: the distance to the
nearest level is divided by the channel's slope, so a steep edge and a gentle slope draw
lines equally thin. Widths and the blur scale with the height of the painted frame, so
the look is the same whatever the painted size (`--detail`; never thinner than
`MIN_WIDTH_PX`); render and live draw at the painted size and scale the result up.
Only the shown frame is drawn as lines; the generator's feedback keeps its own picture.
About 1.7 ms a frame at 384x216 on one core.
"""

from __future__ import annotations

import torch

from synd.blur import REFERENCE_HEIGHT, ShrunkBlur, slope_squared

#: Evenly spaced values of each channel (0-1) where a line is drawn.
LEVELS = 6
#: Line half-width and the blur before the levels are found, in pixels of a 360-line frame.
WIDTH_PX = 1.2
BLUR_PX = 3.0
#: How much of the picture shows between the lines at full strength.
FILL = 0.45
#: A channel that spreads over less than this many levels across the frame is texture, not
#: shape (a near-constant channel with a faint grain would draw a lattice of lines): its
#: lines fade out between these two spreads (standard deviations, in levels).
QUIET_SPREAD = (0.15, 0.4)
#: A wider, fainter glow around each line (its brightness and width, times the line's).
HALO = 0.4
HALO_WIDTH = 4.0
#: The thinnest line drawn (pixels): thinner ones fall between pixels and shimmer as they move.
MIN_WIDTH_PX = 1.0


class ContourLines:
    """Draws frames of one size as contour lines (the blur kernel built once)."""

    def __init__(self, height: int, device: torch.device | str = "cpu"):
        scale = height / REFERENCE_HEIGHT
        self.width = max(MIN_WIDTH_PX, WIDTH_PX * scale)
        self._blur = ShrunkBlur(BLUR_PX * scale, device)

    def draw(self, frame: torch.Tensor, strength: float) -> torch.Tensor:
        """`frame` (1, 3, H, W) in [0, 1] blended toward its contour lines by `strength`
        (0: unchanged, 1: lines on the faint picture)."""
        if strength <= 0.0:
            return frame
        s = self._blur(frame.float().contiguous()).mul_(LEVELS)
        # q: the squared distance (in line widths) to the nearest crossing of a level, the
        # distance being measured in pixels: how far the channel is from the level (at the
        # halves: a channel at exactly 0 or 1, a flat black or white area, draws no line)
        # over its slope. `s` is a blur of values in [0, 1], never negative, so frac() is
        # the remainder (and 10x faster). In place throughout: this runs on every frame.
        off = torch.frac(s).sub_(0.5)
        q = off.mul_(off).div_(slope_squared(s).add_(1e-8)).mul_(1.0 / self.width**2)
        # Exponents are capped: far from a line exp() would underflow through denormal
        # numbers, which a CPU handles 10-20x slower (exp(-30) is already invisible).
        glow = torch.clamp(q, max=30.0).neg_().exp_()
        if HALO > 0:
            glow.add_(q.mul_(-1.0 / HALO_WIDTH**2).clamp_(min=-30.0).exp_(), alpha=HALO)
        lo, hi = QUIET_SPREAD
        spread = s[..., ::4, ::4].std(dim=(-2, -1), keepdim=True)  # blurred already: every 4th pixel will do
        shaped = ((spread - lo) / (hi - lo)).clamp(0.0, 1.0)
        glow.mul_(shaped * shaped * (3.0 - 2.0 * shaped))  # smoothstep: no line pops in
        lines = glow.add_(frame, alpha=FILL).clamp_(0.0, 1.0)
        if strength >= 1.0:
            return lines
        return frame + strength * (lines - frame)
