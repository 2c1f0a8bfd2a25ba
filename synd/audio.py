"""Audio input: decode any file FFmpeg can read (through PyAV) to float32 mono.

`load_audio` is the single entry point used by training, offline rendering and the
corpus tools. It decodes the first audio stream of a file (music formats or the
soundtrack of a video), converts every decoded frame to float64 in [-1, 1] per channel,
downmixes to mono as the exact mean of the channels and resamples with a polyphase
filter (`scipy.signal.resample_poly`). Failures raise `AudioError`, whose message is a
single line naming the file and the problem.
"""

from __future__ import annotations

import logging
import math
import os
import wave
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.signal import resample_poly

import av

__all__ = ["AudioError", "load_audio", "write_wav", "audio_info"]

log = logging.getLogger(__name__)

# Full-scale values of the integer sample formats FFmpeg hands out. 24-bit sources are
# decoded as s32 (left-aligned), so 2**31 is right for them too.
_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}

# Half length of resample_poly's default anti-aliasing filter, in input samples per
# max(up, down) / up; used to decode just enough context around a requested excerpt.
_RESAMPLE_HALF_TAPS = 10


class AudioError(Exception):
    """An audio file cannot be read. str() is one line: the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())  # force a single line
        super().__init__(f"cannot read audio from {self.path!r}: {self.problem}")


def _ffmpeg_reason(exc: Exception) -> str:
    """The human part of a PyAV error, without errno and file name."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(reason)


