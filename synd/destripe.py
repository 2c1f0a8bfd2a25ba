"""Destriping: the generator's fine full-height stripes taken out of the shown frame.

`lava`'s model paints fine vertical stripes over the whole frame, clearest in the seams
between its fields: it writes the bass there, on its finest coordinate wave (sin and cos
of 4 pi x, a period of a quarter of the frame's height) and that wave's harmonics. They
are the same all the way down each column (the column profiles of a frame's top and
bottom quarters correlate at 0.94-0.98), and nothing else in the picture is: the fields'
edges curve, so down a column they average out.

`Look.destripe` (0-1) takes out of each colour channel the part of its column profile
(its mean over the rows) with periods under `REMOVE` of the frame's height, fading in
from `KEEP`: the stripes go, the fields and the coarser waves (half the height and up)
stay. The profile is mirrored before its Fourier transform, so its two ends are not
taken for a jump. Only the shown frame is destriped; the generator's feedback and its
decoder keep the painted picture, stripes and all (the decoder reads the bass there).
About 0.15 ms a frame at 384x216.
"""

from __future__ import annotations

import torch

#: Column-profile periods, in frame heights: kept whole from `KEEP` up, removed whole
#: below `REMOVE` (the finest wave is 0.25, the next coarser 0.5).
KEEP = 0.4
REMOVE = 0.3


class Destripe:
    """Destripes frames of one size (the filter built once)."""

    def __init__(self, height: int, width: int, device: torch.device | str = "cpu"):
        self.width = width
        freq = torch.fft.rfftfreq(2 * width, device=device)  # cycles per pixel of the mirrored profile
        period = 1.0 / (freq.clamp(min=1e-9) * height)
        t = ((KEEP - period) / (KEEP - REMOVE)).clamp(0.0, 1.0)
        #: How much of each frequency of the profile is taken out (a smooth step).
        self.weights = t * t * (3.0 - 2.0 * t)

    def stripes(self, frame: torch.Tensor) -> torch.Tensor:
        """The stripes of (N, C, H, W) frames: (N, C, 1, W), to be taken from every row."""
        profile = frame.float().mean(dim=-2, keepdim=True)
        mirrored = torch.cat([profile, profile.flip(-1)], dim=-1)
        spectrum = torch.fft.rfft(mirrored, dim=-1) * self.weights
        return torch.fft.irfft(spectrum, n=2 * self.width, dim=-1)[..., : self.width]

    def draw(self, frame: torch.Tensor, strength: float) -> torch.Tensor:
        """`frame` (1, 3, H, W) in [0, 1] with `strength` of its stripes taken out."""
        if strength <= 0.0:
            return frame
        return (frame - strength * self.stripes(frame)).clamp_(0.0, 1.0)
