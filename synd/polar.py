"""Polar looks: the painted picture folded around the centre, or wrapped into a tunnel.

Both re-map the shown frame around the centre of the screen, so they repeat around a
point, never along a line: moving the picture sideways never lays it onto itself, so
neither draws a lattice. Both move in the music's own time (`synd.flow`'s sound time):
faster in loud passages, pushed on the hits, still in silence, while the fields inside
them flow and merge as they do in `lava`. Only the shown frame is re-mapped; the
generator's feedback keeps its own picture. One bilinear resampling a frame (at 384x216 on
one core, 1.2 ms for the kaleidoscope, 0.7 ms for the tunnel).

* **Kaleidoscope** (`Look.mirror`: 0 = off, else an even number of wedges, 4-16): one
  wedge of the picture, cut from the middle of its left edge out to its right edge, is
  repeated around the centre, every other copy mirrored, so neighbouring wedges meet
  without a seam. The wedges turn `TURN_PER_SOUND_S` radians a unit of sound time.
* **Tunnel** (`Look.tunnel`, 0-1: how much of the frame is the tunnel): the picture's
  width laid along the distance from the centre on a log scale (each ring as wide as its
  distance, so the shapes keep their proportions from the rim to the vanishing point)
  and its height around `TUNNEL_SECTORS` sectors of the circle, every other one mirrored
  so they meet without a seam. The rings stream outwards `TUNNEL_PER_SOUND_S` of the
  picture's half-width a unit of sound time, and the centre fades to black: a tunnel
  the music flies through.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Turn of the kaleidoscope's wedges (radians) per unit of sound time: a full turn in
#: about 100 s at the usual pace, slow enough that a 640x360 frame's corners move under
#: a pixel a frame (the hits push it on, as they push the fields).
TURN_PER_SOUND_S = 0.06
#: The fewest and most wedges; `Look.mirror` is rounded to an even number between them.
MIN_WEDGES = 4
MAX_WEDGES = 16
#: How far the tunnel's rings stream outwards per unit of sound time, in half-widths of
#: the picture (its whole width is 2).
TUNNEL_PER_SOUND_S = 0.25
#: Distance from the centre (corner = 1) within which the tunnel fades to black.
TUNNEL_DARK = 0.15
#: Sectors around the tunnel, each the picture's height (an even number: mirrored pairs).
TUNNEL_SECTORS = 4


def wedges(mirror: float) -> int:
    """The number of wedges `Look.mirror` asks for: 0 (off) below `MIN_WEDGES` / 2, else
    the nearest even number in `MIN_WEDGES`..`MAX_WEDGES` (mirrored pairs must close the
    circle)."""
    if mirror < MIN_WEDGES / 2:
        return 0
    n = 2 * int(round(mirror / 2))
    return max(MIN_WEDGES, min(MAX_WEDGES, n))


class Polar:
    """Re-maps frames of one size around their centre (each pixel's distance and angle
    to it computed once)."""

    def __init__(self, height: int, width: int, device: torch.device | str = "cpu"):
        self.shape = (height, width)
        # Pixel centres in units of half the width, from the frame's centre.
        x = (torch.arange(width, dtype=torch.float32, device=device) + 0.5 - width / 2) / (width / 2)
        y = (torch.arange(height, dtype=torch.float32, device=device) + 0.5 - height / 2) / (width / 2)
        yy, xx = torch.meshgrid(y, x, indexing="ij")
        self.angle = torch.atan2(yy, xx)
        #: Distance from the centre, the corner at 1.
        self.radius = torch.sqrt(xx * xx + yy * yy) / math.hypot(1.0, height / width)
        self.aspect = width / height
        self._log_radius = torch.log(self.radius.clamp(min=1e-3))
        # The tunnel's depth: black at the centre, full light from TUNNEL_DARK outwards.
        fade = (self.radius / TUNNEL_DARK).clamp(0.0, 1.0)
        self._depth = (fade * fade * (3.0 - 2.0 * fade)).unsqueeze(0).unsqueeze(0)
        self._tunnel: torch.Tensor | None = None  # built the first time a tunnel is drawn

    @staticmethod
    def _sample(frame: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """`frame` read at `grid` (1, H, W, 2): grid_sample coordinates, -1..1 across; beyond,
        mirrored back."""
        return F.grid_sample(
            frame.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def fold(self, frame: torch.Tensor, mirror: float, turn: float) -> torch.Tensor:
        """`frame` (1, 3, H, W) folded into `wedges(mirror)` wedges turned by `turn`
        radians (unchanged when that is 0)."""
        n = wedges(mirror)
        if n == 0:
            return frame
        wedge = 2.0 * math.pi / n
        # Angle within a mirrored pair of wedges, folded back: the source's angle runs
        # -wedge/2 .. wedge/2 across one wedge and back across the next.
        t = torch.remainder(self.angle + turn, 2.0 * wedge)
        t = torch.minimum(t, 2.0 * wedge - t) - 0.5 * wedge
        # The source: from the middle of the left edge (x = -1) out along angle t, the
        # corner's distance reaching the right edge.
        r = 2.0 * self.radius
        grid = torch.stack((r * torch.cos(t) - 1.0, r * torch.sin(t) * self.aspect), dim=-1).unsqueeze(0)
        return self._sample(frame, grid).contiguous(memory_format=torch.channels_last)

    def _tunnel_grid(self) -> torch.Tensor:
        """Where the tunnel reads the picture before it moves: (1, H, W, 2) grid_sample
        coordinates, the rim at the picture's right edge (x = 1), the centre leftwards."""
        # Around the circle: the picture's height down one sector and back up the next.
        # Its width spans as many e-folds of distance as keep the shapes' proportions
        # (a pixel as wide along the radius as around the circle, sector * aspect).
        sector = 2.0 * math.pi / TUNNEL_SECTORS
        gx = 1.0 + self._log_radius * (2.0 / (sector * self.aspect))
        t = torch.remainder(self.angle, 2.0 * sector)
        gy = torch.minimum(t, 2.0 * sector - t) * (2.0 / sector) - 1.0
        return torch.stack((gx, gy), dim=-1).unsqueeze(0)

    def tunnel(self, frame: torch.Tensor, strength: float, travel: float) -> torch.Tensor:
        """`frame` (1, 3, H, W) blended toward its tunnel by `strength`, the rings moved
        outwards by `travel` half-widths of the picture."""
        if strength <= 0.0:
            return frame
        if self._tunnel is None:
            self._tunnel = self._tunnel_grid()
        grid = self._tunnel.clone()
        grid[..., 0] -= travel  # moving the source leftwards streams the rings outwards
        out = self._sample(frame, grid).mul_(self._depth).contiguous(memory_format=torch.channels_last)
        if strength >= 1.0:
            return out
        return frame + strength * (out - frame)
