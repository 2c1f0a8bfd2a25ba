"""A Gaussian blur for the looks that redraw the painted picture (`synd.lines`, `synd.ink`).

The blur runs at half the size (a quarter of the work), or smaller for a wide blur, and
is scaled back up: what it blurs is smooth afterwards, so little is lost on the way. The
channels are folded into the batch: one single-channel convolution is about 5x faster on
a CPU than a grouped one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: The frame height the looks' pixel sizes (line widths, blurs) are given for; at other
#: heights they scale with it, so a look is the same whatever size it is painted at.
REFERENCE_HEIGHT = 360


def gaussian_kernel(sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A normalised 1-D Gaussian of standard deviation `sigma` (pixels), 3 sigma each side."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


class ShrunkBlur:
    """Separable Gaussian blur of (N, C, H, W) frames, `sigma` pixels at full size,
    computed at 1/`shrink` of the size."""

    def __init__(self, sigma: float, device: torch.device | str = "cpu", shrink: int = 2):
        k = gaussian_kernel(sigma / shrink, device)
        self._kx = k.view(1, 1, 1, -1)
        self._ky = k.view(1, 1, -1, 1)
        self.shrink = shrink

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        r = self._kx.shape[-1] // 2
        y = F.avg_pool2d(x, self.shrink, ceil_mode=True)
        y = y.reshape(n * c, 1, *y.shape[-2:])
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), self._kx)
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), self._ky)
        y = y.reshape(n, c, *y.shape[-2:])
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


def slope(x: torch.Tensor) -> torch.Tensor:
    """The gradient's magnitude of (N, C, H, W) per pixel: central differences, one-sided
    at the border (replicated edge), plus a floor that keeps a flat area from dividing by 0."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    gy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return torch.sqrt(gx * gx + gy * gy) + 1e-4
