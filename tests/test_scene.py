"""The scene: a sound-driven colour field under the generator's texture (synd.model.SceneHead)."""

import numpy as np
import pytest
import torch

from synd import losses as L
from synd.bundle import ModelBundle
from synd.features import FeatureConfig, FeatureStats
from synd.frameloop import FrameLoop, slow_average, slow_decay, to_rgb_uint8
from synd.judge import Judge
from synd.model import SCENE_CENTRES, ModelConfig, make_coords, scene_basis


def scene_bundle(scene: int = 16) -> ModelBundle:
    torch.manual_seed(0)
    features = FeatureConfig(bands=8)
    stats = FeatureStats(mean=np.zeros(features.dim, np.float32), std=np.ones(features.dim, np.float32))
    config = ModelConfig(
        feature_dim=features.dim, width=4, res_blocks=1, cond_dim=16, decoder_width=8, scene=scene
    )
    return ModelBundle.new(config, features, stats, meta={"name": "scene"})


def test_a_model_without_a_scene_has_none_and_old_configs_still_load():
    assert ModelConfig.from_dict({"feature_dim": 10}).scene == 0
    assert scene_bundle(scene=0).generator.scene is None
    with pytest.raises(ValueError, match="scene"):
        ModelConfig.from_dict({"feature_dim": 10, "scene": -1})


def test_the_scene_basis_is_a_few_broad_blobs_that_sum_to_one():
    coords = make_coords(72, 128, 256)
    basis = scene_basis(coords)
    assert basis.shape == (1, len(SCENE_CENTRES), 72, 128)
    assert torch.allclose(basis.sum(dim=1), torch.ones(1, 72, 128), atol=1e-5)
    # Each blob dominates its own part of the frame: a composition, not a lattice.
    assert len(set(basis.argmax(dim=1).flatten().tolist())) == len(SCENE_CENTRES)


def test_the_slow_average_in_training_is_the_one_the_frame_loop_keeps():
    bundle = scene_bundle()
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (90, bundle.config.feature_dim)).astype(np.float32)
    loop = FrameLoop(bundle, 32, 48, look=bundle_look(), fps=30.0)
    kept = []
    for row in raw:
        loop.step(row)
        kept.append(loop._slow[0].numpy().copy())
    expected = slow_average(raw, 30.0)  # smoothing 0 and intensity 1: the rows themselves
    assert np.allclose(np.array(kept), expected, atol=1e-5)
    assert 0.98 < slow_decay(30.0) < 0.99  # 2 s at 30 fps


def bundle_look():
    from synd.presets import Look

    return Look(feedback=0.85, intensity=1.0, smoothing=0.0)


def test_the_scene_losses_measure_what_they_say():
    flat = torch.full((8, 3, 9, 16), 0.5)
    assert L.scene_swing_loss(flat, 0.25) == pytest.approx(0.25)
    assert L.scene_spread_loss(flat, 0.2) == pytest.approx(0.2)
    varied = torch.rand(8, 3, 9, 16, generator=torch.Generator().manual_seed(0))
    assert L.scene_swing_loss(varied, 0.25) < 0.02  # uniform noise: std 0.29 per pixel
    assert L.scene_calm_loss(flat, flat + 0.01, 0.02) == 0
    assert L.scene_calm_loss(flat, flat + 0.1, 0.02) == pytest.approx(0.08)


def test_training_the_scene_makes_its_picture_follow_the_sound():
    """A few hundred steps of the scene losses alone: the field's swing over different
    sounds grows past the target, and two sounds paint visibly different pictures."""
    bundle = scene_bundle(scene=32)
    scene = bundle.generator.scene
    opt = torch.optim.Adam(scene.parameters(), lr=1e-2)
    whole = scene_basis(make_coords(9, 16, 16))
    g = torch.Generator().manual_seed(1)
    f = bundle.config.feature_dim
    before = None
    for _ in range(300):
        now, slow = torch.randn(32, f, generator=g), torch.randn(32, f, generator=g)
        fields = scene(now, slow, whole)
        loss = L.scene_swing_loss(fields, 0.25) + L.scene_spread_loss(fields, 0.2)
        before = loss.item() if before is None else before
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * before
    a, b = torch.randn(1, f, generator=g), torch.randn(1, f, generator=g)
    judge_a, judge_b = [scene(x, x, whole) for x in (a, b)]
    assert (judge_a - judge_b).abs().mean() > 0.1  # about 25 delta-E and more


