"""The stage: sound-driven light and colour over the generator's picture (synd.stage)."""

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.judge import lab
from synd.presets import Look
from synd.stage import CLIP, CONTRAST_AT_FULL, LIGHT_S, RunningRange, Stage, drive_matrix


def test_drives_weigh_the_bands_only_and_a_uniform_change_moves_only_the_level():
    m = drive_matrix(10, 8)
    assert np.all(m[:, 8:] == 0)  # loudness and onset columns get no weight
    uniform = np.r_[np.ones(8), 0.0, 0.0]
    level, tilt, middle = m @ uniform
    assert level == pytest.approx(1.0) and tilt == pytest.approx(0.0) and middle == pytest.approx(0.0)
    brighter = np.r_[np.linspace(-1, 1, 8), 0.0, 0.0]  # more highs, fewer lows
    assert (m @ brighter)[1] > 0
    with pytest.raises(ValueError, match="at least 3 band"):
        drive_matrix(4, 2)


def test_the_running_range_standardises_against_the_song_heard_lately():
    rng = np.random.default_rng(0)
    loud = 5.0 + 2.0 * rng.normal(size=(3000, 1))
    quiet = -3.0 + 0.5 * rng.normal(size=(3000, 1))
    r = RunningRange(1, memory=300)
    out = np.array([r(x) for x in np.concatenate([loud, quiet])])[:, 0]
    # Each part ends standardised against itself, whatever its level and spread.
    for part in (out[2000:3000], out[5000:6000]):
        assert abs(part.mean()) < 0.25 and 0.8 < part.std() < 1.2
    # The first samples already use the song's own range (no long warm-up from zero).
    assert abs(out[30:300].mean()) < 0.5
    # A sudden change is clipped, not blinding.
    assert out.max() <= CLIP and out.min() >= -CLIP and out[3000:3010].min() == -CLIP


def stage_loop(bundle, strength: float, size=(36, 64)) -> FrameLoop:
    return FrameLoop(bundle, *size, look=Look(stage=strength))


def test_at_strength_zero_the_picture_is_the_generators_and_feedback_never_takes_the_light(tiny_bundle):
    rng = np.random.default_rng(1)
    feats = rng.normal(-5.0, 2.0, size=(40, tiny_bundle.features.dim)).astype(np.float32)
    off, lit = stage_loop(tiny_bundle, 0.0), stage_loop(tiny_bundle, 1.0)
    with torch.inference_mode():
        for row in feats:
            a, b = off.step(row), lit.step(row)
            assert torch.equal(a, off.previous)  # strength 0: shown = painted
            assert torch.equal(off.previous, lit.previous)  # the light never feeds back
    assert (a - b).abs().max() > 0.05  # ...while the lit picture differs


def test_the_light_follows_the_level_of_the_sound(tiny_bundle):
    """Loud and quiet halves of each 8 s: the broad lightness follows (1 s behind at
    most), by tens of L*."""
    fps, dim = 30, tiny_bundle.features.dim
    mean, std = tiny_bundle.stats.mean, tiny_bundle.stats.std
    level = np.where((np.arange(32 * fps) // (4 * fps)) % 2 == 0, 1.0, -1.0)
    feats = (mean + std * level[:, None] * np.ones(dim)).astype(np.float32)
    loop = stage_loop(tiny_bundle, 1.0)
    with torch.inference_mode():
        lightness = np.array([lab(to_rgb_uint8(loop.step(row)) / 255.0)[..., 0].mean() for row in feats])
    settled = slice(8 * fps, None)
    d = np.exp(-1.0 / (fps * LIGHT_S))
    followed = lfilter([1 - d], [1, -d], level)  # the level as the stage smooths it
    assert np.corrcoef(followed[settled], lightness[settled])[0, 1] > 0.8
    loud, quiet = lightness[settled][level[settled] > 0], lightness[settled][level[settled] < 0]
    assert loud.mean() - quiet.mean() > 20


def test_a_steady_sound_gives_a_neutral_still_stage():
    stage = Stage(10, 8, 18, 32, 256, 30.0, torch.device("cpu"))
    x = np.full(10, 0.7)
    offsets = [stage.offsets(x, 1.0) for _ in range(60)]
    assert np.abs(np.array(offsets)).max() < 1e-3


def test_intensity_zero_is_a_neutral_stage(tiny_bundle):
    """No sound drive: the shown frame is the painted one at the stage's contrast, unlit."""
    rng = np.random.default_rng(2)
    feats = rng.normal(-5.0, 2.0, size=(30, tiny_bundle.features.dim)).astype(np.float32)
    loop = FrameLoop(tiny_bundle, 36, 64, look=Look(stage=1.0, intensity=0.0))
    with torch.inference_mode():
        for row in feats:
            shown = loop.step(row)
            unlit = (0.5 + CONTRAST_AT_FULL * (loop.previous - 0.5)).clamp(0, 1)
            assert (shown - unlit).abs().max() < 1e-5
