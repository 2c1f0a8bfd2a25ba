"""`synd listen`: hear a music video again, by reading the sound back from its pictures.

The decoder network reads the sound features (log-mel bands, loudness, onset) of every
frame; those are turned back into a magnitude spectrogram and a waveform is found with
Griffin-Lim. Phase is lost, so the result sounds like a rough, smeared copy of the
original, but beats, level and spectral balance come through.

Pipeline: `read_pictures` (video or image folder) -> `decode_pictures` (features per
frame) -> `features_to_audio` (waveform) -> WAV, glued together by `listen`.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from synd.audio import write_wav
from synd.bundle import ModelBundle
from synd.errors import one_line
from synd.features import FeatureConfig, linear_bands, mel_filterbank
from synd.frameloop import hue_rotation
from synd.sizes import GENERATION_SHORT_SIDE, generation_size
from synd.video import read_frames, read_video_info

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SUFFIXES",
    "ListenError",
    "Pictures",
    "bands_to_power",
    "decode_pictures",
    "default_output",
    "features_to_audio",
    "griffin_lim",
    "listen",
    "read_pictures",
]

#: Image files a folder of frames may hold (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# Frames read by the decoder in one batch: large enough to keep both cores busy,
# small enough that a batch of generation-size frames stays a few tens of MB.
_BATCH = 16
# Peak level of the written audio: -1 dBFS.
_PEAK = 10.0 ** (-1.0 / 20.0)
# Same floor as the feature extractor uses inside its logarithms.
_EPS = 1e-10
# A frame quieter than this (RMS level in dB) counts as digital silence; the extractor
# gives exactly -100 dB for an all-zero window.
_SILENT_DB = -80.0
# The loudness correction is smoothed over this many seconds: it should fix the level,
# not add frame-to-frame flicker that would read as fake onsets.
_GAIN_SMOOTH_S = 0.15


class ListenError(ValueError):
    """Pictures cannot be read back. str() is one line naming the path and the problem.

    A ValueError, so command-line code that reports ValueErrors in one line covers it.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = one_line(problem)
        super().__init__(f"cannot listen to '{self.path}': {self.problem}")


#: What `synd listen` reads, said when it is given something else.
EXPECTED = (
    "synd listen takes a video made by synd render or synd run --output record:, "
    f"or a folder of such frames ({', '.join(s[1:] for s in IMAGE_SUFFIXES)})"
)


def _not_pictures(path: str | os.PathLike, why: str) -> ListenError:
    """The error for a path that is no synd video or frame folder: why, and what is wanted."""
    return ListenError(path, f"not a synd video or frame folder ({why}); {EXPECTED}")


# ------------------------------------------------------------------------------- reading


