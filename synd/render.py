"""`synd render`: a song in, a music video out, through the shared frame loop."""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
from PIL import Image

from synd.audio import load_audio
from synd.bundle import ModelBundle, load_model
from synd.config import load_config
from synd.features import FeatureExtractor
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.presets import Look, load_preset
from synd.video import VideoWriter

log = logging.getLogger(__name__)

GENERATION_SHORT_SIDE = 256
MUX_RATE = 48000


def resolve_look(preset: str | None, model: str | None) -> tuple[ModelBundle, Look]:
    """The model and look to use: a preset (its model), or a model (its training preset's look)."""
    if model:
        bundle = load_model(model)
        return bundle, model_look(bundle)
    p = load_preset(preset or load_config().preset)
    return load_model(p.model), p.look


def model_look(bundle: ModelBundle) -> Look:
    """The look of the preset a model was trained with (defaults where it has none)."""
    preset = bundle.meta.get("preset")
    saved = preset.get("look") if isinstance(preset, dict) else None
    known = {f.name for f in fields(Look)}
    try:
        return Look(**{k: v for k, v in (saved or {}).items() if k in known})
    except (TypeError, ValueError):
        return Look()


def default_output(song: Path) -> Path:
    """SONG.mp4 beside the song; SONG.synd.mp4 when the song itself is an .mp4."""
    out = song.with_suffix(".mp4")
    return out.with_name(song.stem + ".synd.mp4") if out.resolve() == song.resolve() else out


def generation_size(width: int, height: int, short: int = GENERATION_SHORT_SIDE) -> tuple[int, int]:
    """Generator frame size (w, h) with the output's aspect ratio and `short` as short side.

    The generator runs at about its native scale and the frames are upscaled: running a
    float network at 720p/1080p would cost 10-20x more for little visible gain.
    """
    short = min(short, width, height)
    if width >= height:
        return max(8, round(short * width / height / 8) * 8), short
    return short, max(8, round(short * height / width / 8) * 8)


def render_song(song: Path, out: Path, bundle: ModelBundle, look: Look,
                size: tuple[int, int] = (1280, 720), fps: float = 30.0, seed: int = 0,
                progress: bool = True) -> Path:
    """Render `song` to the video `out` (written atomically); returns the final path."""
    from tqdm import tqdm

    features_cfg = replace(bundle.features, fps=fps)
    samples = load_audio(song, features_cfg.sample_rate)
    features = FeatureExtractor(features_cfg).offline(samples)
    audio = load_audio(song, MUX_RATE)
    width, height = size
    gw, gh = generation_size(width, height)
    loop = FrameLoop(bundle, gh, gw, look=look, seed=seed,
                     device=next(bundle.generator.parameters()).device)
    log.info("rendering %s: %d frames at %dx%d (generated at %dx%d), %.1f s of audio",
             song.name, len(features), width, height, gw, gh, len(samples) / features_cfg.sample_rate)
    with VideoWriter(out, width, height, fps, audio=audio, audio_rate=MUX_RATE) as writer:
        for frame in tqdm(loop.run(features), total=len(features), unit="frame",
                          desc=f"render {song.name}", disable=not progress, dynamic_ncols=True):
            rgb = to_rgb_uint8(frame)
            if (gw, gh) != (width, height):
                rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))
            writer.write(rgb)
        return writer.close()
