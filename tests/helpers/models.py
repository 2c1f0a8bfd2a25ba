"""Tiny models for tests that run anywhere: `make_tiny_bundle` and its fixture
`tiny_bundle`, `other_model` (the same architecture with other weights: a second look),
and `TINY_PRESET`, a preset that trains such a model in seconds."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from synd.bundle import ModelBundle
from synd.features import FeatureConfig, FeatureStats
from synd.model import ModelConfig

#: A preset (TOML) for a tiny look: 8 bands, a 4-wide network, 32-pixel training crops.
TINY_PRESET = """
name = "tiny"
description = "tiny test look"
[features]
bands = 8
[architecture]
width = 4
res_blocks = 1
cond_dim = 16
decoder_width = 8
[loss]
sound = 1.0
image = 0.5
colorfulness = 0.1
temporal = 0.1
[train]
size = 32
batch = 4
unroll = 2
pool = 8
lr = 0.003
"""


def make_tiny_bundle() -> ModelBundle:
    """An untrained, small model with plausible normalisation statistics."""
    torch.manual_seed(0)
    features = FeatureConfig(bands=8)
    stats = FeatureStats(
        mean=np.full(features.dim, -5.0, np.float32), std=np.full(features.dim, 2.0, np.float32)
    )
    config = ModelConfig(feature_dim=features.dim, width=4, res_blocks=1, cond_dim=16, decoder_width=8)
    return ModelBundle.new(config, features, stats, meta={"name": "tiny"})


@pytest.fixture
def tiny_bundle() -> ModelBundle:
    """An untrained, small model with plausible normalisation statistics."""
    return make_tiny_bundle()


def other_model(bundle: ModelBundle, seed: int) -> ModelBundle:
    """The same architecture with other weights: a second look."""
    other = copy.deepcopy(bundle)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in other.generator.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    other.meta = {**other.meta, "name": f"other{seed}"}
    return other


def shown_beside_plain(bundle: ModelBundle, look, frames: int = 12, seed: int = 4):
    """Pairs (plain, shown) of frames from two frame loops on the same random features:
    one with `lava`-like flow only, one with `look` (a look that redraws the shown frame:
    lines, ink, a kaleidoscope). Asserts, frame by frame, that the picture fed back stays
    the same in both: a redraw of the shown frame never reaches the generator."""
    from synd.frameloop import FrameLoop
    from synd.presets import Look

    rng = np.random.default_rng(seed)
    mean, std = bundle.stats.mean, bundle.stats.std
    feats = (mean + std * rng.normal(size=(frames, len(mean)))).astype(np.float32)
    plain = FrameLoop(bundle, 36, 64, look=Look(flow=1.0))
    drawn = FrameLoop(bundle, 36, 64, look=look)
    pairs = []
    with torch.inference_mode():
        for row in feats:
            pair = (plain.step(row), drawn.step(row))
            assert torch.equal(plain.previous, drawn.previous)
            pairs.append(pair)
    return pairs, drawn
