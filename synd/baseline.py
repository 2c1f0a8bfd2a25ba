"""The baseline for `synd bench`: the 2018 SyNEThesia generator, rebuilt from its description.

This module exists for benchmarking only. It re-implements, in PyTorch and at the same
sizes, the design described in the README of the 2018 SyNEThesia project (summarised in
the project's prior-art notes), so that `synd bench` can report our generator's
frames/s as a multiple of the baseline's, and both models' sound-recovery R^2 on the same
audio. Nothing here is used by rendering or live playback.

Features (`BaselineFeatures`), 41 numbers per video frame at 24 frames/s:

* 40 log mel filterbank energies (HTK mel, 0 Hz to Nyquist, n_fft 8192), computed by
  `synd.features` with the project's framing (a periodic-Hann window of n_fft samples
  centred on each frame's time), turned into 40 cepstra by an orthonormal DCT-II and
  liftered with L = 22 (``1 + L/2 sin(pi n / L)``);
* the log energy of the (unweighted) window, as `synd.features`' loudness in dB;
* every column z-scored over the song (per-song mean and standard deviation).

Audio is read at 24000 Hz (the project's rate; the description names none).

Generator (`BaselineGenerator`), 256 rows x 128 columns: the base image (3 channels)
concatenated with the 41 features tiled to every pixel (44 channels); 7x7 conv to 16
channels; four 3x3 stride-2 convs doubling the channels 16 -> 32 -> 64 -> 128 -> 256;
three residual blocks (two 3x3 convs each, identity shortcut); four 3x3 stride-2
transposed convs halving them back to 16; 7x7 conv to RGB; sigmoid. No skip connections.
Where the description is silent we chose: 3x3 kernels for the strided and transposed
convs (the only kernel size that gives the stated ~4.4 M parameters: 4x4 gives 5.0 M);
ReLU before every conv but the first (pre-activation, so a residual block is
``x + conv(relu(conv(relu(x))))``); no normalisation layers. The input is spatially constant
(a solid colour and tiled features), so instance normalisation would erase it, and batch
normalisation would make a frame depend on the rest of its batch; the plain network does
train with Adam at 1e-4, if slowly. Measured: 4,361,427 generator parameters; at 256x128 2.41 G
multiply-accumulates a frame when a transposed conv is counted per *output* pixel (the
convention of the common layer-wise counters, and the one that gives the stated ~2.4 G),
1.96 G when counted per input pixel, which is what the arithmetic really costs
(``torch.utils.flop_counter`` agrees: 3.93 GFLOP). Any size whose sides are >= 16 works:
each transposed conv is told the size of the matching encoder level.

Sound decoder (`BaselineDecoder`): a random crop of 90% of each side of the image; 7x7
conv to 16 channels; three residual blocks at full resolution and 16 channels; 3x3 conv to
41 channels; global mean. 22,233 parameters.

Losses: sound reconstruction MSE (weight 1) and image reconstruction
``relu(MSE(image, base) - 0.2)`` (weight 0.5); the description's other terms default to 0.
Training: Adam, learning rate 1e-4 decaying by 0.95 every 10,000 steps; base images random
solid colours; frames drawn uniformly from all training songs (the 2018 design loaded three
songs at a time). Inference: a fresh random base image for every frame, so frames are
independent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
import torch
from torch import nn
from torch.nn import functional as F

from synd.audio import load_audio
from synd.checkpoint import read_checkpoint, save_checkpoint
from synd.evaluate import WARMUP_FRAMES
from synd.features import FeatureConfig, FeatureExtractor
from synd.quality import r2_score
from synd.train import find_audio

__all__ = [
    "BaselineFeatures",
    "BaselineGenerator",
    "BaselineDecoder",
    "random_bases",
    "train_baseline",
    "load_baseline",
    "save_baseline",
    "read_back",
    "sound_r2",
    "main",
    "NATIVE_SIZE",
    "FEATURE_DIM",
    "SAMPLE_RATE",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
FPS = 24.0
N_FFT = 8192
BANDS = 40
LIFTER = 22
FEATURE_DIM = BANDS + 1
NATIVE_SIZE = (256, 128)  # (rows, columns)
CROP = 0.9  # the decoder sees a random crop of this share of each side
WIDTH = 16  # channels after the first conv; also the decoder's width
LEVELS = 4  # stride-2 convs down, transposed convs up
RES_BLOCKS = 3
LR = 1e-4
LR_DECAY = 0.95  # per LR_DECAY_STEPS, continuously
LR_DECAY_STEPS = 10_000
W_SOUND = 1.0
W_IMAGE = 0.5
IMAGE_HINGE = 0.2
ARCHITECTURE = "synethesia-2018-baseline"


# ----------------------------------------------------------------------------- features


class BaselineFeatures:
    """The 41 features a frame of the baseline is painted from (see the module docstring).

    ``features(samples)`` returns (n_frames, 41) float32, z-scored over `samples` (one
    song); `raw` returns them before the z-score. ``n_frames = ceil(len * fps / rate)``.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, fps: float = FPS) -> None:
        self.sample_rate = int(sample_rate)
        self.fps = float(fps)
        # The project's log-mel and loudness give the filterbank and the log energy.
        self.config = FeatureConfig(
            kind="mel",
            sample_rate=self.sample_rate,
            fps=self.fps,
            n_fft=N_FFT,
            bands=BANDS,
            fmin=0.0,
            fmax=self.sample_rate / 2,
            loudness=True,
            onset=False,
        )
        self._extractor = FeatureExtractor(self.config)
        n = np.arange(BANDS)
        self._lifter = 1.0 + (LIFTER / 2.0) * np.sin(np.pi * n / LIFTER)

    @property
    def dim(self) -> int:
        """Values per frame: 41."""
        return FEATURE_DIM

    def n_frames(self, n_samples: int) -> int:
        """Frames for a signal of `n_samples` samples."""
        return self.config.n_frames(n_samples)

    def raw(self, samples: np.ndarray) -> np.ndarray:
        """Liftered cepstra and log energy, not normalised: (n_frames, 41) float64."""
        logmel_energy = self._extractor.offline(samples).astype(np.float64)
        cepstra = scipy.fft.dct(logmel_energy[:, :BANDS], type=2, norm="ortho", axis=1)
        # The per-song z-score cancels the lifter's scale (it only flips the sign of the
        # high cepstra); it is kept so that the raw values are the described ones.
        return np.concatenate([cepstra * self._lifter, logmel_energy[:, BANDS:]], axis=1)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Z-scored features of one song: (n_frames, 41) float32."""
        raw = self.raw(samples)
        if len(raw) == 0:
            return raw.astype(np.float32)
        std = raw.std(axis=0)
        # A column that does not vary (digital silence) becomes 0, not a division by 0.
        z = (raw - raw.mean(axis=0)) / np.where(std > 1e-8, std, np.inf)
        return z.astype(np.float32)


# ------------------------------------------------------------------------------- models


class _Residual(nn.Module):
    """``x + conv3x3(relu(conv3x3(relu(x))))`` at constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class BaselineGenerator(nn.Module):
    """Base image + tiled features -> RGB in [0, 1]; the layers are in the module docstring."""

    def __init__(self, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.stem = nn.Conv2d(3 + feature_dim, WIDTH, 7, padding=3)
        widths = [WIDTH * 2**i for i in range(LEVELS + 1)]  # 16, 32, 64, 128, 256
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths[:-1], widths[1:])
        )
        self.res = nn.Sequential(*(_Residual(widths[-1]) for _ in range(RES_BLOCKS)))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(b, a, 3, stride=2, padding=1) for a, b in zip(widths[-2::-1], widths[:0:-1])
        )
        self.head = nn.Conv2d(WIDTH, 3, 7, padding=3)

    def forward(self, base: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """`base` (N, 3, H, W) in [0, 1] and `features` (N, 41) -> (N, 3, H, W) in [0, 1]."""
        n, _, h, w = base.shape
        tiled = features.to(base.dtype)[:, :, None, None].expand(n, self.feature_dim, h, w)
        x = self.stem(torch.cat([base, tiled], dim=1))
        sizes = []
        for conv in self.down:
            sizes.append(x.shape[-2:])
            x = conv(F.relu(x))
        x = self.res(x)
        for conv, size in zip(self.up, reversed(sizes)):
            # output_size picks the output padding, so any size comes back exactly.
            x = conv(F.relu(x), output_size=list(size))
        return torch.sigmoid(self.head(F.relu(x)))

    def paint(
        self,
        features: torch.Tensor,
        height: int = NATIVE_SIZE[0],
        width: int = NATIVE_SIZE[1],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Frames for feature rows (N, 41), each on a fresh random solid-colour base image.

        `generator` (a torch.Generator) makes the colours reproducible. Returns
        (N, 3, height, width) in [0, 1].
        """
        p = next(self.parameters())
        features = torch.as_tensor(features, dtype=p.dtype, device=p.device)
        base = random_bases(len(features), height, width, generator).to(p.device, p.dtype)
        return self(base, features)


def random_bases(n: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` solid-colour images (n, 3, height, width), colours uniform in [0, 1]^3."""
    colours = torch.rand(n, 3, 1, 1, generator=generator)
    return colours.expand(n, 3, height, width).contiguous()


class BaselineDecoder(nn.Module):
    """Image -> the 41 features it was painted from (see the module docstring).

    In training mode it reads a random crop of `CROP` of each side; in eval mode the
    centre crop of that size, so evaluation sees what training saw, without the chance.
    """

    def __init__(self, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, WIDTH, 7, padding=3)
        self.res = nn.Sequential(*(_Residual(WIDTH) for _ in range(RES_BLOCKS)))
        self.head = nn.Conv2d(WIDTH, feature_dim, 3, padding=1)

    def forward(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 41); `generator` draws the training crop."""
        h, w = image.shape[-2:]
        ch, cw = max(1, int(h * CROP)), max(1, int(w * CROP))
        if self.training:
            # One crop position per image, as a random crop of each image would be.
            tops = torch.randint(0, h - ch + 1, (len(image),), generator=generator)
            lefts = torch.randint(0, w - cw + 1, (len(image),), generator=generator)
            image = torch.stack(
                [im[:, t : t + ch, x : x + cw] for im, t, x in zip(image, tops.tolist(), lefts.tolist())]
            )
        else:
            top, left = (h - ch) // 2, (w - cw) // 2
            image = image[..., top : top + ch, left : left + cw]
        return self.head(self.res(self.stem(image))).mean(dim=(2, 3))


# ----------------------------------------------------------------------------- training


@dataclass
class _Songs:
    """Z-scored features of the training songs, one array of frames."""

    frames: torch.Tensor  # (total frames, 41)
    names: list[str]
    held_out: list[str]


def _load_songs(files: list[Path], holdout_every: int, features: BaselineFeatures) -> _Songs:
    train, names, held = [], [], []
    for i, f in enumerate(files):
        # The project's split: every `holdout_every`-th file, if that leaves something.
        if holdout_every and len(files) >= 2 and i % holdout_every == holdout_every - 1:
            held.append(f.name)
            continue
        z = features(load_audio(f, features.sample_rate))
        if len(z):
            train.append(torch.from_numpy(z))
            names.append(f.name)
    if not train:
        raise ValueError("no audio left to train on")
    return _Songs(torch.cat(train), names, held)


def _losses(
    generator: BaselineGenerator,
    decoder: BaselineDecoder,
    feats: torch.Tensor,
    height: int,
    width: int,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sound MSE, hinged image MSE) of one batch of feature rows."""
    base = random_bases(len(feats), height, width, g)
    image = generator(base, feats)
    sound = F.mse_loss(decoder(image, g), feats)
    picture = F.relu(F.mse_loss(image, base) - IMAGE_HINGE)
    return sound, picture


def save_baseline(
    path: str | Path, generator: BaselineGenerator, decoder: BaselineDecoder, meta: dict
) -> None:
    """Write both models as a float16 safetensors checkpoint that `load_baseline` reads.

    `meta` (JSON-able) is stored with the architecture name, which it must not override.
    """
    meta = {**meta, "architecture": ARCHITECTURE}
    # float16 halves the file; the weights are small numbers, well inside its range.
    tensors = {f"generator.{k}": v.half() for k, v in generator.state_dict().items()}
    tensors |= {f"decoder.{k}": v.half() for k, v in decoder.state_dict().items()}
    save_checkpoint(path, tensors, meta)


def train_baseline(
    audio_files: list[str | Path],
    out: str | Path,
    minutes: float | None = None,
    steps: int | None = None,
    size: tuple[int, int] = NATIVE_SIZE,
    batch: int = 8,
    seed: int = 0,
    holdout_every: int = 10,
    log_every: int = 25,
    save_every: int = 250,
    lr: float = LR,
) -> dict:
    """Train a baseline generator and decoder jointly; write them to `out`; return a summary.

    `audio_files` are files or folders (searched like `synd train` does). Every
    `holdout_every`-th file is left out (0: none). Training stops after `steps`
    optimizer steps or `minutes` of training (feature extraction not counted),
    whichever comes first; at least one must be given. `size` is (rows, columns).
    The description's batch is 32; the default 8 gives four times as many steps in the
    same CPU time. `lr` is the description's 1e-4 unless a quick test wants faster steps.
    The checkpoint (float16 safetensors) is also written every `save_every` steps.
    """
    if steps is None and minutes is None:
        raise ValueError("give steps or minutes")
    out = Path(out)
    height, width = size
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    features = BaselineFeatures()
    songs = _load_songs(find_audio([Path(a) for a in audio_files]), holdout_every, features)
    log.info(
        "baseline: %d frames from %d songs (%d held out), %dx%d, batch %d",
        len(songs.frames),
        len(songs.names),
        len(songs.held_out),
        height,
        width,
        batch,
    )
    generator, decoder = BaselineGenerator(), BaselineDecoder()
    params = list(generator.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    history: list[dict] = []
    run_sound = run_image = None
    start = time.monotonic()
    step = 0

    def meta() -> dict:
        return {
            "architecture": ARCHITECTURE,
            "native_size": [height, width],
            "features": {
                "sample_rate": features.sample_rate,
                "fps": features.fps,
                "n_fft": N_FFT,
                "bands": BANDS,
                "lifter": LIFTER,
                "dim": FEATURE_DIM,
            },
            "training": {
                "steps": step,
                "batch": batch,
                "seed": seed,
                "lr": lr,
                "seconds": round(time.monotonic() - start, 1),
                "threads": torch.get_num_threads(),
                "songs": songs.names,
                "held_out": songs.held_out,
                "frames": len(songs.frames),
                "loss_sound": run_sound,
                "loss_image": run_image,
                "history": history,
            },
        }

    while True:
        elapsed = time.monotonic() - start
        if (steps is not None and step >= steps) or (minutes is not None and elapsed >= minutes * 60):
            break
        for group in opt.param_groups:
            group["lr"] = lr * LR_DECAY ** (step / LR_DECAY_STEPS)
        idx = torch.randint(0, len(songs.frames), (batch,), generator=g)
        sound, image = _losses(generator, decoder, songs.frames[idx], height, width, g)
        opt.zero_grad(set_to_none=True)
        (W_SOUND * sound + W_IMAGE * image).backward()
        opt.step()
        step += 1
        # Running means (over about 20 steps) are what the log and the summary report.
        s, i = sound.item(), image.item()
        run_sound = s if run_sound is None else 0.95 * run_sound + 0.05 * s
        run_image = i if run_image is None else 0.95 * run_image + 0.05 * i
        if step % log_every == 0 or step == 1:
            entry = {
                "step": step,
                "seconds": round(time.monotonic() - start, 1),
                "loss_sound": round(run_sound, 5),
                "loss_image": round(run_image, 5),
            }
            history.append(entry)
            log.info(
                "baseline step %d, %.0f s: sound %.4f, image %.4f",
                step,
                entry["seconds"],
                run_sound,
                run_image,
            )
        if save_every and step % save_every == 0:
            save_baseline(out, generator, decoder, meta())
    save_baseline(out, generator, decoder, meta())
    summary = meta()["training"]
    log.info("baseline: %d steps in %.0f s, written to %s", step, summary["seconds"], out)
    return summary


def load_baseline(path: str | Path) -> tuple[BaselineGenerator, BaselineDecoder, dict]:
    """Read a checkpoint of `save_baseline`: (generator, decoder, meta), float32, eval mode.

    Raises `synd.checkpoint.CheckpointError` for a file that is not a synd checkpoint
    (pickles are refused unread) and ValueError for a synd checkpoint of another model.
    """
    tensors, meta = read_checkpoint(path)
    if meta.get("architecture") != ARCHITECTURE:
        raise ValueError(f"'{path}' is not a baseline model (architecture {meta.get('architecture')!r})")
    generator, decoder = BaselineGenerator(), BaselineDecoder()
    for prefix, model in (("generator.", generator), ("decoder.", decoder)):
        state = {k[len(prefix) :]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        model.load_state_dict(state)
        model.eval()
    return generator, decoder, meta


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def read_back(
    generator: BaselineGenerator,
    decoder: BaselineDecoder,
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    size: tuple[int, int] = NATIVE_SIZE,
    seed: int = 0,
    batch: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """(z-scored features, decoder's reading of the 8-bit frames), first WARMUP_FRAMES left out.

    Every frame of mono `audio` is painted on its own random base image (seeded by
    `seed`), rounded to 8 bits as a video would be, and read by the decoder in eval mode
    (the centre 90% crop). Both arrays are (n_frames - WARMUP_FRAMES, 41).
    """
    feats = BaselineFeatures(sample_rate=sample_rate)(np.asarray(audio, np.float32))
    g = torch.Generator().manual_seed(seed)
    was = generator.training, decoder.training
    generator.eval(), decoder.eval()
    decoded = []
    try:
        for lo in range(0, len(feats), batch):
            frames = generator.paint(torch.from_numpy(feats[lo : lo + batch]), *size, generator=g)
            frames = torch.round(frames.clamp(0, 1) * 255.0) / 255.0
            decoded.append(decoder(frames).float().numpy())
    finally:
        generator.train(was[0]), decoder.train(was[1])
    decoded_all = np.concatenate(decoded) if decoded else np.zeros((0, FEATURE_DIM), np.float32)
    return feats[WARMUP_FRAMES:], decoded_all[WARMUP_FRAMES:]


def sound_r2(
    generator: BaselineGenerator,
    decoder: BaselineDecoder,
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    size: tuple[int, int] = NATIVE_SIZE,
    seed: int = 0,
) -> float:
    """R^2 (`synd.quality.r2_score`) of the features read back from 8-bit frames of `audio`.

    See `read_back` for how the frames are made and read.
    """
    target, predicted = read_back(generator, decoder, audio, sample_rate, size, seed)
    return r2_score(target, predicted)


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m synd.baseline train DATA --out PATH --minutes M``, or ``r2 MODEL AUDIO...``."""
    parser = argparse.ArgumentParser(prog="python -m synd.baseline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the baseline on audio files or folders")
    t.add_argument("data", nargs="+", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--minutes", type=float)
    t.add_argument("--steps", type=int)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--size", type=int, nargs=2, default=list(NATIVE_SIZE), metavar=("ROWS", "COLS"))
    t.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("r2", help="sound-recovery R^2 of a trained baseline on audio")
    r.add_argument("model", type=Path)
    r.add_argument("audio", nargs="+", type=Path)
    r.add_argument("--size", type=int, nargs=2, metavar=("ROWS", "COLS"))
    r.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.command == "train":
        if args.minutes is None and args.steps is None:
            parser.error("give --minutes or --steps")
        summary = train_baseline(
            args.data,
            args.out,
            minutes=args.minutes,
            steps=args.steps,
            size=tuple(args.size),
            batch=args.batch,
            seed=args.seed,
        )
        summary = {k: v for k, v in summary.items() if k not in ("history", "songs")}
        print(json.dumps(summary, indent=1))
        return 0
    generator, decoder, meta = load_baseline(args.model)
    size = tuple(args.size or meta.get("native_size", NATIVE_SIZE))
    targets, preds, tracks = [], [], {}
    for f in find_audio(args.audio):
        target, predicted = read_back(
            generator, decoder, load_audio(f, SAMPLE_RATE), SAMPLE_RATE, size, args.seed
        )
        targets.append(target)
        preds.append(predicted)
        tracks[f.name] = round(r2_score(target, predicted), 4)
        log.info("%s: sound R^2 %.4f", f.name, tracks[f.name])
    pooled = r2_score(np.concatenate(targets), np.concatenate(preds))
    print(json.dumps({"sound_r2": round(pooled, 4), "size": list(size), "tracks": tracks}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
