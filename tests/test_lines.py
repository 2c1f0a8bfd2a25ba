"""Contour lines: the picture drawn as glowing lines on the dark (synd.lines)."""

import numpy as np
import torch
from scipy.signal import find_peaks

from synd.lines import FILL, LEVELS, ContourLines
from synd.presets import Look
from tests.helpers.models import shown_beside_plain


def ramp(height: int, width: int, low: float, high: float) -> torch.Tensor:
    """A grey frame whose value rises evenly from `low` at the left to `high` at the right."""
    x = torch.linspace(low, high, width).view(1, 1, 1, width)
    return x.expand(1, 3, height, width).clone()


def glow(frame: torch.Tensor, height: int, row: int) -> np.ndarray:
    """The lines alone (the faint picture taken away) along one row of `frame` drawn."""
    out = ContourLines(height).draw(frame, 1.0)
    return (out - FILL * frame)[0, 0, row].numpy()


def peaks(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and half-height widths (pixels) of the lines along one row."""
    where, props = find_peaks(row, height=0.5, width=0.0, rel_height=0.5)
    return where, props["widths"]


def test_a_line_is_drawn_at_every_level_and_steep_or_gentle_slopes_draw_it_equally_thin():
    gentle = glow(ramp(360, 1400, 0.0, 1.0), 360, 180)
    steep = glow(ramp(360, 700, 0.0, 1.0), 360, 180)
    at_g, width_g = peaks(gentle)
    at_s, width_s = peaks(steep)
    assert len(at_g) == len(at_s) == LEVELS  # one line per level, none between
    # The lines sit where the value crosses (k + 1/2) / LEVELS.
    expected = (np.arange(LEVELS) + 0.5) / LEVELS * (1400 - 1)
    assert np.abs(at_g - expected).max() < 3.0
    # Width in pixels, whatever the slope: half the slope, the same lines.
    assert np.allclose(width_g, width_s, rtol=0.1)
    assert 1.0 < width_g.mean() < 6.0


def test_flat_areas_draw_no_line_and_show_the_faint_picture():
    flat = torch.full((1, 3, 72, 128), 0.4)
    out = ContourLines(72).draw(flat, 1.0)
    assert torch.allclose(out, FILL * flat, atol=1e-4)


def test_a_nearly_constant_channel_with_a_faint_grain_draws_no_lattice():
    """Red carries the shapes; blue is constant but for faint vertical stripes that cross a
    level: red draws its lines, blue none."""
    frame = ramp(90, 160, 0.1, 0.9)
    stripes = 0.5 / LEVELS + 0.01 * torch.sin(torch.arange(160) * 2.0)  # around a level
    frame[:, 2] = stripes.view(1, 160).expand(90, 160)
    out = ContourLines(90).draw(frame, 1.0)
    assert out[0, 0].max() > 0.9
    assert torch.allclose(out[0, 2], FILL * frame[0, 2], atol=1e-4)


def test_the_strength_blends_from_the_picture_to_its_lines():
    frame = ramp(90, 160, 0.1, 0.9)
    lines = ContourLines(90)
    assert torch.equal(lines.draw(frame, 0.0), frame)
    full = lines.draw(frame, 1.0)
    half = lines.draw(frame, 0.5)
    assert torch.allclose(half, 0.5 * (frame + full), atol=1e-5)
    assert (full - frame).abs().max() > 0.5


def test_lines_keep_their_look_across_frame_sizes():
    """Widths scale with the frame's height: a render at twice the size draws lines twice
    as wide in pixels (the same share of the picture)."""
    small = glow(ramp(360, 700, 0.0, 1.0), 360, 100)
    large = glow(ramp(720, 1400, 0.0, 1.0), 720, 200)
    (at_s, width_s), (at_l, width_l) = peaks(small), peaks(large)
    assert len(at_s) == len(at_l) == LEVELS
    assert np.allclose(width_l, 2.0 * width_s, rtol=0.15)


def test_in_the_frame_loop_only_the_shown_frame_is_drawn_as_lines(tiny_bundle):
    """The generator's feedback keeps its own picture: with lines on, the chain of pictures
    it feeds back is the same as with them off, and the frames shown are its lines."""
    pairs, _ = shown_beside_plain(tiny_bundle, Look(flow=1.0, lines=1.0), frames=20)
    lines = ContourLines(36)
    for plain, shown in pairs:
        assert torch.allclose(shown, lines.draw(plain, 1.0), atol=1e-6)
    assert (shown - plain).abs().mean() > 0.05
