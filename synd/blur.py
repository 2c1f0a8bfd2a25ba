"""A Gaussian blur for the looks that redraw the painted picture (`synd.lines`, `synd.ink`).

The blur runs at half the size (a quarter of the work), or smaller for a wide blur, and
is scaled back up: what it blurs is smooth afterwards, so little is lost on the way.
These run on every live frame, so each step is written as a few whole-tensor additions
of shifted slices, which on a CPU are 2-7x faster than `F.avg_pool2d`, a convolution
and `F.interpolate` for these small kernels (a 384x216 frame's three channels: 0.65 ms
on one core instead of 2.3). The result is theirs (box average, separable Gaussian with
the edge replicated, bilinear growth as `F.interpolate(..., align_corners=False)`
gives) for sizes that are multiples of the shrink; other sizes are first padded to one
by repeating the edge.
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
        self.taps = gaussian_kernel(sigma / shrink, device).tolist()
        self.shrink = shrink

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = shrink(x, self.shrink)
        y = _convolve(y, self.taps, dim=-1)
        y = _convolve(y, self.taps, dim=-2)
        return grow(y, self.shrink)[..., :h, :w]


def shrink(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, ceil(H / k), ceil(W / k)): the mean of each k x k block, the
    edge replicated where the size is not a multiple of k."""
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % k, 0, -h % k), mode="replicate") if h % k or w % k else x
    rows = x[..., 0::k, :]
    for r in range(1, k):
        rows = rows + x[..., r::k, :]
    out = rows[..., 0::k]
    for r in range(1, k):
        out = out + rows[..., r::k]
    return out.mul_(1.0 / (k * k))


def _convolve(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """`x` convolved with the symmetric `taps` along `dim` (-1 or -2), edge replicated."""
    r = len(taps) // 2
    n = x.shape[dim]
    padded = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="replicate")
    out = padded.narrow(dim, 0, n) * taps[0]
    for i in range(1, len(taps)):
        out.add_(padded.narrow(dim, i, n), alpha=taps[i])
    return out


def grow(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, k h, k w), bilinear: `F.interpolate(x, scale_factor=k,
    mode="bilinear", align_corners=False)`, as k interleaved blends of neighbours per axis."""
    for dim in (-1, -2):
        n = x.shape[dim]
        padded = F.pad(x, (1, 1, 0, 0) if dim == -1 else (0, 0, 1, 1), mode="replicate")
        here = padded.narrow(dim, 1, n)
        # Written into the interleaved places of one tensor (torch.stack on the last axis
        # is 4x slower): (..., n, k) for columns, (..., n, k, W) for rows.
        out = x.new_empty(*x.shape, k) if dim == -1 else x.new_empty(*x.shape[:-1], k, x.shape[-1])
        for r in range(k):
            # Output pixel k i + r samples the input at i + d.
            d = (2 * r + 1 - k) / (2 * k)
            other = padded.narrow(dim, 0 if d < 0 else 2, n)
            out.select(dim, r).copy_(torch.lerp(here, other, abs(d)))
        x = out.flatten(-2) if dim == -1 else out.flatten(-3, -2)
    return x


def slope(x: torch.Tensor) -> torch.Tensor:
    """The gradient's magnitude of (N, C, H, W) per pixel: central differences, one-sided
    at the border (replicated edge), plus a floor that keeps a flat area from dividing by 0."""
    return slope_squared(x).sqrt_().add_(1e-4)


def slope_squared(x: torch.Tensor) -> torch.Tensor:
    """The square of `slope` without its floor (a pass fewer, no square root)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = p[..., 1:-1, 2:] - p[..., 1:-1, :-2]
    gy = p[..., 2:, 1:-1] - p[..., :-2, 1:-1]
    return gx.mul_(gx).addcmul_(gy, gy).mul_(0.25)  # central differences halve the steps
