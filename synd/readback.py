"""`synd train --decoder-only`: teach a model's decoder to read whole frames as looks show them.

`synd train` teaches the decoder on square crops of pictures painted at the model's
native scale, with random feedback. `synd eval`, the model card and a performer's
`synd listen` read whole 16:9 frames instead: painted at the render's generation size
(384x216), through a look's flow, feedback and smoothing, and read in tiles whose
readings are averaged (`SoundDecoder.read`). That costs read-back: `lava`'s decoder,
taught on crops, read its own look's frames of held-out training-package songs at R^2
0.81, while its training measured 0.95 on held-out crops; taught here, 0.87.

Here the generator is kept exactly as it is (so every picture stays bit for bit the
same) and the decoder alone is fine-tuned on such frames: a window of every audio file
is painted through one of the given looks (files take the looks in turn), every
`every`-th painted frame is kept with the normalised features it was painted from, and
the decoder learns to read those features back from the whole frame, the way it is read
everywhere else. Held-out files (every 10th, as `synd train` holds them out) are
painted the same way and measure R^2 before, during and after; the best decoder wins,
and the model is only written if it reads the held-out frames better than before.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from synd.bundle import ModelBundle
from synd.model import SoundDecoder
from synd.presets import Look, Preset
from synd.progress import Progress
from synd.quality import r2_score
from synd.train import TrainError, _check_writable, find_audio, prepare_corpus

log = logging.getLogger(__name__)

#: The output size whose generation size the frames are painted at (`synd.sizes`):
#: 640x360 and 1280x720 renders and the live default all paint at 384x216.
PAINT_SIZE = (640, 360)
#: Frames painted before a window's first kept frame, so the feedback has settled.
SETTLE_FRAMES = 90


@dataclass
class ReadbackOptions:
    """What `synd train --decoder-only` was asked to do."""

    inputs: list[Path]
    bundle: ModelBundle
    looks: list[Preset]  # presets whose looks paint the frames (their model is `bundle`)
    out: Path
    minutes: float | None = None
    steps: int | None = None
    seconds: float = 30.0  # window painted of each file
    every: int = 3  # keep every n-th painted frame
    max_frames: int = 12_000  # training frames in memory (about 250 KB each at 384x216)
    holdout: float = 0.1
    lr: float = 3e-4
    batch: int = 16
    eval_every: int = 200
    seed: int = 0
    progress: bool = True


@dataclass
class Painted:
    """Frames painted through a look, with the features they were painted from."""

    frames: np.ndarray  # (n, h, w, 3) uint8, the generator's picture
    given: np.ndarray  # (n, F) float32, normalised features after the look's smoothing
    look: str


def paint_window(
    bundle: ModelBundle, look: Look, raw: np.ndarray, frames: int, every: int, name: str = ""
) -> Painted:
    """Paint the middle of a song's raw features (n, F) through `look` at `PAINT_SIZE`'s
    generation size: `frames` frames kept, one every `every` painted frames."""
    from synd.frameloop import to_rgb_uint8
    from synd.render import render_loop

    span = min(len(raw), frames * every)
    start = (len(raw) - span) // 2
    loop = render_loop(bundle, look, PAINT_SIZE, fps=bundle.features.fps)
    kept, given = [], []
    for i in range(max(0, start - SETTLE_FRAMES), start + span):
        painted = loop.paint_next(raw[i])  # the shown frame's effects are not read: skipped
        if i >= start and (i - start) % every == 0:
            kept.append(to_rgb_uint8(painted))  # the painted picture, as synd eval reads it
            given.append(loop.condition_numpy())
    return Painted(np.stack(kept), np.stack(given).astype(np.float32), name)


def _as_input(frames: np.ndarray) -> torch.Tensor:
    """uint8 (n, h, w, 3) frames as the decoder's (n, 3, h, w) input in [0, 1]."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    return x.contiguous(memory_format=torch.channels_last)


def read_r2(decoder: SoundDecoder, tile: int, painted: list[Painted], batch: int = 64) -> float:
    """R^2 (variance-weighted, `synd.quality.r2_score`) of the decoder reading whole frames."""
    was_training = decoder.training
    decoder.eval()
    readings, targets = [], []
    with torch.inference_mode():
        for p in painted:
            for i in range(0, len(p.frames), batch):
                readings.append(decoder.read(_as_input(p.frames[i : i + batch]), tile).numpy())
            targets.append(p.given)
    decoder.train(was_training)
    return r2_score(np.concatenate(targets), np.concatenate(readings))


def _paint_all(
    bundle: ModelBundle, tracks: list[np.ndarray], looks: list[Preset], frames: int, every: int, bar
) -> list[Painted]:
    """Each track painted through the looks in turn."""
    out = []
    for k, raw in enumerate(tracks):
        preset = looks[k % len(looks)]
        out.append(paint_window(bundle, preset.look, raw, frames, every, preset.name))
        bar.update()
    return out


