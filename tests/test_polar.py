"""Polar looks: the kaleidoscope and the tunnel (synd.polar)."""

import numpy as np
import torch

from synd.frameloop import smooth_pattern
from synd.judge import _autocorrelation
from synd.polar import Polar, wedges
from synd.presets import Look
from tests.helpers.models import shown_beside_plain

LUMA = torch.tensor([0.2126, 0.7152, 0.0722]).view(3, 1, 1)


def fields(height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth random colour fields, the kind of picture the flowing looks paint."""
    return smooth_pattern(1, height, width, torch.Generator().manual_seed(seed))


def test_mirror_asks_for_an_even_number_of_wedges_or_none():
    assert [wedges(m) for m in (0, 1.9, 2, 4, 5.2, 6, 7, 8, 16)] == [0, 0, 4, 4, 6, 6, 8, 8, 16]


def test_the_kaleidoscope_repeats_its_wedges_around_the_centre_mirrored():
    """Six wedges on a square frame: the picture is the same turned by a pair of wedges
    (120 degrees, checked at the pixel centres that land on pixel centres: a half turn of a
    twelve-wedge fold) and mirrored across a wedge's edge (the horizontal axis at no turn)."""
    polar = Polar(64, 64)
    six = polar.fold(fields(64, 64, 1), 6, 0.0)[0]
    assert torch.allclose(six, torch.flip(six, dims=[1]), atol=1e-5)  # mirrored top to bottom
    twelve = polar.fold(fields(64, 64, 1), 12, 0.0)[0]  # a pair of wedges is 60 degrees
    assert torch.allclose(twelve, torch.rot90(twelve, 2, dims=[1, 2]), atol=1e-5)
    # Not one colour: the wedges show the picture's shapes.
    assert six.std() > 0.05


def test_a_turn_turns_the_kaleidoscope_and_no_mirror_leaves_the_picture_alone():
    polar = Polar(64, 64)
    frame = fields(64, 64, 2)
    assert torch.equal(polar.fold(frame, 0, 1.0), frame)
    still = polar.fold(frame, 6, 0.0)[0]
    # A quarter turn (not a symmetry of six wedges): the still picture, turned a quarter.
    turned = polar.fold(frame, 6, np.pi / 2)[0]
    assert (turned - still).abs().mean() > 0.05
    assert torch.allclose(turned, torch.rot90(still, 1, dims=[1, 2]), atol=1e-4)


def test_neither_polar_look_draws_a_lattice():
    """The judge's tiling score (repeats along a line, 1 = a lattice) of the kaleidoscope
    and the tunnel of smooth fields, over several pictures, against a true lattice."""
    ac = _autocorrelation()
    polar = Polar(72, 128)

    def tiling(frame: torch.Tensor) -> float:
        return ac.tiling((frame[0] * LUMA).sum(0).numpy())

    folded = [tiling(polar.fold(fields(72, 128, s), 6, 0.3 * s)) for s in range(8)]
    tunnels = [tiling(polar.tunnel(fields(72, 128, s), 1.0, 0.3 * s)) for s in range(8)]
    x = torch.arange(128).view(1, 128) * (2 * np.pi / 32)
    lattice = (0.5 + 0.4 * torch.sin(x) * torch.cos(torch.arange(72).view(72, 1) * (2 * np.pi / 32))).numpy()
    assert ac.tiling(lattice) > 0.8
    assert np.median(folded) < 0.4 and np.median(tunnels) < 0.4


def ring_radius(frame: torch.Tensor) -> float:
    """Distance from the centre (pixels) of the brightest ring along the middle row's right half."""
    row = frame[0, 0, frame.shape[2] // 2, frame.shape[3] // 2 :]
    return float(torch.argmax(row))


def test_the_tunnel_streams_its_rings_outwards_and_is_dark_at_its_centre():
    """A bright vertical line in the picture is a ring in the tunnel; moving on widens it."""
    frame = torch.full((1, 3, 90, 160), 0.2)
    frame[..., 100:104] = 1.0
    polar = Polar(90, 160)
    near = polar.tunnel(frame, 1.0, 0.0)
    far = polar.tunnel(frame, 1.0, 0.1)
    assert ring_radius(far) > ring_radius(near) + 2
    centre = near[0, :, 44:46, 79:81]
    assert centre.max() < 0.02  # the vanishing point is black
    assert torch.equal(polar.tunnel(frame, 0.0, 0.3), frame)
    # Mirrored sectors close the circle without a seam: top and bottom halves mirror.
    assert torch.allclose(near, torch.flip(near, dims=[2]), atol=1e-5)


def test_in_the_frame_loop_only_the_shown_frame_is_re_mapped_and_silence_holds_it_still(tiny_bundle):
    """The generator's feedback keeps its own picture with the kaleidoscope on, and on
    digital silence the wedges stop turning (sound time stands still)."""
    pairs, folded = shown_beside_plain(tiny_bundle, Look(flow=1.0, mirror=6))
    plain, shown = pairs[-1]
    assert (shown - plain).abs().mean() > 0.02
    loudness = tiny_bundle.features.names.index("loudness")
    silent = np.asarray(tiny_bundle.stats.mean, np.float32).copy()
    silent[loudness] = -120.0
    with torch.inference_mode():
        first = folded.step(silent)
        tau = folded.flow.tau
        for _ in range(5):
            last = folded.step(silent)
    assert folded.flow.tau == tau
    assert (last - first).abs().max() < 0.05
