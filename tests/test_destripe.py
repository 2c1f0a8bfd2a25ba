"""Destriping (synd.destripe): the fine full-height stripes go, the fields stay."""

import math

import torch

from synd.destripe import Destripe
from synd.frameloop import smooth_pattern
from synd.presets import Look
from tests.helpers.models import shown_beside_plain

H, W = 216, 384


def fields(seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields, kept off 0 and 1 so nothing clips."""
    return 0.15 + 0.7 * smooth_pattern(1, H, W, torch.Generator().manual_seed(seed))


def stripes(period_heights: float, amplitude: float = 0.03) -> torch.Tensor:
    """Vertical stripes down the whole frame, a period of `period_heights` frame heights,
    different in each channel, (1, 3, 1, W)."""
    x = torch.arange(W, dtype=torch.float32) / H
    waves = [amplitude * math.cos(c) * torch.sin(2 * math.pi * x / period_heights + c) for c in (0, 1, 2)]
    return torch.stack(waves).view(1, 3, 1, W)


def roughness(frame: torch.Tensor) -> float:
    """Spread of the column profile about its own 31-pixel running mean (0-1 scale)."""
    profile = frame.mean(dim=-2)  # (1, 3, W)
    smooth = torch.nn.functional.avg_pool1d(profile, 31, stride=1, padding=15, count_include_pad=False)
    return float((profile - smooth).std())


def middle(frame: torch.Tensor) -> torch.Tensor:
    """All but an eighth of the width at each side: at the very edges a stripe and a ramp
    look alike, and some of each stripe's end stays as a gentle slope."""
    return frame[..., W // 8 : -W // 8]


def test_the_finest_waves_stripes_and_their_harmonics_are_taken_out():
    clean = fields()
    striped = clean + stripes(0.25) + stripes(0.125, 0.01)
    out = Destripe(H, W).draw(striped, 1.0)
    assert roughness(striped) > 4 * roughness(clean)
    assert roughness(out) < 1.1 * roughness(clean)
    # What is left is the fields: within a grey level on average, 2.5 anywhere but the edges.
    assert (out - clean).abs().mean() < 1 / 255
    assert middle(out - clean).abs().max() < 2.5 / 255


def test_fields_and_coarse_waves_are_left_alone():
    clean = fields(1)
    assert (Destripe(H, W).draw(clean, 1.0) - clean).abs().mean() < 0.5 / 255
    coarse = fields(2) + stripes(0.5, 0.05)  # the next coarser coordinate wave stays
    change = Destripe(H, W).draw(coarse, 1.0) - coarse
    assert change.abs().mean() < 1 / 255 and middle(change).abs().max() < 4 / 255


def test_stripes_of_any_painted_size_are_measured_in_frame_heights():
    """The finest wave's stripes go at every painted size, the next coarser wave stays."""
    for h, w in ((144, 256), (360, 640)):
        gone = Destripe(h, w).draw(0.5 + full_height_wave(h, w, 0.25), 1.0) - 0.5
        kept = Destripe(h, w).draw(0.5 + full_height_wave(h, w, 0.5), 1.0) - 0.5
        centre = slice(w // 4, -w // 4)
        assert gone[..., centre].abs().max() < 0.1 * 0.03
        assert torch.allclose(kept[..., centre], full_height_wave(h, w, 0.5)[..., centre], atol=0.1 * 0.03)


def full_height_wave(h: int, w: int, period: float) -> torch.Tensor:
    """A grey sine of amplitude 0.03 down whole columns, `period` frame heights long."""
    x = torch.arange(w, dtype=torch.float32) / h
    return 0.03 * torch.sin(2 * math.pi * x / period).view(1, 1, 1, w).expand(1, 3, h, w)


def test_strength_takes_out_that_share_and_zero_is_untouched():
    striped = fields(3) + stripes(0.25)
    d = Destripe(H, W)
    full, half = d.stripes(striped), d.draw(striped, 0.5)
    assert torch.allclose(half, (striped - 0.5 * full).clamp(0, 1), atol=1e-6)
    assert d.draw(striped, 0.0) is striped


def test_in_the_frame_loop_only_the_shown_frame_is_destriped(tiny_bundle):
    pairs, _ = shown_beside_plain(tiny_bundle, Look(flow=1.0, destripe=1.0), frames=8, seed=6)
    d = Destripe(36, 64)
    for plain, shown in pairs:
        assert torch.allclose(shown, d.draw(plain, 1.0), atol=1e-6)