def _lr(opts: ReadbackOptions, step: int, total: float) -> float:
    """A short warm-up, then cosine decay to a tenth."""
    warm = min(1.0, (step + 1) / 50)
    progress = min(1.0, step / max(1.0, total))
    return opts.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def tune_decoder(opts: ReadbackOptions) -> dict:
    """Fine-tune `opts.bundle`'s decoder on whole frames; write the model to `opts.out`
    if it reads the held-out frames better. Returns a summary (R^2 before and after)."""
    if (opts.minutes is None) == (opts.steps is None):
        raise TrainError("give the decoder's training a budget: --minutes or --steps")
    if not opts.looks:
        raise TrainError("no looks to paint the frames with")
    bundle = opts.bundle
    _check_writable(opts.out)
    files = find_audio(opts.inputs)
    # The features as the model hears them (its own configuration, not a preset's).
    hearing = replace(opts.looks[0], features=bundle.features)
    corpus = prepare_corpus(files, hearing, opts.holdout, opts.progress)
    if not corpus.holdout:
        raise TrainError("the decoder's training needs held-out audio to measure: use --holdout > 0")
    fps = bundle.features.fps
    per_file = max(8, min(int(opts.seconds * fps / opts.every), opts.max_frames // len(corpus.train)))
    held_frames = max(8, int(opts.seconds * fps / opts.every))
    tracks = corpus.train + corpus.holdout
    with Progress(len(tracks), "paint", "file", enabled=opts.progress, leave=False) as bar:
        train = _paint_all(bundle, corpus.train, opts.looks, per_file, opts.every, bar)
        held = _paint_all(bundle, corpus.holdout, opts.looks, held_frames, opts.every, bar)
    # Batches are drawn across the files' windows in place: one copy of the frames in memory.
    ends = np.cumsum([len(p.frames) for p in train])

    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    original = bundle.decoder
    decoder = copy.deepcopy(original).float().train()
    tile = bundle.decoder_tile
    before = read_r2(decoder, tile, held)
    best, best_state = before, None
    history = [{"step": 0, "r2": round(before, 4)}]
    optimizer = torch.optim.Adam(decoder.parameters(), lr=opts.lr)
    t0 = time.monotonic()
    limit = opts.minutes * 60 if opts.minutes is not None else math.inf  # seconds
    step = 0

    def done() -> bool:
        return step >= opts.steps if opts.steps is not None else time.monotonic() - t0 >= limit

    def evaluate() -> None:
        nonlocal best, best_state
        r2 = read_r2(decoder, tile, held)
        history.append({"step": step, "r2": round(r2, 4), "seconds": round(time.monotonic() - t0, 1)})
        if r2 > best:
            best, best_state = r2, copy.deepcopy(decoder.state_dict())
        bar.postfix = f"held-out R^2 {before:.3f} -> {r2:.3f}"

    bar = Progress(
        opts.steps, "decoder", "step", enabled=opts.progress, budget=None if opts.minutes is None else limit
    )
    with bar:
        while not done():
            # the step budget of a timed run, for the learning rate's decay: estimated as it goes
            total = opts.steps or max(step + 1, step * limit / max(1e-6, time.monotonic() - t0))
            for group in optimizer.param_groups:
                group["lr"] = _lr(opts, step, total)
            picked = rng.integers(0, int(ends[-1]), opts.batch)
            k = np.searchsorted(ends, picked, side="right")
            i = picked - np.concatenate([[0], ends])[k]
            batch = np.stack([train[a].frames[b] for a, b in zip(k, i)])
            target = torch.from_numpy(np.stack([train[a].given[b] for a, b in zip(k, i)]))
            loss = ((decoder.read(_as_input(batch), tile) - target) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update()
            if step % opts.eval_every == 0:
                evaluate()
        if history[-1]["step"] != step:
            evaluate()
    seconds = time.monotonic() - t0
    summary = {
        "looks": [p.name for p in opts.looks],
        "files": corpus.summary["files"],
        "train_frames": int(ends[-1]),
        "holdout_frames": int(sum(len(p.frames) for p in held)),
        "paint_size": list(PAINT_SIZE),
        "steps": step,
        "wall_seconds": round(seconds, 1),
        "holdout_r2_before": round(before, 4),
        "holdout_r2_after": round(best, 4),
        "history": history,
    }
    if best_state is None:
        log.warning(
            "the decoder read the held-out frames no better (R^2 %.4f at best); '%s' not written",
            before,
            opts.out,
        )
        summary["written"] = False
        return summary
    decoder.load_state_dict(best_state)
    tuned = replace(bundle, decoder=decoder.eval(), meta={**bundle.meta, "readback": summary})
    tuned.save(opts.out)
    summary["written"] = True
    return summary
