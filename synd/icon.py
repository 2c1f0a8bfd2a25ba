"""The synd application and tray icon, drawn in code.

synd "sees the sound": the icon is a rounded square with a vivid diagonal gradient and
white equalizer bars. Every size is drawn on its own pixel grid rather than scaled from
one big picture, so the 16 px tray icon stays crisp next to the clock. Nothing is read
from disk.

    python -m synd.icon OUT.png [--size N] [--state S]

writes one icon as a PNG (for the docs).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from PyQt6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PyQt6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QIcon,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPixmap,
)

STATES = ("live", "frozen", "black", "offline")
"""The icon states: running normally, picture held, blackout, not connected to the daemon."""

ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
"""The pixmap sizes `app_icon` carries (tray sizes of the common desktops, then app sizes)."""

MIN_SIZE = 16


@dataclass(frozen=True)
class _Look:
    outline: str
    fill: tuple[str, ...]  # three gradient stops, top-left to bottom-right
    bars: str
    glyph: str  # "eq" (equalizer bars) or "pause" (two equal bars)
    opacity: float = 1.0


def _grey(name: str) -> str:
    """The grey with the same relative luminance as colour `name`."""
    c = QColor(name)

    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    y = 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())
    v = 12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055
    g = round(255 * v)
    return QColor(g, g, g).name()


# The gradient ends are dark enough that white bars keep at least 4:1 contrast on them
# (WCAG asks 3:1 for graphics); the outline is a dark shade so the icon holds its edge on
# light panels, and on dark panels the bright fill does that job.
_LIVE = _Look(outline="#2a0b47", fill=("#ec2a8a", "#a53bdc", "#5b3ff0"), bars="#ffffff", glyph="eq")
_LOOKS = {
    "live": _LIVE,
    # Icy blue with a pause sign: the picture is held.
    "frozen": _Look(outline="#0a2250", fill=("#2a8be0", "#2067cc", "#1f44b0"), bars="#eef8ff", glyph="pause"),
    # Dark square, dim bars: nothing goes out. The outline is mid grey so the square still
    # shows on a black panel.
    "black": _Look(outline="#6c6c76", fill=("#2a2a30", "#1f1f24", "#151518"), bars="#55555e", glyph="eq"),
    # The live icon, greyed out and see-through: synd is not there to talk to. The
    # outline is lighter than a plain grey copy would make it, so the faded square still
    # has an edge on a black panel.
    "offline": _Look(
        outline="#4a4a4a", fill=tuple(_grey(c) for c in _LIVE.fill), bars="#f4f4f4", glyph="eq", opacity=0.7
    ),
}

_EQ_HEIGHTS = {3: (0.6, 1.0, 0.8), 4: (0.55, 1.0, 0.7, 0.85)}


def _bar_row(q: int, n: int, group: float, gap: float) -> tuple[int, int]:
    """Whole-pixel bar width and gap for `n` bars about `group` px wide in a `q` px square.

    Gaps are aimed at `gap` times the bar width. The leftover width must be even so the
    bars sit exactly centred.
    """
    best = None
    ideal = group / (n + gap * (n - 1))
    for bw in range(max(2, int(ideal) - 1), int(ideal) + 3):
        for g in range(1, 2 * bw):
            total = n * bw + (n - 1) * g
            if (q - total) % 2 or total > q - 4:
                continue
            cost = abs(total - group) + 0.5 * abs(g - gap * bw)
            if best is None or cost < best[0]:
                best = (cost, bw, g)
    assert best is not None
    return best[1], best[2]


def _geometry(size: int, glyph: str) -> dict:
    """Integer geometry of the icon at `size` px; every edge falls on a pixel boundary."""
    m = round(size / 32)  # margin: none at 16 px, where every pixel counts
    q = size - 2 * m  # side of the square
    w = max(1, round(q / 40))  # outline width
    radius = q * 0.225
    height = round(q * 0.6)
    top = m + (q - height) // 2
    heights: tuple[float, ...]
    if glyph == "pause":
        n, heights = 2, (1.0, 1.0)
        bw, g = _bar_row(q, 2, q * 0.45, 0.8)
    else:
        n = 3 if q < 28 else 4
        heights = _EQ_HEIGHTS[n]
        bw, g = _bar_row(q, n, q * (0.5 if n == 3 else 0.56), 0.5)
    left = m + (q - (n * bw + (n - 1) * g)) // 2
    bars = []
    for k, f in enumerate(heights):
        h = max(2, round(height * f))
        bars.append((left + k * (bw + g), top + height - h, bw, h))
    return {"margin": m, "side": q, "outline": w, "radius": radius, "bars": bars}


def icon_image(size: int, state: str = "live") -> QImage:
    """The icon as a `size` x `size` ARGB32 premultiplied image.

    `state` is one of `STATES`. Works without a QGuiApplication. Raises ValueError for an
    unknown state or a size under 16 px.
    """
    if state not in _LOOKS:
        raise ValueError(f"unknown icon state {state!r}; choose one of {', '.join(STATES)}")
    size = int(size)
    if size < MIN_SIZE:
        raise ValueError(f"icon size must be at least {MIN_SIZE} px, got {size}")
    look = _LOOKS[state]
    geo = _geometry(size, look.glyph)
    m, q, w, r = geo["margin"], geo["side"], geo["outline"], geo["radius"]

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    try:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setOpacity(look.opacity)
        # Outline as a filled square under a smaller one: both edges stay on whole pixels,
        # where a stroked pen would straddle them and blur at 16 px.
        p.setBrush(QColor(look.outline))
        p.drawRoundedRect(QRectF(m, m, q, q), r, r)
        inner = QRectF(m + w, m + w, q - 2 * w, q - 2 * w)
        grad = QLinearGradient(inner.topLeft(), inner.bottomRight())
        for at, colour in zip((0.0, 0.5, 1.0), look.fill):
            grad.setColorAt(at, QColor(colour))
        p.setBrush(QBrush(grad))
        p.drawRoundedRect(inner, r - w, r - w)
        if size >= 64:
            # A faint sheen on the upper half; too soft to matter, so only where it shows.
            sheen = QLinearGradient(QPointF(0, m), QPointF(0, m + q * 0.55))
            sheen.setColorAt(0.0, QColor(255, 255, 255, 46))
            sheen.setColorAt(1.0, QColor(255, 255, 255, 0))
            p.setBrush(QBrush(sheen))
            p.drawRoundedRect(inner, r - w, r - w)

        p.setBrush(QColor(look.bars))
        for x, y, bw, h in geo["bars"]:
            if size >= 48:
                # Round caps read as soft light at big sizes; small sizes keep square,
                # fully covered pixels.
                path = QPainterPath()
                path.addRoundedRect(QRectF(x, y, bw, h), bw / 2, bw / 2)
                p.drawPath(path)
            else:
                p.fillRect(x, y, bw, h, QColor(look.bars))
    finally:
        p.end()
    return image


_ICONS: dict[str, QIcon] = {}  # tray icons are set on every state change; draw each once


def app_icon(state: str = "live") -> QIcon:
    """The icon for `state` as a QIcon holding one pixmap per size in `ICON_SIZES`.

    Each size is drawn separately, so small ones are pixel-sharp. Needs a running
    QGuiApplication (Qt can make no QPixmap without one): raises RuntimeError otherwise,
    ValueError for an unknown state. Icons are cached per state.
    """
    if state not in _LOOKS:
        raise ValueError(f"unknown icon state {state!r}; choose one of {', '.join(STATES)}")
    icon = _ICONS.get(state)
    if icon is None:
        if QGuiApplication.instance() is None:
            raise RuntimeError("app_icon needs a QGuiApplication; create one first")
        icon = QIcon()
        for size in ICON_SIZES:
            icon.addPixmap(QPixmap.fromImage(icon_image(size, state)))
        _ICONS[state] = icon
    return icon


def png_bytes(image: QImage) -> bytes:
    """`image` encoded as PNG."""
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    try:
        if not image.save(buf, "PNG"):
            raise RuntimeError("Qt could not encode the icon as PNG")
    finally:
        buf.close()
    return data.data()


def main(argv: list[str] | None = None) -> int:
    """`python -m synd.icon OUT.png [--size N] [--state S]`: write the icon as a PNG."""
    from synd.files import atomic_write_bytes

    parser = argparse.ArgumentParser(
        prog="python -m synd.icon", description="Write the synd icon as a PNG file."
    )
    parser.add_argument("out", help="PNG file to write")
    parser.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    parser.add_argument("--state", choices=STATES, default="live", help="which icon (default live)")
    args = parser.parse_args(argv)
    if args.size < MIN_SIZE:
        parser.error(f"--size must be at least {MIN_SIZE}")
    path = atomic_write_bytes(args.out, png_bytes(icon_image(args.size, args.state)))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
