"""How much of a look the judge's read-out sees when a sound layer is laid over it.

A colour layer that is an exact linear function of the judge's own audio columns (its
0.3 s log-band averages minus their 2 s averages, in three band thirds; `synd.judge`'s
`judge_features`) is laid, in CIELAB chroma, over a look's own frames, whose contrast
is turned down towards the clip's mean colour. The frames pass the flash guard and are
scored by `synd.judge`. It measures how much of each pixel's change the present sound
must own before `sound_frac` and `sound_de` reach their targets, and what that leaves of
the look's own picture. Frames come from the tune set (every 10th training file, as
`synd train` holds out), rendered at 640x360 and judged at 128x72.

    python scripts/readout_study.py --preset lava --contrast 1 --contrast 0.35 --gain 50
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

from synd.audio import load_audio
from synd.catalog import resolve_look
from synd.flash import FlashGuard
from synd.frameloop import to_rgb_uint8
from synd.judge import JUDGE_RATE, Judge, judge_features
from synd.render import render_loop, song_features

KEYS = (
    "motion_de",
    "swing_de",
    "variety_de",
    "spread_de",
    "tiling",
    "beat_sync",
    "energy_sync",
    "sound_de",
    "sound_frac",
    "flashes_max",
)
FPS = 30.0
SIZE = (128, 72)
# Hue angles (radians in the a*b* plane) of the three drives: low, middle and high bands.
HUES = (0.5, 2.6, 4.7)


def look_frames(preset: str, song: Path) -> np.ndarray:
    """The look's guarded frames of `song`, painted as a 640x360 render, at `SIZE`."""
    bundle, look = resolve_look(preset, None)
    loop = render_loop(bundle, look, (640, 360))
    guard = FlashGuard(FPS)
    rows = song_features(song, bundle, FPS)
    shown = (guard(to_rgb_uint8(loop.step(r))) for r in rows)
    return np.stack([cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in shown])


def drives(feats: np.ndarray) -> np.ndarray:
    """(n, 3): the judge's 0.3 s log-band averages minus their 2 s averages, per band third."""
    fast, slow = feats[:, 14:26], feats[:, 28:40]
    high_passed = fast - slow
    return np.stack([high_passed[:, i : i + 4].mean(1) for i in (0, 4, 8)], 1)


def patterns() -> np.ndarray:
    """(3, h, w): smooth spatial weights of the drives (everywhere lit, each its own way)."""
    w, h = SIZE
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x = (x + 0.5) / w * 2 - 1
    y = (y + 0.5) / h * 2 - 1
    r = np.sqrt(x**2 + (y * 9 / 16) ** 2)
    return 0.7 * np.stack([1 + x, 1 - y, 2 - 2 * r])


def layered(base: np.ndarray, d: np.ndarray, contrast: float, gain: float, light: float = 0.0) -> np.ndarray:
    """`base` frames with their contrast scaled about the clip's mean and the layer added
    (its lightness `light` times its chroma)."""
    n = len(base)
    rgb = base.astype(np.float32) / 255
    mean = rgb.mean(axis=(0, 1, 2), keepdims=True)
    rgb = mean + contrast * (rgb - mean)
    lab = cv2.cvtColor(rgb.reshape(-1, SIZE[0], 3), cv2.COLOR_RGB2Lab).reshape(n, SIZE[1], SIZE[0], 3)
    for j, (pattern, hue) in enumerate(zip(patterns(), HUES)):
        amount = gain * d[:, j, None, None] * pattern[None]
        lab[..., 1] += amount * np.cos(hue)
        lab[..., 2] += amount * np.sin(hue)
        lab[..., 0] += light * amount
    out = cv2.cvtColor(lab.reshape(-1, SIZE[0], 3), cv2.COLOR_Lab2RGB).reshape(n, SIZE[1], SIZE[0], 3)
    return (out.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="lava")
    ap.add_argument("--music", type=Path, default=Path("data/music/train"))
    ap.add_argument("--files", type=int, default=5, help="tune files to judge")
    ap.add_argument("--contrast", type=float, action="append", help="the look's share (1: as it is, 0: grey)")
    ap.add_argument("--gain", type=float, action="append", help="CIELAB chroma per unit drive")
    ap.add_argument("--light", type=float, action="append", help="the layer's lightness per unit chroma")
    args = ap.parse_args()
    files = sorted(args.music.glob("*.flac"))
    tune = [f for i, f in enumerate(files) if i % 10 == 9][: args.files]
    songs = []
    for f in tune:
        sound = load_audio(f, JUDGE_RATE)
        feats, _ = judge_features(sound, FPS)
        base = look_frames(args.preset, f)
        n = min(len(base), len(feats))
        songs.append((base[:n], drives(feats[:n]), sound))
    print("| contrast | gain | light | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 3) + "|")
    grid = itertools.product(args.contrast or [1.0], args.gain or [50.0], args.light or [0.0])
    for contrast, gain, light in grid:
        scores = []
        for base, d, sound in songs:
            judge = Judge(FPS, len(base))
            guard = FlashGuard(FPS)
            for frame in layered(base, d, contrast, gain, light):
                judge.add(guard(frame))
            scores.append(judge.score(sound).numbers)
        cells = [
            max(s[k] for s in scores) if k == "flashes_max" else float(np.mean([s[k] for s in scores]))
            for k in KEYS
        ]
        row = [f"{v:g}" for v in (contrast, gain, light)] + [f"{c:.2f}" for c in cells]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
