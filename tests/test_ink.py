"""Ink: the picture printed vivid on black (synd.ink)."""

import numpy as np
import torch

from synd.frameloop import smooth_pattern
from synd.ink import DARK, Ink
from synd.presets import Look
from tests.helpers.models import shown_beside_plain


def colour_ramp(height: int, width: int) -> torch.Tensor:
    """Grey at the left turning evenly to strong red at the right (colourfulness 0 -> 0.8)."""
    t = torch.linspace(0.0, 1.0, width).view(1, 1, 1, width).expand(1, 1, height, width)
    return torch.cat([0.5 + 0.4 * t, 0.5 - 0.4 * t, 0.5 - 0.4 * t], dim=1).clone()


def edge_width(row: np.ndarray) -> float:
    """Pixels over which a row of the print climbs from 10 % to 90 % of its range."""
    lo, hi = row.min(), row.max()
    return float(np.argmax(row > lo + 0.9 * (hi - lo)) - np.argmax(row > lo + 0.1 * (hi - lo)))


def test_half_the_frame_is_lit_in_the_pictures_colour_at_full_brightness():
    frame = colour_ramp(90, 320)
    out = Ink(90).draw(frame, 1.0)[0]
    lit = out.amax(0) > 0.5
    assert abs(lit.float().mean().item() - 0.5) < 0.03
    # Away from the edge: the colourful right at full brightness, still red (not white),
    # the greyish left in the black ink.
    right, left = out[:, :, 200:], out[:, :, :120]
    assert torch.allclose(right[0], torch.ones(1), atol=1e-4)
    assert (right[1] < 0.5).all() and (right[2] < 0.5).all()
    assert torch.allclose(left, torch.full((1,), DARK), atol=1e-4)


def test_an_edge_is_as_crisp_on_a_gentle_slope_as_on_a_steep_one_but_a_near_flat_one_is_soft():
    """The cut's ramp is `EDGE_PX` wide whatever the slope, down to `MIN_RAMP`: a picture
    that hardly changes across the cut is not cut hard (its texture would flip areas)."""

    def width(pixels: int) -> float:
        return edge_width(Ink(360).draw(colour_ramp(360, pixels), 1.0)[0, 0, 180].numpy())

    steep, gentle = width(60), width(120)
    assert 1 <= steep <= 4 and abs(gentle - steep) <= 1
    assert width(1400) > 8


def test_a_brighter_darker_or_greyer_picture_keeps_the_same_islands_lit():
    """The cut follows the frame's own median: the whole picture dimmed (a quiet passage)
    or washed with grey lights the same islands, so no passage flips the whole screen."""
    frame = smooth_pattern(1, 72, 128, torch.Generator().manual_seed(3))
    ink = Ink(72)
    lit = ink.draw(frame, 1.0).amax(1) > 0.5
    for changed in (0.6 * frame, frame + 0.15 * (1 - frame.amax(1, keepdim=True))):
        again = ink.draw(changed, 1.0).amax(1) > 0.5
        assert (again == lit).float().mean() > 0.97
    assert 0.3 < lit.float().mean() < 0.7


def test_a_flat_picture_is_not_cut_into_black_and_colour():
    """A nearly flat picture (faint grain only) would otherwise flip between the inks at
    random; it stays one even tone."""
    grain = 0.002 * torch.randn(1, 1, 72, 128, generator=torch.Generator().manual_seed(1))
    flat = torch.tensor([0.6, 0.4, 0.3]).view(1, 3, 1, 1) + grain
    out = Ink(72).draw(flat, 1.0)
    assert out.amax(1).std() < 0.1


def test_the_strength_blends_from_the_picture_to_its_print():
    frame = colour_ramp(90, 160)
    ink = Ink(90)
    assert torch.equal(ink.draw(frame, 0.0), frame)
    full = ink.draw(frame, 1.0)
    assert torch.allclose(ink.draw(frame, 0.5), 0.5 * (frame + full), atol=1e-5)


def test_in_the_frame_loop_only_the_shown_frame_is_inked(tiny_bundle):
    pairs, _ = shown_beside_plain(tiny_bundle, Look(flow=1.0, ink=1.0), frames=10, seed=5)
    ink = Ink(36)
    for plain, shown in pairs:
        assert torch.allclose(shown, ink.draw(plain, 1.0), atol=1e-6)