def _open(path: str | os.PathLike) -> Any:
    """Open a container for reading, mapping every failure to an AudioError."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise AudioError(p, "no such file")
    if os.path.isdir(p):
        raise AudioError(p, "is a directory, not a file")
    try:
        if os.path.getsize(p) == 0:
            raise AudioError(p, "file is empty")
    except OSError as exc:
        raise AudioError(p, exc.strerror or str(exc)) from exc
    try:
        return av.open(p, mode="r")
    except av.FFmpegError as exc:
        raise AudioError(p, f"not a media file ({_ffmpeg_reason(exc)})") from exc
    except OSError as exc:
        raise AudioError(p, exc.strerror or str(exc)) from exc


def _audio_stream(container: Any, path: str | os.PathLike) -> Any:
    if not container.streams.audio:
        raise AudioError(path, "no audio stream")
    return container.streams.audio[0]


def _frame_to_channels(frame: Any) -> np.ndarray:
    """Decoded frame -> float64 array (channels, samples) scaled to [-1, 1]."""
    fmt = frame.format.name
    base = fmt.rstrip("p")
    channels = frame.layout.nb_channels
    if base not in ("u8", "s16", "s32", "flt", "dbl"):
        # s64 and exotic formats: let libswresample convert, keeping rate and layout.
        frame = av.AudioResampler(format="dblp", layout=frame.layout, rate=frame.rate).resample(frame)
        parts = [f.to_ndarray() for f in frame]
        return np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0))
    raw = frame.to_ndarray()
    if not frame.format.is_planar:
        # Packed data comes as one row of interleaved samples: de-interleave it here so
        # the downmix averages channels, not consecutive samples.
        raw = raw.reshape(-1, channels).T
    data = raw.astype(np.float64)
    if base == "u8":
        data = (data - 128.0) / 128.0
    elif base in _INT_SCALE:
        data /= _INT_SCALE[base]
    return data


def _rate_ratio(src: int, dst: int) -> tuple[int, int]:
    g = math.gcd(src, dst)
    return dst // g, src // g


def _declared_duration(stream: Any, container: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode_mono(
    container: Any,
    stream: Any,
    path: str | os.PathLike,
    plan: Callable[[int], tuple[int, int | None]],
) -> tuple[np.ndarray, int, int, bool, bool, int]:
    """Decode part of the stream as float64 mono at its own sample rate.

    `plan(rate)` is called with the rate of the first decoded frame (headers can be
    wrong, e.g. HE-AAC) and returns the source sample range [first, stop) to keep.
    Returns (mono, rate, first, reached_end, had_errors, nonfinite_count). Decoding stops
    once `stop` samples are decoded; an error on a packet skips that packet, so a
    damaged file yields whatever is decodable instead of failing or looping.
    """
    pieces: list[np.ndarray] = []
    pos = 0  # absolute index (source rate) of the next decoded sample
    rate = 0
    first, stop = 0, None
    resampler = None
    errors = nonfinite = 0
    reached_end = True
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except av.FFmpegError as exc:  # unreadable container data: keep what we have
            errors += 1
            log.debug("demux error in %s: %s", path, exc)
            break
        try:
            frames = packet.decode()  # the final empty packet flushes the decoder
        except av.FFmpegError as exc:
            errors += 1
            log.debug("decode error in %s: %s", path, exc)
            continue
        for frame in frames:
            if not rate:
                rate = frame.rate
                first, stop = plan(rate)
            if frame.rate != rate:
                # Rate change inside a stream (rare, e.g. concatenated files): convert
                # back to the first rate so sample positions stay meaningful.
                if resampler is None:
                    resampler = av.AudioResampler(format="dblp", rate=rate)
                chans = [_frame_to_channels(f) for f in resampler.resample(frame)]
                data = np.concatenate(chans, axis=1) if chans else np.zeros((1, 0))
            else:
                data = _frame_to_channels(frame)
            mono = data.mean(axis=0) if data.shape[0] > 1 else data[0]
            n = mono.shape[0]
            lo, hi = max(first - pos, 0), n if stop is None else min(stop - pos, n)
            if hi > lo:
                piece = mono[lo:hi]
                bad = ~np.isfinite(piece)
                if bad.any():
                    nonfinite += int(bad.sum())
                    piece = np.where(bad, 0.0, piece)
                pieces.append(piece)
            pos += n
        if stop is not None and pos >= stop:
            reached_end = False
            break
    mono = np.concatenate(pieces) if pieces else np.zeros(0)
    return mono, rate, first, reached_end, errors > 0, nonfinite


def load_audio(
    path: str | os.PathLike,
    sample_rate: int,
    start: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode the first audio stream of `path` to float32 mono at `sample_rate`.

    `start` and `duration` (seconds) select an excerpt; the result equals the same slice
    of the whole decoded file (samples from ``round(start * sample_rate)`` on). Raises
    AudioError for a missing, empty or unreadable file, a file without audio, or when
    nothing could be decoded. Non-finite samples are replaced by 0 (with a warning), and
    a damaged file returns what was decodable (with a warning).
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    if not math.isfinite(start) or start < 0:
        raise ValueError(f"start must be a finite number >= 0, got {start!r}")
    if duration is not None and (not math.isfinite(duration) or duration < 0):
        raise ValueError(f"duration must be a finite number >= 0, got {duration!r}")
    # Wanted output samples [j0, j1) in the output grid of the whole file.
    j0 = round(start * sample_rate)
    j1 = None if duration is None else j0 + round(duration * sample_rate)

    def plan(src_rate: int) -> tuple[int, int | None]:
        up, down = _rate_ratio(src_rate, sample_rate)
        if up == down:
            return j0, j1
        # Decode enough context for the resampling filter, starting on a multiple of
        # `down` so that the excerpt's output grid coincides with the whole file's.
        half = math.ceil(_RESAMPLE_HALF_TAPS * max(up, down) / up) + 1
        first = max(0, (j0 * down // up - half) // down * down)
        return first, None if j1 is None else -(-j1 * down // up) + half

    container = _open(path)
    try:
        stream = _audio_stream(container, path)
        mono, src_rate, first, reached_end, had_errors, nonfinite = _decode_mono(
            container, stream, path, plan
        )
        declared = _declared_duration(stream, container)
    finally:
        container.close()

    name = os.fspath(path)
    if not src_rate or first + mono.shape[0] == 0:
        raise AudioError(path, "no decodable audio samples")
    if nonfinite:
        log.warning("%s: replaced %d NaN/Inf samples by 0", name, nonfinite)
    decoded_s = (first + mono.shape[0]) / src_rate
    if had_errors:
        log.warning("%s: damaged or truncated, decoded %.2f s", name, decoded_s)
    elif reached_end and declared is not None and declared - decoded_s > max(0.5, 0.02 * declared):
        log.warning("%s: truncated? decoded %.2f s of a declared %.2f s", name, decoded_s, declared)

    up, down = _rate_ratio(src_rate, sample_rate)
    if up == down:
        out, offset = mono, j0 - first
    else:
        out = resample_poly(mono, up, down) if mono.size else mono
        offset = j0 - first * up // down
    out = out[offset:] if j1 is None else out[offset : offset + (j1 - j0)]
    if out.size == 0:
        where = f" after {start:g} s" if start > 0 else ""
        raise AudioError(path, f"no audio samples{where}")
    return np.ascontiguousarray(out, dtype=np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples, shape (n,) or (n, channels), as 16-bit PCM WAV (clipped)."""
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1:
        raise ValueError(f"samples must have shape (n,) or (n, channels), got {data.shape}")
    pcm = np.round(np.clip(np.nan_to_num(data), -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())  # row-major (n, channels) = interleaved frames


def audio_info(path: str | os.PathLike) -> dict:
    """Describe the first audio stream: duration (s), sample_rate, channels, codec.

    Raises AudioError like `load_audio`. When the container declares no duration the
    stream is decoded to measure it.
    """
    container = _open(path)
    try:
        stream = _audio_stream(container, path)
        ctx = stream.codec_context
        rate = int(stream.rate or ctx.sample_rate or 0)
        duration = _declared_duration(stream, container)
        if duration is None:
            mono, rate2, *_ = _decode_mono(container, stream, path, lambda r: (0, None))
            rate = rate2 or rate
            duration = mono.shape[0] / rate2 if rate2 else 0.0
        return {
            "duration": float(duration),
            "sample_rate": rate,
            "channels": int(ctx.channels or stream.layout.nb_channels),
            "codec": str(ctx.name),
        }
    finally:
        container.close()

