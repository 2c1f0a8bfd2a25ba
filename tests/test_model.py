"""The generator and decoder: any size, no batch statistics, sound at several scales."""

import pytest
import torch
from torch import nn

from synd.measure import generator_macs
from synd.model import FOURIER_FREQS, Generator, ModelConfig, SoundDecoder, fourier_features, make_coords


@pytest.fixture
def cfg():
    return ModelConfig(feature_dim=10, width=4, res_blocks=1, cond_dim=16, decoder_width=8)


@pytest.mark.parametrize("size", [(64, 64), (37, 53), (144, 256), (8, 8)])
def test_any_size_in_any_size_out(cfg, size):
    torch.manual_seed(0)
    g, d = Generator(cfg).eval(), SoundDecoder(cfg).eval()
    h, w = size
    base = torch.rand(2, 3, h, w)
    out = g(base, torch.randn(2, 10), make_coords(h, w, cfg.native_size))
    assert out.shape == (2, 3, h, w)
    assert out.min() >= 0 and out.max() <= 1
    assert d(out).shape == (2, 10)


def test_no_batch_statistics_anywhere(cfg):
    for net in (Generator(cfg), SoundDecoder(cfg)):
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert not norms
        assert not [name for name, _ in net.named_buffers()]  # no running stats of any kind


def test_frame_does_not_depend_on_the_rest_of_the_batch(cfg):
    torch.manual_seed(1)
    g = Generator(cfg).eval()
    base, feats = torch.rand(3, 3, 32, 32), torch.randn(3, 10)
    coords = make_coords(32, 32, 256)
    together = g(base, feats, coords)
    alone = g(base[1:2], feats[1:2], coords)
    assert torch.allclose(together[1:2], alone, atol=1e-6)


def test_sound_modulates_every_scale(cfg):
    """Every FiLM stage (1/2, 1/4, 1/8 resolution and back) receives a gradient from the
    features: sound is not just an input channel."""
    torch.manual_seed(2)
    g = Generator(cfg)
    feats = torch.randn(1, 10, requires_grad=True)
    films = g.film(feats)
    for f in films:
        f.retain_grad()
    # Re-run forward with these FiLM tensors to see each one's effect on the image.
    coords = make_coords(32, 32, 256)
    g.film = lambda _features: films  # type: ignore[method-assign]
    g(torch.rand(1, 3, 32, 32), feats, coords).sum().backward()
    assert len(films) == 3 + 2 * cfg.res_blocks + 2
    for i, f in enumerate(films):
        assert f.grad is not None and f.grad.abs().sum() > 0, f"FiLM stage {i} has no effect"


def test_different_sound_gives_different_picture(cfg):
    torch.manual_seed(3)
    g = Generator(cfg).eval()
    for p in g.cond[-1].parameters():  # make the (gently initialised) modulation visible
        nn.init.normal_(p, std=0.5)
    base = torch.rand(1, 3, 32, 32)
    coords = make_coords(32, 32, 256)
    a = g(base, torch.zeros(1, 10), coords)
    b = g(base, torch.full((1, 10), 2.0), coords)
    assert (a - b).abs().mean() > 0.01


def test_cached_position_term_gives_the_same_frame(cfg):
    torch.manual_seed(4)
    g = Generator(cfg).eval()
    base, feats = torch.rand(1, 3, 40, 24), torch.randn(1, 10)
    coords = make_coords(40, 24, 256)
    assert torch.allclose(g(base, feats, coords), g(base, feats, coords, g.position_term(coords)))


def test_coordinates_of_a_crop_match_the_full_frame():
    full = make_coords(256, 256, 256)
    crop = make_coords(64, 64, 256, top=32, left=96, frame=(256, 256))
    assert torch.allclose(crop, full[..., 32:96, 96:160], atol=1e-6)
    wide = make_coords(144, 256, 256)
    assert wide[0, 1].abs().max() < 1.0 < wide[0, 0].abs().max()  # short side spans [-1, 1]


