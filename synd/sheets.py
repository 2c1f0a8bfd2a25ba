"""Contact sheets: many frames in one PNG, for people who would rather look than read."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from synd.files import atomic_write_bytes


def contact_sheet(
    frames: list[np.ndarray],
    columns: int = 8,
    gap: int = 4,
    title: str | None = None,
    labels: list[str] | None = None,
) -> Image.Image:
    """Lay out (H, W, 3) uint8 frames in a grid, optionally with a title and captions."""
    if not frames:
        raise ValueError("contact_sheet needs at least one frame")
    h, w = frames[0].shape[:2]
    rows = -(-len(frames) // columns)
    head = 18 if title else 0
    cap = 14 if labels else 0
    sheet = Image.new("RGB", (columns * (w + gap) + gap, head + rows * (h + cap + gap) + gap), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((gap, 3), title, fill=(230, 230, 230))
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        x, y = gap + c * (w + gap), head + gap + r * (h + cap + gap)
        sheet.paste(Image.fromarray(frame), (x, y))
        if labels:
            draw.text((x, y + h + 1), labels[i], fill=(200, 200, 200))
    return sheet


def save_contact_sheet(frames: list[np.ndarray], path: str | Path, **kwargs) -> Path:
    """Write a contact sheet PNG atomically; returns the path."""
    buf = io.BytesIO()
    contact_sheet(frames, **kwargs).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def loop_thumbnails(
    loop, raw_features: np.ndarray, every: int, count: int, size: int = 128
) -> tuple[list[np.ndarray], list[int]]:
    """Run raw features through a `FrameLoop`; every `every`-th frame as a thumbnail.

    Returns (thumbnails, frame indices). Frames are made at the loop's own size (the
    model's native scale), then area-downscaled, so the sheet shows what render shows.
    """
    import torch.nn.functional as F

    from synd.frameloop import to_rgb_uint8

    thumbs, indices = [], []
    for i, frame in enumerate(loop.run(raw_features[: count * every])):
        if i % every == 0:
            thumbs.append(to_rgb_uint8(F.interpolate(frame, size=(size, size), mode="area")))
            indices.append(i)
    return thumbs, indices
