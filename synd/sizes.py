"""The size pictures are painted at, before they are scaled to each output's size.

Kept free of heavy imports, so that `synd --help` can show the default.
"""

from __future__ import annotations

# Painting at a 216-pixel short side (384x216 for 16:9) keeps 720p renders at 1.6x and
# 1080p at 1.2x real time on two CPU cores (`synd bench`); 256, the models' native
# scale, is slightly finer and about 25% slower.
GENERATION_SHORT_SIDE = 216


def generation_size(width: int, height: int, short: int = GENERATION_SHORT_SIDE) -> tuple[int, int]:
    """Generator frame size (w, h) with the output's aspect ratio and `short` as short side.

    The generator runs at about its native scale and the frames are upscaled: running a
    float network at 720p/1080p would cost 10-20x more for little visible gain.
    Both sides are multiples of 8 (the generator halves the frame three times).
    """
    short = max(8, min(short, width, height) // 8 * 8)
    if width >= height:
        return max(8, round(short * width / height / 8) * 8), short
    return short, max(8, round(short * height / width / 8) * 8)
