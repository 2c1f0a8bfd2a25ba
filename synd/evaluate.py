"""Measuring how well a model sees the sound, on audio of your choice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from synd.audio import load_audio
from synd.bundle import ModelBundle
from synd.features import FeatureExtractor
from synd.frameloop import FrameLoop
from synd.presets import Look

WARMUP_FRAMES = 8


@torch.inference_mode()
def decoded_features(bundle: ModelBundle, raw: np.ndarray, size: tuple[int, int] = (256, 256),
                     look: Look | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Run raw features through the frame loop; returns (normalised targets, decoder reads).

    The look's smoothing and intensity are set to neutral so that the target is exactly
    the normalised feature vector the generator was given.
    """
    look = replace(look or Look(), smoothing=0.0, intensity=1.0, hue=0.0)
    width, height = size
    loop = FrameLoop(bundle, height, width, look=look, seed=seed)
    preds = [bundle.decoder.read(frame, bundle.decoder_tile).squeeze(0).numpy()
             for frame in loop.run(raw)]
    return bundle.stats.normalize(raw), np.stack(preds)


def decode_files(bundle: ModelBundle, files: list[Path], size: tuple[int, int] = (256, 256),
                 look: Look | None = None, max_seconds: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(normalised targets, decoder reads) of all frames of `files` after the warm-up."""
    extractor = FeatureExtractor(bundle.features)
    targets, preds = [], []
    for f in files:
        samples = load_audio(f, bundle.features.sample_rate, duration=max_seconds)
        t, p = decoded_features(bundle, extractor.offline(samples), size, look)
        targets.append(t[WARMUP_FRAMES:])
        preds.append(p[WARMUP_FRAMES:])
    return np.concatenate(targets), np.concatenate(preds)

