"""Shared fixtures: tiny models and generated audio, so tests run anywhere."""

import numpy as np
import pytest
import torch

from synd.audio import write_wav
from synd.bundle import ModelBundle
from synd.features import FeatureConfig, FeatureStats
from synd.model import ModelConfig


@pytest.fixture
def tiny_bundle() -> ModelBundle:
    """An untrained, small model with plausible normalisation statistics."""
    return make_tiny_bundle()


def make_tiny_bundle() -> ModelBundle:
    """`tiny_bundle`, for code outside pytest (scripts/window_follow.py)."""
    torch.manual_seed(0)
    features = FeatureConfig(bands=8)
    stats = FeatureStats(mean=np.full(features.dim, -5.0, np.float32),
                         std=np.full(features.dim, 2.0, np.float32))
    config = ModelConfig(feature_dim=features.dim, width=4, res_blocks=1, cond_dim=16,
                         decoder_width=8)
    return ModelBundle.new(config, features, stats, meta={"name": "tiny"})


def music_clip(seed: int, seconds: float = 6.0, sr: int = 24000) -> np.ndarray:
    """A short synthetic piece: decaying tones at random pitches, noise hits, a beat."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    step = int(0.25 * sr)
    for a in range(0, len(t) - step, step):
        f = rng.uniform(60, 3000)
        env = np.exp(-np.linspace(0, rng.uniform(1, 8), step))
        x[a:a + step] += rng.uniform(0.05, 0.4) * np.sin(2 * np.pi * f * t[a:a + step]) * env
        if rng.random() < 0.4:
            x[a:a + 1500] += rng.normal(0, 0.3, 1500) * np.linspace(1, 0, 1500)
    return np.clip(x, -1, 1).astype(np.float32)


@pytest.fixture
def clip_dir(tmp_path):
    """A folder of four short generated WAV songs."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for k in range(4):
        write_wav(folder / f"song{k}.wav", music_clip(k), 24000)
    return folder