def test_coordinate_waves_finer_than_fourier_max_are_zeros(cfg):
    coords = make_coords(36, 64, 256)
    full, capped = fourier_features(coords), fourier_features(coords, 2)
    assert capped.shape == full.shape  # the same weights fit either
    for i, k in enumerate(FOURIER_FREQS):
        for wave in range(2):  # sin, cos: 3 channels (x, y, radius) each
            c = slice((2 * i + wave) * 3, (2 * i + wave + 1) * 3)
            if k <= 2:
                assert torch.equal(capped[:, c], full[:, c]) and full[:, c].abs().max() > 0.5
            else:
                assert not capped[:, c].any()
    torch.manual_seed(5)
    g = Generator(cfg)
    capped_g = Generator(ModelConfig.from_dict({**cfg.to_dict(), "fourier_max": 2}))
    capped_g.load_state_dict(g.state_dict())
    assert not torch.allclose(g.position_term(coords), capped_g.position_term(coords))
    # A model file from before the setting: every wave, as it was trained.
    old = {k: v for k, v in cfg.to_dict().items() if k != "fourier_max"}
    assert ModelConfig.from_dict(old).fourier_max == FOURIER_FREQS[-1]


def test_config_round_trip_and_validation(cfg):
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="positive"):
        ModelConfig.from_dict({**cfg.to_dict(), "width": 0})


def test_macs_scale_with_pixels(cfg):
    small, large = generator_macs(cfg, 64, 64), generator_macs(cfg, 128, 128)
    assert 3.5 * small < large < 4.5 * small


def test_decoder_reads_large_frames_by_tiles(cfg):
    torch.manual_seed(5)
    d = SoundDecoder(cfg).eval()
    tile = torch.rand(1, 3, 32, 32)
    mosaic = tile.repeat(1, 1, 3, 4)  # 96 x 128: twelve copies of one tile
    assert torch.allclose(d.read(mosaic, 32), d(tile), atol=1e-5)
    small = torch.rand(2, 3, 40, 40)  # smaller than two tiles: read whole
    assert torch.allclose(d.read(small, 32), d(small))


def _random_generator(cfg) -> Generator:
    """A generator with every weight random, the sound modulation included (a fresh one
    starts with almost no modulation, which would hide a mistake in the FiLM path)."""
    torch.manual_seed(3)
    g = Generator(cfg).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0.0, 0.1)
    return g


def test_phase_weights_equal_a_convolution_after_bilinear_upsampling():
    from synd.model import interleave_phases, phase_weights, replicate_conv

    torch.manual_seed(2)
    low, weight = torch.randn(1, 5, 7, 9), torch.randn(4, 5, 3, 3)
    up = torch.nn.functional.interpolate(low, size=(14, 18), mode="bilinear", align_corners=False)
    direct = replicate_conv(up, weight)
    phased = interleave_phases(replicate_conv(low, phase_weights(weight)))
    assert phased.shape == direct.shape
    assert torch.allclose(phased, direct, atol=1e-5)


@pytest.mark.parametrize("size", [(64, 96), (216, 384), (36, 60), (8, 8)])
def test_folded_generator_paints_what_the_generator_paints(cfg, size):
    """Exact 2x stages use the phase-split convolutions; (36, 60) has a stage of odd size
    (the 1/8 frame is 5 rows for 9), which takes the plain upsampling path."""
    from synd.model import FoldedGenerator

    g = _random_generator(cfg).double()  # in float64 the two must agree to rounding
    h, w = size
    folded = FoldedGenerator(g, h, w).eval()
    base, feats = torch.rand(1, 3, h, w, dtype=torch.float64), torch.randn(1, 10, dtype=torch.float64)
    with torch.no_grad():
        expected = g(base, feats, make_coords(h, w, cfg.native_size).double())
        got = folded(base, feats)
        nhwc = folded(base.to(memory_format=torch.channels_last), feats)
        other_sound = folded(base, -feats)
    assert (expected - got).abs().max() < 1e-9
    assert (expected - nhwc).abs().max() < 1e-9
    # The comparison can tell frames apart: not saturated, and the sound changes them.
    assert ((expected > 0.05) & (expected < 0.95)).double().mean() > 0.5
    assert (expected - other_sound).abs().max() > 0.01