def test_a_scene_models_frames_change_with_the_music_at_large_scale():
    """Two sounds held for a second each: the whole picture (16x9) differs between them."""
    bundle = scene_bundle(scene=16)
    with torch.no_grad():
        for p in bundle.generator.scene.parameters():
            p.mul_(8.0)  # a scene that already swings widely
        # A generator that shows its base image (the frame loop's wiring is under test).
        to_rgb = bundle.generator.to_rgb
        to_rgb.weight.zero_()
        to_rgb.bias.zero_()
        skip = to_rgb.weight.shape[1] - 6
        for c in range(3):
            to_rgb.weight[c, skip + c, 1, 1] = 3.0
    loop = FrameLoop(bundle, 72, 128, look=bundle_look(), fps=30.0)
    f = bundle.config.feature_dim
    quiet, loud = np.full(f, -1.0, np.float32), np.full(f, 1.5, np.float32)
    frames = [to_rgb_uint8(loop.step(quiet if i < 30 else loud)) for i in range(60)]
    judge = Judge(30.0)
    for fr in frames:
        judge.add(fr)
    motion = judge.motion()
    assert motion[31:40].max() > 2.3  # the change of sound is a visible change
    assert np.abs(frames[29].astype(int) - frames[59].astype(int)).mean() > 5


def test_the_composition_loss_sees_only_the_large_scale():
    g = torch.Generator().manual_seed(2)
    ramp = torch.linspace(0, 1, 64)
    scene = (ramp.view(1, 1, 1, 64) * ramp.view(1, 1, 64, 1)).expand(2, 3, 64, 64).clone()
    texture = (torch.rand(2, 3, 64, 64, generator=g) - 0.5) * 0.4
    texture -= torch.nn.functional.avg_pool2d(texture, 8).repeat_interleave(8, 2).repeat_interleave(8, 3)
    assert L.composition_loss(scene + texture, scene) < 1e-10  # zero-mean detail is free
    assert L.composition_loss(torch.full_like(scene, 0.5), scene) > 0.005  # a wash is not


def test_the_texture_may_move_only_with_the_scene():
    g = torch.Generator().manual_seed(3)
    scene0, scene1 = torch.rand(2, 1, 3, 16, 16, generator=g)
    texture = 0.1 * torch.rand(1, 3, 16, 16, generator=g)
    # The scene moved, the texture on it stayed: free. The texture moved by 0.05: not.
    assert L.texture_calm_loss(scene1 + texture, scene1, scene0 + texture, scene0) < 1e-7
    moved = L.texture_calm_loss(scene1 + texture + 0.05, scene1, scene0 + texture, scene0)
    assert moved == pytest.approx(0.05, abs=1e-6)


def test_training_sequences_can_hear_digital_silence():
    from dataclasses import replace

    from synd.presets import TrainSettings
    from synd.train import ChainPool

    settings = replace(TrainSettings(), pool=32, batch=32, unroll=2, size=16, silence=0.5, augment=0.0)
    tracks = [torch.randn(50, 4) for _ in range(3)]
    pool = ChainPool(32, 16, 32, tracks, settings)
    pool.silence = torch.full((4,), -7.0)
    _, feats = pool.draw(32, 2, torch.Generator().manual_seed(0))
    quiet = (feats == -7.0).all(dim=2).all(dim=0)
    assert 8 <= int(quiet.sum()) <= 24  # about half the sequences, whole sequences
    assert not (feats[:, ~quiet] == -7.0).any()
