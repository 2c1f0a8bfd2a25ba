"""The drawn icon: sizes, legibility, edges on light and dark panels, distinct states, sharpness.

The tests measure pixels rather than compare against stored pictures, so a redesign that
keeps the icon legible passes and one that loses it fails.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QImage

from synd import icon
from synd.icon import STATES, app_icon, icon_image, main

TRAY_SIZES = (16, 22, 24, 32)
REPO = Path(__file__).resolve().parents[1]


def pixels(image: QImage, premultiplied: bool = False) -> np.ndarray:
    """`image` as an (h, w, 4) RGBA float array in [0, 1]."""
    fmt = QImage.Format.Format_RGBA8888_Premultiplied if premultiplied else QImage.Format.Format_RGBA8888
    image = image.convertToFormat(fmt)
    h, w = image.height(), image.width()
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    raw = np.frombuffer(ptr, np.uint8).reshape(h, image.bytesPerLine())[:, : w * 4]
    return raw.reshape(h, w, 4).astype(np.float64) / 255


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB values in [0, 1]."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def otsu(values: np.ndarray) -> float:
    """The threshold that best splits `values` in two clusters (Otsu's method)."""
    best, split = -1.0, float(values.min())
    for t in np.unique(values)[:-1]:
        lo, hi = values[values <= t], values[values > t]
        score = lo.size * hi.size * (lo.mean() - hi.mean()) ** 2
        if score > best:
            best, split = score, float(t)
    return split


def glyph_mask(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(opaque pixels, glyph pixels): the glyph is the brighter luminance cluster."""
    opaque = a[..., 3] == 1.0
    lum = luminance(a[..., :3])
    return opaque, opaque & (lum > otsu(lum[opaque]))


def contrast(l1: float, l2: float) -> float:
    """WCAG contrast ratio of two relative luminances."""
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def rim(a: np.ndarray, width: int) -> np.ndarray:
    """Pixels of the silhouette within `width` px of its outside (the image border counts)."""
    inside = np.pad(a[..., 3] > 0, 1)
    core = inside.copy()
    for _ in range(width):
        core[1:-1, 1:-1] = (
            core[1:-1, 1:-1] & core[:-2, 1:-1] & core[2:, 1:-1] & core[1:-1, :-2] & core[1:-1, 2:]
        )
        core[0, :] = core[-1, :] = core[:, 0] = core[:, -1] = False
    return (inside & ~core)[1:-1, 1:-1]


def in_between_fraction(a: np.ndarray) -> float:
    """Share of pixels in the glyph's box (one column of margin) that are neither bar nor fill.

    The bars are white and the fills keep their smallest channel under 0.3, so min(R, G, B)
    tells how much of a pixel is bar; a value between 0.35 and 0.9 is a blend of the two,
    which is what resampling leaves along every bar edge.
    """
    _, glyph = glyph_mask(a)
    ys, xs = np.nonzero(glyph)
    box = a[ys.min() : ys.max() + 1, xs.min() - 1 : xs.max() + 2, :3].min(axis=-1)
    return float(((box > 0.35) & (box < 0.9)).mean())


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("size", (16, 22, 24, 32, 64))
def test_image_size_and_coverage(size, state):
    image = icon_image(size, state)
    assert (image.width(), image.height()) == (size, size)
    assert image.format() == QImage.Format.Format_ARGB32_Premultiplied
    covered = (pixels(image)[..., 3] > 0).mean()
    # A visible shape, yet not a plain square tile: the corners are rounded off.
    assert 0.5 <= covered < 1.0, covered


def test_bad_arguments():
    with pytest.raises(ValueError, match="state"):
        icon_image(32, "paused")
    with pytest.raises(ValueError, match="16"):
        icon_image(15)


@pytest.mark.parametrize("size", (16, 32, 64))
def test_live_glyph_is_legible(size):
    a = pixels(icon_image(size, "live"))
    opaque, glyph = glyph_mask(a)
    lum = luminance(a[..., :3])
    fill = opaque & ~glyph
    # 3:1 is WCAG's minimum for graphical objects. The dimmest tenth of the bars against
    # the brightest tenth of the fill, so the light end of the gradient counts too.
    ratio = contrast(np.percentile(lum[glyph], 10), np.percentile(lum[fill], 90))
    assert ratio >= 3.0, ratio
    share = glyph.sum() / opaque.sum()
    # Under 10% the bars vanish at a glance; over half and the square stops being the ground.
    assert 0.10 <= share <= 0.50, share


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("size", TRAY_SIZES + (64,))
def test_edge_shows_on_light_and_dark_panels(size, state):
    a = pixels(icon_image(size, state), premultiplied=True)
    ring = rim(a, max(2, round(size / 16)))  # the outer sixteenth: outline plus some fill
    for panel in (0.0, 1.0):
        shown = a[..., :3] + (1 - a[..., 3:]) * panel  # composite over the panel
        diff = np.abs(shown[ring] - panel).mean()
        # 0.2 is about the step from black to #333, averaged round the rim. A grey copy
        # of the live icon with its near-black outline, faded to 60%, measured 0.15 on a
        # black panel and could hardly be picked out there.
        assert diff > 0.2, (panel, diff)


def test_states_are_distinct_at_16px():
    images = {s: pixels(icon_image(16, s), premultiplied=True) for s in STATES}
    for x, y in itertools.combinations(STATES, 2):
        diff = np.abs(images[x] - images[y]).mean()
        # Mean over every channel of every pixel, transparent corners included. Swapping
        # only the glyph (bars for pause, same colours) measures 0.065 and fading the live
        # icon to 80% 0.073: a state must change more than either.
        assert diff >= 0.1, (x, y, diff)


@pytest.mark.parametrize("state,size", [("live", s) for s in TRAY_SIZES] + [("frozen", 16)])
def test_small_sizes_are_drawn_not_downscaled(state, size):
    drawn = in_between_fraction(pixels(icon_image(size, state)))
    assert drawn <= 0.05, drawn
    # The measure does see resampling: the big icon shrunk to this size blurs its bars.
    shrunk = icon_image(256, state).scaled(
        size, size, transformMode=Qt.TransformationMode.SmoothTransformation
    )
    assert in_between_fraction(pixels(shrunk)) > 0.05


def test_app_icon(qapp):
    with pytest.raises(ValueError):
        app_icon("paused")
    for state in STATES:
        ic = app_icon(state)
        sizes = {(s.width(), s.height()) for s in ic.availableSizes()}
        assert {(16, 16), (32, 32)} <= sizes
        assert {(s, s) for s in icon.ICON_SIZES} <= sizes
        assert app_icon(state) is ic  # cached
    # The 16 px pixmap is the one drawn for 16 px, not a scaled-down large one.
    small = app_icon("live").pixmap(QSize(16, 16)).toImage()
    assert np.array_equal(pixels(small), pixels(icon_image(16, "live")))


def test_cli_writes_png(tmp_path, capsys):
    out = tmp_path / "docs" / "icon.png"
    assert main([str(out), "--size", "48", "--state", "frozen"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    back = QImage(str(out))
    assert not back.isNull() and (back.width(), back.height()) == (48, 48)
    assert np.array_equal(pixels(back), pixels(icon_image(48, "frozen")))
    assert sorted(p.name for p in out.parent.iterdir()) == ["icon.png"]  # no temp file left
    with pytest.raises(SystemExit):
        main([str(out), "--size", "8"])
    with pytest.raises(SystemExit):
        main([str(out), "--state", "paused"])


def test_module_runs_without_a_gui_application(tmp_path):
    # `python -m synd.icon` never makes a QGuiApplication, so this also shows that
    # drawing and PNG encoding need none.
    out = tmp_path / "icon.png"
    run = subprocess.run(
        [sys.executable, "-m", "synd.icon", str(out), "--size", "24", "--state", "offline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    back = QImage(str(out))
    assert (back.width(), back.height()) == (24, 24)
