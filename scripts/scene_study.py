"""Judge hand-made pictures that are exact functions of the sound (no network).

Each of 12 broad colour blobs (`synd.model.scene_basis`) takes a CIELAB colour that is a
fixed random mix of the first principal components of the smoothed `log` features,
times a gain; the frames are scored by `synd.judge`. It measures what the judge's
targets ask of any look: how far a picture may swing before the judge's linear read-out
(`sound_frac`) stops explaining it. Principal components come from the training
music; scores from the tune set (every 10th training file, as `synd train` holds out).

    python scripts/scene_study.py --gain 0.5 --gain 3 --agc 0 --agc 15
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import lfilter

from synd.audio import load_audio
from synd.features import FeatureConfig, FeatureExtractor
from synd.judge import JUDGE_RATE, Judge
from synd.model import make_coords, scene_basis

KEYS = (
    "motion_de",
    "swing_de",
    "variety_de",
    "spread_de",
    "beat_sync",
    "energy_sync",
    "sound_de",
    "sound_frac",
)
FPS = 30.0


def ema(x: np.ndarray, seconds: float) -> np.ndarray:
    d = np.exp(-1.0 / (FPS * seconds))
    return lfilter([1 - d], [1, -d], x, axis=0, zi=d * x[:1])[0]


def gain_control(p: np.ndarray, seconds: float) -> np.ndarray:
    """Running mean and variance over `seconds`: each component scaled to unit spread."""
    d, m, v = np.exp(-1.0 / (FPS * seconds)), p[0].copy(), np.full(p.shape[1], 0.3)
    out = np.empty_like(p)
    for i, r in enumerate(p):
        m = d * m + (1 - d) * r
        v = d * v + (1 - d) * (r - m) ** 2
        out[i] = (r - m) / np.sqrt(v + 0.02)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--music", type=Path, default=Path("data/music/train"))
    ap.add_argument("--gain", type=float, action="append")
    ap.add_argument("--agc", type=float, action="append", help="gain control seconds (0: none)")
    ap.add_argument("--components", type=int, default=3)
    ap.add_argument("--chroma", type=float, default=28.0, help="a*, b* swing per unit drive")
    args = ap.parse_args()
    files = sorted(args.music.glob("*.flac"))
    tune = [f for i, f in enumerate(files) if i % 10 == 9][:5]
    fit = [f for i, f in enumerate(files) if i % 10 != 9][::4]
    cfg = FeatureConfig(kind="log", bands=12)
    extract = FeatureExtractor(cfg).offline
    x = np.concatenate([ema(extract(load_audio(f, cfg.sample_rate)), 0.3) for f in fit])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    _, s, vt = np.linalg.svd((x - mu) / sd, full_matrices=False)
    k = args.components
    comp = vt[:k] / (s[:k, None] / np.sqrt(len(x)))  # whitened over the training music
    basis = scene_basis(make_coords(72, 128, 256)).numpy()[0]
    mix = np.random.default_rng(0).normal(size=(k, len(basis), 3))
    mix /= np.sqrt((mix**2).sum(0, keepdims=True))
    songs = [(f, ema(extract(load_audio(f, cfg.sample_rate)), 0.3), load_audio(f, JUDGE_RATE)) for f in tune]
    for gain, agc in itertools.product(args.gain or [0.5], args.agc or [0.0]):
        scores = []
        for _path, feats, sound in songs:
            p = ((feats - mu) / sd) @ comp.T
            if agc:
                p = gain_control(p, agc)
            c = np.clip(gain * np.einsum("tp,pkc->tkc", p, mix), -2.2, 2.2)
            lab = np.stack(
                [52 + 0.6 * args.chroma * c[..., 0], args.chroma * c[..., 1], args.chroma * c[..., 2]], -1
            ).astype(np.float32)
            rgb = cv2.cvtColor(lab.reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(len(c), -1, 3)
            judge = Judge(FPS, len(rgb))
            for colours in rgb:
                frame = np.einsum("kc,khw->hwc", colours, basis)
                judge.add((frame.clip(0, 1) * 255 + 0.5).astype(np.uint8))
            scores.append(judge.score(sound).numbers)
        line = "  ".join(f"{k} {np.mean([s[k] for s in scores]):.2f}" for k in KEYS)
        print(f"gain {gain:g} agc {agc:g}s: {line}", flush=True)


if __name__ == "__main__":
    main()
