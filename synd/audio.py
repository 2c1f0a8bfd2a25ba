"""Audio input: decode any file FFmpeg can read (through PyAV) to float32 mono (or stereo).

`load_audio` is the single entry point used by training, offline rendering and the
corpus tools. It decodes the first audio stream of a file (music formats or the
soundtrack of a video), converts every decoded frame to float64 in [-1, 1] per channel,
downmixes to mono as the exact mean of the channels and resamples with a polyphase
filter (`scipy.signal.resample_poly`); a video's soundtrack can keep stereo. Failures
raise `AudioError`, whose message is a single line naming the file and the problem.

Hostile or odd files: only regular files are opened (a pipe or device would block or
never end); sample rates outside [MIN_RATE, MAX_RATE] are refused (a header claiming
1 Hz would turn a small file into hours of resampled audio); NaN and Inf samples become
0, and finite samples beyond +-MAX_LEVEL (+24 dBFS, possible only in float files) are
clipped there, so that the result and every feature computed from it are finite.
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import av
import numpy as np
from scipy.signal import firwin, resample_poly, upfirdn

from synd.errors import one_line
from synd.files import atomic_write_bytes

__all__ = ["AUDIO_SUFFIXES", "AudioError", "load_audio", "write_wav", "audio_info"]

log = logging.getLogger(__name__)

#: File endings synd takes for audio: sound files, and videos whose soundtrack it reads
#: (`synd train` on a folder, `--input FILE`, the music fetcher).
AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".opus",
        ".m4a",
        ".aac",
        ".aif",
        ".aiff",
        ".wma",
        ".mp4",
        ".mkv",
        ".webm",
        ".mov",
        ".avi",
    }
)

# Full-scale values of the integer sample formats FFmpeg hands out. 24-bit sources are
# decoded as s32 (left-aligned), so 2**31 is right for them too.
_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}

# resample_poly's default filter has 2 * 10 * max(up, down) + 1 taps at the upsampled
# rate, i.e. reaches 10 * max(up, down) / up input samples to each side.
_RESAMPLE_HALF_TAPS = 10
# Output samples resampled per call: bounds the float64 temporaries for long files.
_RESAMPLE_CHUNK = 1 << 20

#: Source sample rates accepted (Hz): below telephone rates nothing is music, and the
#: polyphase filter grows with the rate (768 kHz is the highest PCM rate in use).
MIN_RATE = 2000
MAX_RATE = 768000
#: Largest sample magnitude kept (+24 dBFS). Float files may go beyond full scale (1.0),
#: and lossy decoders do a little; far beyond it is not sound, and near float32's limit
#: the resampler's overshoot would overflow to Inf.
MAX_LEVEL = 16.0


class _DropWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


@contextmanager
def warnings_said() -> Iterator[None]:
    """Mute this module's warnings for a block: a song decoded a second time (the
    soundtrack, after the features) would repeat what the first decoding said."""
    muted = _DropWarnings()
    log.addFilter(muted)
    try:
        yield
    finally:
        log.removeFilter(muted)


class AudioError(Exception):
    """An audio file cannot be read. str() is one line: the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = one_line(problem)
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
    try:
        info = os.stat(p)
    except OSError as exc:
        raise AudioError(p, exc.strerror or str(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(p, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):  # FFmpeg would wait on a pipe for ever
        raise AudioError(p, "not a regular file (a pipe, socket or device)")
    if info.st_size == 0:
        raise AudioError(p, "file is empty")
    try:
        return av.open(p, mode="r")
    except OSError as exc:  # includes PyAV's errno errors, e.g. permission denied
        raise AudioError(p, _ffmpeg_reason(exc)) from exc
    except av.FFmpegError as exc:
        raise AudioError(p, f"not a media file, or damaged ({_ffmpeg_reason(exc)})") from exc


def _audio_stream(container: Any, path: str | os.PathLike) -> Any:
    if not container.streams.audio:
        raise AudioError(path, "no audio stream")
    return container.streams.audio[0]


class _Converter:
    """Turns decoded frames into float64 arrays (channels, samples) in [-1, 1] at one rate.

    Most frames are converted in numpy. Frames that numpy cannot take safely go through
    libswresample (to packed double): sample formats PyAV cannot export (s64), planar
    frames with 8 or more channels (PyAV 18's `AudioFrame.planes` reads past the plane
    pointers there and crashes), and frames whose rate differs from the stream's first
    rate (rare, e.g. concatenated files), so that sample positions stay meaningful.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resamplers: dict[tuple, Any] = {}

    def __call__(self, frame: Any) -> np.ndarray:
        base = frame.format.name.rstrip("p")
        channels = frame.layout.nb_channels
        if (
            frame.rate == self.rate
            and base in _NUMPY_FORMATS
            and not (frame.format.is_planar and channels >= 8)
        ):
            return _to_float(frame)
        key = (frame.format.name, frame.layout.name, channels, frame.rate)
        if key not in self._resamplers:
            self._resamplers[key] = av.AudioResampler(format="dbl", rate=self.rate)
        return self._join(self._resamplers[key].resample(frame), channels)

    def flush(self) -> list[np.ndarray]:
        """Samples still buffered in the resamplers, at the end of the stream."""
        out = []
        for key, resampler in self._resamplers.items():
            out.append(self._join(resampler.resample(None), key[2]))
        return [x for x in out if x.shape[1]]

    @staticmethod
    def _join(frames: list, channels: int) -> np.ndarray:
        parts = [_to_float(f) for f in frames if f is not None]
        return np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0))


_NUMPY_FORMATS = ("u8", "s16", "s32", "flt", "dbl")


def _to_float(frame: Any) -> np.ndarray:
    """Frame in a numpy-exportable format -> float64 (channels, samples) in [-1, 1]."""
    base = frame.format.name.rstrip("p")
    raw = frame.to_ndarray()
    if not frame.format.is_planar:
        # Packed data comes as one row of interleaved samples: de-interleave it here so
        # the downmix averages channels, not consecutive samples.
        raw = raw.reshape(-1, frame.layout.nb_channels).T
    data = raw.astype(np.float64)
    if base == "u8":
        data = (data - 128.0) / 128.0
    elif base in _INT_SCALE:
        data /= _INT_SCALE[base]
    return data


def _rate_ratio(src: int, dst: int) -> tuple[int, int]:
    g = math.gcd(src, dst)
    return dst // g, src // g


def _input_span(o0: int, o1: int | None, up: int, down: int) -> tuple[int, int | None]:
    """Input samples [i0, i1) that resample_poly needs for output samples [o0, o1).

    i0 is a multiple of `down`, so that output k of ``resample_poly(x[i0:i1])`` is
    output ``k + i0 * up // down`` of ``resample_poly(x)``: excerpts and chunks land on
    the same grid as the whole signal, with enough context for the filter.
    """
    half = math.ceil(_RESAMPLE_HALF_TAPS * max(up, down) / up) + 1
    i0 = max(0, (o0 * down // up - half) // down * down)
    return i0, None if o1 is None else -(-o1 * down // up) + half


def _resample(x: np.ndarray, up: int, down: int, chunk: int = _RESAMPLE_CHUNK) -> np.ndarray:
    """``resample_poly(x, up, down)`` as float32, computed in chunks of output samples."""
    n_out = -(-x.shape[0] * up // down)
    out = np.empty(n_out, dtype=np.float32)
    for o0 in range(0, n_out, chunk):
        o1 = min(o0 + chunk, n_out)
        i0, i1 = _input_span(o0, o1, up, down)
        y = resample_poly(x[i0:i1].astype(np.float64), up, down)
        offset = o0 - i0 * up // down
        out[o0:o1] = y[offset : offset + o1 - o0]
    return out


def _declared_duration(stream: Any, container: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode(
    container: Any,
    stream: Any,
    path: str | os.PathLike,
    plan: Callable[[int], tuple[int, int | None]],
    channels: int = 1,
) -> tuple[np.ndarray, int, int, bool, bool, int]:
    """Decode part of the stream as float32 (channels, n) at its own sample rate.

    `channels` is 1 (every frame downmixed to mono) or 2 (stereo kept; a mono frame is
    duplicated and a surround frame downmixed to mono on both sides).

    `plan(rate)` is called with the rate of the first decoded frame (headers can be
    wrong, e.g. HE-AAC) and returns the source sample range [first, stop) to keep.
    Returns (samples, rate, first, reached_end, had_errors, nonfinite_count). Decoding stops
    once `stop` samples are decoded; an error on a packet skips that packet, so a
    damaged file yields whatever is decodable instead of failing or looping.
    """
    pieces: list[np.ndarray] = []
    pos = 0  # absolute index (source rate) of the next decoded sample
    rate = 0
    first, stop = 0, None
    convert: _Converter | None = None
    errors = nonfinite = 0
    reached_end = True

    def keep(data: np.ndarray, pos: int) -> int:
        """Downmix (exact channel mean), keep the wanted part; return the next position.

        NaN and Inf become 0 and magnitudes beyond MAX_LEVEL are clipped; both are counted.
        """
        nonlocal nonfinite
        if data.shape[0] != channels:
            data = np.repeat(data.mean(axis=0, keepdims=True), channels, axis=0)
        n = data.shape[1]
        lo, hi = max(first - pos, 0), n if stop is None else min(stop - pos, n)
        if hi > lo:
            piece = data[:, lo:hi]
            bad = ~(np.abs(piece) <= MAX_LEVEL)  # NaN compares False: counted here too
            if bad.any():
                nonfinite += int(bad.sum())
                piece = np.clip(np.where(np.isfinite(piece), piece, 0.0), -MAX_LEVEL, MAX_LEVEL)
            pieces.append(piece.astype(np.float32))  # halves memory for long files
        return pos + n

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
            if convert is None:  # the first frame (rate and convert are set together)
                rate = frame.rate
                if not MIN_RATE <= rate <= MAX_RATE:
                    raise AudioError(
                        path, f"sample rate {rate} Hz is outside the {MIN_RATE}-{MAX_RATE} Hz synd accepts"
                    )
                first, stop = plan(rate)
                convert = _Converter(rate)
            pos = keep(convert(frame), pos)
        if stop is not None and pos >= stop:
            reached_end = False
            break
    if convert is not None and reached_end:
        for data in convert.flush():
            pos = keep(data, pos)
    samples = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
    return samples, rate, first, reached_end, errors > 0, nonfinite


def load_audio(
    path: str | os.PathLike,
    sample_rate: int,
    start: float = 0.0,
    duration: float | None = None,
    stereo: bool = False,
) -> np.ndarray:
    """Decode the first audio stream of `path` to float32 mono at `sample_rate`.

    With `stereo`, a stereo stream keeps both channels and the result has shape (n, 2);
    other streams give (n, 1) (mono; surround is downmixed). That is the form a video's
    soundtrack wants; the features always use mono.

    `start` and `duration` (seconds) select an excerpt; the result equals the same slice
    of the whole decoded file (samples from ``round(start * sample_rate)`` on). Raises
    AudioError for a missing, empty or unreadable file, a file without audio, or when
    nothing could be decoded, or a sample rate outside [MIN_RATE, MAX_RATE]. NaN and Inf
    samples are replaced by 0 and samples beyond +-MAX_LEVEL clipped to it (with one
    warning), so the result is always finite; a damaged file returns what was
    decodable (with a warning).
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
        return _input_span(j0, j1, up, down)

    container = _open(path)
    try:
        stream = _audio_stream(container, path)
        channels = 2 if stereo and stream.codec_context.channels == 2 else 1
        data, src_rate, first, reached_end, had_errors, nonfinite = _decode(
            container, stream, path, plan, channels
        )
        declared = _declared_duration(stream, container)
    finally:
        container.close()

    name = os.fspath(path)
    if not src_rate or first + data.shape[1] == 0:
        raise AudioError(path, "no decodable audio samples")
    if nonfinite:
        log.warning(
            "%s: replaced %d NaN/Inf or out-of-range samples (NaN/Inf by 0, beyond +-%g by +-%g)",
            name,
            nonfinite,
            MAX_LEVEL,
            MAX_LEVEL,
        )
    decoded_s = (first + data.shape[1]) / src_rate
    if had_errors:
        log.warning("%s: damaged or truncated, decoded %.2f s", name, decoded_s)
    elif reached_end and declared is not None and declared - decoded_s > max(0.5, 0.02 * declared):
        log.warning("%s: truncated? decoded %.2f s of a declared %.2f s", name, decoded_s, declared)

    up, down = _rate_ratio(src_rate, sample_rate)
    if up == down:
        out, offset = data, j0 - first
    else:
        out, offset = np.stack([_resample(c, up, down) for c in data]), j0 - first * up // down
    out = out[:, offset:] if j1 is None else out[:, offset : offset + (j1 - j0)]
    if out.shape[1] == 0:
        where = f" after {start:g} s" if start > 0 else ""
        raise AudioError(path, f"no audio samples{where}")
    return np.ascontiguousarray(out.T if stereo else out[0], dtype=np.float32)


class StreamResampler:
    """Polyphase resampling of a stream given in pieces of any size.

    Computes the causal form of ``scipy.signal.resample_poly`` (same Kaiser-windowed FIR)
    on the stream as a whole: output m is ``sum_k h[k] * x_up[m * down - k]``, emitted as
    soon as every input it needs has arrived. The buffered input always starts at an
    absolute index that is a multiple of `down`, so that each call's ``upfirdn`` output
    lies on the grid of the whole stream. Causal, so nothing is held back at the end
    (about 10 input samples of filter delay).
    """

    def __init__(self, src: int, dst: int) -> None:
        self.rate = src
        r = Fraction(dst, src)
        self.up, self.down = r.numerator, r.denominator
        half = _RESAMPLE_HALF_TAPS * max(self.up, self.down)
        self.h = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self._x = np.zeros(0, np.float64)
        self._s = 0  # absolute index of _x[0]
        self._n = 0  # inputs received
        self._m = 0  # outputs emitted

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Resample the next piece of the stream; returns the outputs it completes."""
        up, down = self.up, self.down
        self._x = np.concatenate([self._x, np.asarray(x, np.float64)])
        self._n += len(x)
        m_end = -(-self._n * up // down)  # outputs with m * down < n * up
        if m_end <= self._m:
            return np.zeros(0, np.float32)
        y = upfirdn(self.h, self._x, up, down)
        q0 = self._m - self._s * up // down
        out = y[q0 : q0 + m_end - self._m].astype(np.float32)
        self._m = m_end
        need = max(0, (self._m * down - len(self.h) + 1) // up)  # oldest input still needed
        new_s = need // down * down
        if new_s > self._s:
            self._x = self._x[new_s - self._s :]
            self._s = new_s
        return out


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples, shape (n,) or (n, channels), as 16-bit PCM WAV (clipped).

    Written atomically: `path` holds the old file or the whole new one, never a part.
    """
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1:
        raise ValueError(f"samples must have shape (n,) or (n, channels), got {data.shape}")
    pcm = np.round(np.clip(np.nan_to_num(data), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())  # row-major (n, channels) = interleaved frames
    atomic_write_bytes(path, buf.getvalue())


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
            data, rate2, *_ = _decode(container, stream, path, lambda r: (0, None))
            rate = rate2 or rate
            duration = data.shape[1] / rate2 if rate2 else 0.0
        return {
            "duration": float(duration),
            "sample_rate": rate,
            "channels": int(ctx.channels or stream.layout.nb_channels),
            # canonical codec name ("mp3"), not the decoder's ("mp3float")
            "codec": str(getattr(ctx.codec, "canonical_name", None) or ctx.name),
        }
    finally:
        container.close()
