"""Animated previews and contact sheets of the shipped looks on held-out real music.

    .venv/bin/python scripts/look_previews.py [PRESET ...]     (default: every shipped preset)

For each look, renders a song of the eval set (`python -m synd.music eval`: packages no
look was trained or tuned on) as `synd render --size 640x360` paints it, flash guard on,
and writes docs/looks/PRESET.webp (an animated WebP: `SECONDS` s from the middle of the
song at 15 frames/s) and docs/looks/PRESET.png (a contact sheet of `SHEET` frames spread
over the song), which the README shows.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synd.catalog import resolve_look  # noqa: E402
from synd.files import atomic_write_bytes  # noqa: E402
from synd.flash import FlashGuard  # noqa: E402
from synd.paths import shipped_dir  # noqa: E402
from synd.render import render_frames, song_features  # noqa: E402
from synd.sheets import save_contact_sheet  # noqa: E402

SONG = ROOT / "data/music/eval/fretsonfire-songs-sectoid--feelings.flac"
OUT = ROOT / "docs/looks"
SIZE = (640, 360)
FPS = 30.0
SECONDS = 5.0
PREVIEW = (288, 162)
SHEET = 8


def frames_of(preset: str, song: Path) -> list[np.ndarray]:
    """Every frame of `song` as `synd render --size 640x360` shows it (flash guard on)."""
    bundle, look = resolve_look(preset, None)
    guard = FlashGuard(FPS)
    raw = song_features(song, bundle, FPS)
    return [guard(frame) for frame in render_frames(bundle, look, raw, SIZE)]


def write_preview(frames: list[np.ndarray], path: Path) -> None:
    """`SECONDS` s from the middle of the song, every second frame, as an animated WebP."""
    n = int(SECONDS * FPS)
    start = max(0, len(frames) // 2 - n // 2)
    small = [
        Image.fromarray(cv2.resize(f, PREVIEW, interpolation=cv2.INTER_AREA))
        for f in frames[start : start + n : 2]
    ]
    buf = io.BytesIO()
    small[0].save(
        buf, "WEBP", save_all=True, append_images=small[1:], duration=int(2000 / FPS), loop=0, quality=70
    )
    atomic_write_bytes(path, buf.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("presets", nargs="*")
    parser.add_argument("--song", type=Path, default=SONG)
    args = parser.parse_args()
    if not args.song.is_file():
        parser.error(f"{args.song} is missing: run `make music` first")
    presets = args.presets or sorted(p.stem for p in shipped_dir("presets").glob("*.toml"))
    OUT.mkdir(parents=True, exist_ok=True)
    for preset in presets:
        frames = frames_of(preset, args.song)
        write_preview(frames, OUT / f"{preset}.webp")
        at = np.linspace(0.05 * len(frames), len(frames) - 1, SHEET).astype(int)
        sheet = [cv2.resize(frames[i], (192, 108), interpolation=cv2.INTER_AREA) for i in at]
        labels = [f"{i / FPS:.0f} s" for i in at]
        title = f"{preset}: {args.song.stem} (held-out)"
        save_contact_sheet(sheet, OUT / f"{preset}.png", columns=SHEET, title=title, labels=labels)
        print(f"{preset}: {OUT / preset}.webp, .png", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
