"""Ink: the painted picture printed in two inks, its colourful half vivid on black.

`Look.ink` (0-1) redraws the generator's picture as a high-contrast print: where it is
colourful (its channels' spread, max - min, blurred) above the frame's median, its own
colour is printed at full brightness and more saturated; elsewhere, near-black. So the
fields' strong colours (`lava`'s pink and green) become crisp islands of vivid colour,
and the greyish blends between them become black channels that part them. The cut
follows the median, so half the frame is always lit: a loud passage or a quiet one never
turns the whole screen bright or dark at once (no flash), and the islands slide, split
and merge as the fields flow. The edge is `EDGE_PX` pixels wide whatever the slope (the
distance to the cut is divided by the slope, as `synd.lines` does), so it stays crisp
on gentle slopes and never aliases on steep ones, down to a slope of `MIN_RAMP` across
it, below which a nearly flat picture is cut softly; the blur first smooths the painted
texture away, so edges are smooth curves.

Only the shown frame is inked; the generator's feedback keeps its own picture. About
1.2 ms a frame at 384x216 on one core.
"""

from __future__ import annotations

import torch

from synd.blur import REFERENCE_HEIGHT, ShrunkBlur, slope

#: The ramp across the edge and the blur before the cut, in pixels of a 360-line frame.
EDGE_PX = 1.5
BLUR_PX = 10.0
#: The narrowest ramp across the edge in colourfulness (0-1): where the picture is nearly
#: flat around the cut, a whole area would otherwise flip between the inks at once.
MIN_RAMP = 0.01
#: How much further from grey the bright ink is than the picture (1 = as saturated).
SATURATION = 1.6
#: The black ink's value (a touch above 0, as printed black is).
DARK = 0.03


class Ink:
    """Inks frames of one size (the blur kernel built once)."""

    def __init__(self, height: int, device: torch.device | str = "cpu"):
        scale = height / REFERENCE_HEIGHT
        self.edge = max(1.0, EDGE_PX * scale)
        # A wide blur: a quarter of the size holds all of it.
        self._blur = ShrunkBlur(BLUR_PX * scale, device, shrink=4)

    def draw(self, frame: torch.Tensor, strength: float) -> torch.Tensor:
        """`frame` (1, 3, H, W) in [0, 1] blended toward its two-ink print by `strength`."""
        if strength <= 0.0:
            return frame
        frame = frame.float().contiguous()  # channels-last broadcasts slowly against (1, 1, H, W)
        top = frame.amax(1, keepdim=True)
        c = self._blur(top - frame.amin(1, keepdim=True))
        cut = c[..., ::4, ::4].median()  # a 16th of the pixels is plenty for a median
        ramp = torch.clamp(slope(c) * self.edge, min=MIN_RAMP)
        lit = (c - cut).div_(ramp).add_(0.5).clamp_(0.0, 1.0)
        # ink = DARK + lit * (vivid - DARK), vivid = clamp(1 - S + S * frame / top, 0, 1),
        # with lit folded into the clamp (lit * vivid = clamp(lit * (...), 0, lit)): the
        # fewest passes over the frame, as this runs on every live frame.
        ink = torch.addcmul(lit * (1.0 - SATURATION), frame, lit * SATURATION / top.clamp_(min=0.05))
        ink = torch.clamp(ink, min=torch.zeros_like(lit), max=lit).add_(DARK * (1.0 - lit))
        if strength >= 1.0:
            return ink
        return frame + strength * (ink - frame)