def _natural_key(name: str) -> list:
    """Sort key that orders frame_2 before frame_10 (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _image_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _read_image(path: Path) -> np.ndarray:
    """One image file -> (H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ListenError(path, f"unreadable image ({_reason(exc)})") from exc


def _images(files: list[Path]) -> Iterator[np.ndarray]:
    for f in files:
        yield _read_image(f)


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    """`read_frames`, with decoding failures turned into ListenError."""
    try:
        yield from read_frames(path)
    except (OSError, av.FFmpegError) as exc:
        raise ListenError(path, f"video decoding failed ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)


class Pictures(Iterable):
    """Frames to read back, decoded lazily: iterate (once) for (H, W, 3) uint8 RGB arrays.

    ``count`` is the number of frames, or None when unknown.
    """

    def __init__(self, frames: Iterable[np.ndarray], count: int | None) -> None:
        self._frames = frames
        self.count = count

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._frames)


def read_pictures(
    path: str | os.PathLike, fps: float | None = None, default_fps: float = FeatureConfig.fps
) -> tuple[Pictures, float]:
    """Open a video file or a folder of images as a stream of RGB frames.

    A folder yields its png/jpg/jpeg/webp/bmp files in natural order (frame_2 before
    frame_10) at `fps` frames a second (`default_fps` if not given). A video yields its
    frames at its own rate, unless `fps` overrides it. Frames are decoded lazily.

    Returns:
        (pictures, fps): an iterable of (H, W, 3) uint8 arrays whose ``count`` is the
        number of frames (or None if unknown), and the frame rate.

    Raises:
        ListenError: missing path, folder without images, a file that is not a video
            (also raised while iterating, for an unreadable image or a broken video).
    """
    p = Path(path)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ListenError(p, f"fps must be a positive number, got {fps}")
    if not p.exists():
        raise ListenError(p, "no such file or folder")
    if p.is_dir():
        files = _image_files(p)
        if not files:
            raise _not_pictures(p, "the folder holds no images")
        return Pictures(_images(files), len(files)), float(fps or default_fps)
    if p.stat().st_size == 0:
        raise _not_pictures(p, "the file is empty")
    try:
        info = read_video_info(p)
    except (OSError, av.FFmpegError) as exc:
        raise _not_pictures(p, f"not a video: {_reason(exc)}") from exc
    except ValueError as exc:  # a media file without a video stream
        raise _not_pictures(p, "it has no video stream") from exc
    if not info.get("made_by_synd"):
        log.warning(
            "'%s' was not made by synd (it has no synd tag): reading it anyway, but pictures "
            "synd did not paint say nothing of a sound",
            p.name,
        )
    rate = fps or info.get("fps")
    if not rate:
        raise ListenError(p, "the video does not say its frame rate: give one (fps)")
    return Pictures(_video_frames(p), info.get("n_frames") or None), float(rate)


# ------------------------------------------------------------------------------ decoding


def _shrink(frame: np.ndarray, detail: int) -> np.ndarray:
    """Area-downscale a frame to the size the generator painted it at."""
    h, w = frame.shape[:2]
    gw, gh = generation_size(w, h, short=detail)
    if (gw, gh) == (w, h):
        return frame
    # BOX = area averaging: undoes the upscale without aliasing the fine texture the
    # decoder reads. Image.Resampling.BOX is its name since Pillow 9.1 (we take >= 9), and
    # Pillow sets the old names at import, out of sight of its type hints.
    box = Image.BOX  # type: ignore[attr-defined]  # set at run time; see above
    return np.asarray(Image.fromarray(frame).resize((gw, gh), box))


def _batches(frames: Iterable[np.ndarray], size: int, detail: int) -> Iterator[np.ndarray]:
    """Downscaled frames stacked into (k, h, w, 3) uint8 batches of one shape each."""
    batch: list[np.ndarray] = []
    for frame in frames:
        small = _shrink(_check_frame(frame), detail)
        if batch and (small.shape != batch[0].shape or len(batch) == size):
            yield np.stack(batch)
            batch = []
        batch.append(small)
    if batch:
        yield np.stack(batch)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {a.dtype} {a.shape}")
    return a


def _fast_bfloat16(device: torch.device) -> bool:
    """Whether this CPU computes bfloat16 natively (then it is about twice as fast)."""
    if device.type != "cpu":
        return False
    try:
        caps = torch.cpu.get_capabilities()
    except Exception:  # noqa: BLE001 - older torch, or an unknown CPU: stay with float32
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def decode_pictures(
    bundle: ModelBundle,
    frames: Iterable[np.ndarray],
    progress: bool = False,
    total: int | None = None,
    bfloat16: bool | None = None,
    detail: int = GENERATION_SHORT_SIDE,
    hue: float = 0.0,
) -> np.ndarray:
    """Raw (un-normalised) sound features read from RGB frames: (n, F) float32.

    Frames are consumed lazily, one batch at a time. Each frame is area-downscaled to
    `generation_size` of its size with short side `detail` (the scale the pictures were
    painted at, as in `synd render --detail`), turned back by `hue` (the look's hue
    turn, so the decoder sees the colours it learned), read by the decoder in
    `bundle.decoder_tile` tiles, and mapped back to feature units with `bundle.stats`.
    `bfloat16` runs the
    decoder in bfloat16 (None: where the CPU does it natively); its readings differ
    from float32 by about 1e-3 standard deviations, far below the decoder's own error.
    `progress` shows a progress bar (`total` frames, if known).
    """
    from tqdm import tqdm

    device = next(bundle.decoder.parameters()).device
    dtype = torch.bfloat16 if (_fast_bfloat16(device) if bfloat16 is None else bfloat16) else torch.float32
    # A copy (the caller's bundle stays as it was) in channels-last layout, which runs
    # the convolutions about 20% faster on CPU. Module.to converts in place and takes
    # memory_format as its documentation says; torch's typed overloads of it leave it out.
    decoder = copy.deepcopy(bundle.decoder).eval()
    decoder.to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]  # see above
    tile = bundle.decoder_tile
    mean = torch.as_tensor(bundle.stats.mean, device=device)
    std = torch.as_tensor(bundle.stats.std, device=device)
    unturn = hue_rotation(-hue).to(device) if hue else None
    out: list[np.ndarray] = []
    bar = tqdm(total=total, unit="frame", desc="listen", disable=not progress, dynamic_ncols=True)
    with bar, torch.inference_mode():
        for batch in _batches(frames, _BATCH, detail):
            x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255.0
            if unturn is not None:
                x = torch.einsum("ij,bjhw->bihw", unturn, x).clamp(0, 1)
            x = x.to(dtype)
            reading = decoder.read(x, tile).float()
            out.append((reading * std + mean).cpu().numpy())
            bar.update(len(batch))
    if not out:
        return np.zeros((0, bundle.features.dim), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- inversion


def _band_matrix(cfg: FeatureConfig) -> np.ndarray:
    """(bands, bins) weights whose product with a power spectrum gives the band values."""
    return mel_filterbank(cfg) if cfg.kind == "mel" else linear_bands(cfg)


def bands_to_power(values: np.ndarray, weights: np.ndarray, refine: int = 30) -> np.ndarray:
    """Non-negative power spectra (n, bins) whose band sums match `values` (n, bands).

    Start from each band's power spread evenly over its bins (interpolated between
    overlapping bands), then refine with multiplicative updates that keep it
    non-negative and move the band sums towards `values`. Bins outside every band stay 0.
    """
    per_bin = weights.sum(axis=1)  # filter mass, (bands,)
    cover = weights.sum(axis=0)  # how much bands weigh each bin
    inside = cover > 0
    level = values / per_bin  # mean power per bin in each band
    power = np.zeros((values.shape[0], weights.shape[1]))
    power[:, inside] = (level @ weights[:, inside]) / cover[inside]
    for _ in range(refine):
        ratio = values / np.maximum(power @ weights.T, 1e-30)
        power[:, inside] *= (ratio @ weights[:, inside]) / cover[inside]
    return power


def _resample_frames(values: np.ndarray, fps: float, rate: float) -> np.ndarray:
    """Linear interpolation of per-frame values from `fps` to `rate` frames a second."""
    n = values.shape[0]
    if n < 2 or abs(fps - rate) < 1e-9:
        return values
    t_new = np.arange(int(math.ceil(n * rate / fps))) / rate
    t_old = np.arange(n) / fps
    return np.stack([np.interp(t_new, t_old, col) for col in values.T], axis=1)


def _loudness_gain(
    power: np.ndarray, loudness_db: np.ndarray, n_fft: int, weight: float, smooth: int
) -> np.ndarray:
    """Per-frame amplitude gain pulling the spectrum's level towards the loudness column.

    `weight` is how far (0..1, in dB) to move; the correction is a moving average over
    `smooth` frames and at most 12 dB either way.
    """
    # Parseval with a Hann window: sum over the full spectrum of |X|^2 is
    # n_fft * sum(hann^2 * x^2) ~ n_fft^2 * 0.375 * mean(x^2) for a steady signal.
    full = 2.0 * power.sum(axis=1) - power[:, 0] - power[:, -1]
    implied = 10.0 * np.log10(full / (0.375 * n_fft * n_fft) + _EPS)
    diff = np.clip(loudness_db - implied, -12.0, 12.0)
    if smooth > 1:
        padded = np.pad(diff, (smooth // 2, smooth - 1 - smooth // 2), mode="edge")
        diff = np.convolve(padded, np.ones(smooth) / smooth, mode="valid")
    return 10.0 ** (weight * diff / 20.0)


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int,
    hop: int,
    length: int,
    iterations: int = 48,
    momentum: float = 0.99,
    seed: int = 0,
) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013): a signal whose STFT magnitude is close to
    `magnitude` (bins, frames), with a periodic Hann window and centred frames."""
    window = torch.hann_window(n_fft, periodic=True, dtype=magnitude.dtype)
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(magnitude.shape, generator=g, dtype=magnitude.dtype) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    stft: dict[str, Any] = dict(n_fft=n_fft, hop_length=hop, window=window, center=True)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        signal = torch.istft(magnitude * angles, length=length, **stft)
        rebuilt = torch.stft(signal, pad_mode="constant", return_complex=True, **stft)
        # Momentum extrapolates the phase update: far fewer iterations than plain GL.
        angles = rebuilt - previous * (momentum / (1.0 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return torch.istft(magnitude * angles, length=length, **stft)


def features_to_audio(
    features: np.ndarray,
    cfg: FeatureConfig,
    fps: float | None = None,
    iterations: int = 48,
    loudness_weight: float = 0.5,
    oversample: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Invert raw features (n, cfg.dim) to float32 mono samples at ``cfg.sample_rate``.

    `fps` is the rate of the feature frames (default ``cfg.fps``). For ``mel`` and
    ``fft`` features the bands become a power spectrum (`bands_to_power`), optionally
    levelled towards the loudness column (`loudness_weight`: 0 ignores it, 1 trusts
    it alone), and Griffin-Lim finds a phase. Frames are interpolated to `oversample`
    times the frame rate first: more overlap between windows gives Griffin-Lim more
    constraints on the phase. ``wave`` features are coarse waveforms and are overlap-added
    instead. The result peaks at -1 dBFS (silence stays silence).
    """
    f = np.nan_to_num(np.asarray(features, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if f.ndim != 2 or f.shape[1] != cfg.dim:
        raise ValueError(f"features must have shape (n, {cfg.dim}), got {f.shape}")
    fps = float(fps or cfg.fps)
    if cfg.kind == "wave":
        samples = _wave_to_audio(f[:, : cfg.bands], cfg, fps)
    else:
        samples = _spectral_to_audio(f, cfg, fps, iterations, loudness_weight, oversample, seed)
    return _normalise(samples)


def _spectral_to_audio(
    features: np.ndarray,
    cfg: FeatureConfig,
    fps: float,
    iterations: int,
    loudness_weight: float,
    oversample: int,
    seed: int,
) -> np.ndarray:
    n = features.shape[0]
    length = round(n * cfg.sample_rate / fps)
    if n == 0:
        return np.zeros(0)
    hop = max(1, round(cfg.sample_rate / fps / max(1, int(oversample))))
    # Frames on an integer hop grid (exact for 30 fps at 24 kHz, interpolated otherwise).
    f = _resample_frames(features, fps, cfg.sample_rate / hop)
    # The features are log(band power + 1e-10) of an unnormalised Hann-windowed FFT,
    # which is exactly the scale torch.stft uses with the same window.
    bands = np.maximum(np.exp(f[:, : cfg.bands]) - _EPS, 0.0)
    power = bands_to_power(bands, _band_matrix(cfg))
    if cfg.loudness and loudness_weight > 0:
        smooth = max(1, round(_GAIN_SMOOTH_S * cfg.sample_rate / hop))
        gain = _loudness_gain(power, f[:, cfg.bands], cfg.n_fft, loudness_weight, smooth)
        power *= gain[:, None] ** 2
    frames = 1 + length // hop  # what torch.stft makes of `length` samples
    power = np.pad(power, ((0, max(0, frames - power.shape[0])), (0, 0)), mode="edge")[:frames]
    magnitude = torch.from_numpy(np.sqrt(power).T.copy())
    samples = griffin_lim(magnitude, cfg.n_fft, hop, length, iterations, seed=seed).numpy()
    return _gate_silence(samples, features, cfg, fps)


def _silent_frames(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Frames whose whole analysis window was (near) digital silence."""
    if cfg.loudness:
        return features[:, cfg.bands] < _SILENT_DB
    # Without a loudness column: every band at the extractor's log floor.
    return features[:, : cfg.bands].max(axis=1) < math.log(_EPS) + 2.0


def _gate_silence(samples: np.ndarray, features: np.ndarray, cfg: FeatureConfig, fps: float) -> np.ndarray:
    """Zero the samples that a silent frame says were silent.

    Griffin-Lim spreads the edge frames of a sound over their whole window, so a break
    in the music would start late and end early; the silent frames know better.
    """
    silent = np.flatnonzero(_silent_frames(features, cfg))
    if silent.size == 0:
        return samples
    ends = replace(cfg, fps=fps).frame_ends(silent)
    keep = np.ones(samples.shape[0], dtype=bool)
    for end in ends:
        keep[max(0, end - cfg.n_fft) : max(0, end)] = False
    return samples * keep


def _wave_to_audio(segments: np.ndarray, cfg: FeatureConfig, fps: float) -> np.ndarray:
    """Overlap-add the coarse waveforms of ``wave`` features (only low frequencies survive)."""
    n, bands = segments.shape
    length = round(n * cfg.sample_rate / fps)
    bounds = np.rint(np.linspace(0, cfg.n_fft, bands + 1))
    centres = (bounds[:-1] + bounds[1:] - 1) / 2.0
    t = np.arange(cfg.n_fft)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * (t + 0.5) / cfg.n_fft)
    out = np.zeros(length + 2 * cfg.n_fft)
    weight = np.zeros_like(out)
    # Frame i saw samples [end_i - n_fft, end_i); `out` starts n_fft before sample 0.
    starts = replace(cfg, fps=fps).frame_ends(np.arange(n))
    for i, start in enumerate(starts):
        out[start : start + cfg.n_fft] += window * np.interp(t, centres, segments[i])
        weight[start : start + cfg.n_fft] += window
    out = out / np.maximum(weight, 1e-3)
    return out[cfg.n_fft : cfg.n_fft + length]


def _normalise(samples: np.ndarray) -> np.ndarray:
    """Scale to a -1 dBFS peak as float32; all-zero (or empty) input stays zero."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.abs(x).max()) if x.size else 0.0
    return (x * (_PEAK / peak) if peak > 1e-9 else np.zeros_like(x)).astype(np.float32)


# ---------------------------------------------------------------------------------- glue


def default_output(source: str | os.PathLike) -> Path:
    """Where the heard sound goes by default: SOURCE.heard.wav beside the video or folder.

    Not SOURCE.wav: after `synd render song.wav` that name is the user's song.
    """
    src = Path(source)
    name = src.name if src.is_dir() else src.stem
    return src.parent / f"{name or 'pictures'}.heard.wav"


def listen(
    path: str | os.PathLike,
    out: str | os.PathLike,
    bundle: ModelBundle,
    fps: float | None = None,
    progress: bool = True,
    iterations: int = 48,
    detail: int = GENERATION_SHORT_SIDE,
) -> Path:
    """Read the sound back from the video or image folder `path` and write it as WAV `out`.

    The WAV is written atomically, so a failure never leaves a partial file (nor
    touches an existing `out`).
    Returns the final path.
    """
    pictures, rate = read_pictures(path, fps, default_fps=bundle.features.fps)
    features = decode_pictures(bundle, pictures, progress=progress, total=pictures.count, detail=detail)
    if features.shape[0] == 0:
        raise ListenError(path, "no frames could be read")
    samples = features_to_audio(features, bundle.features, rate, iterations=iterations)
    write_wav(out, samples, bundle.features.sample_rate)  # atomic: all or nothing
    return Path(out)
