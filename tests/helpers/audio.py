"""Generated sound for tests: `music_clip` (a short synthetic piece) and its fixture
`clip_dir` (a folder of songs), `tone`, `beats` (loud bars between digital silence),
`dominant_hz` (the strongest frequency in a signal) and `encode` (samples to a file
with one of FFmpeg's encoders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synd.audio import write_wav

#: PyAV's channel layouts by channel count, for `encode`.
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


def music_clip(seed: int, seconds: float = 6.0, sr: int = 24000) -> np.ndarray:
    """A short synthetic piece: decaying tones at random pitches, noise hits, a beat."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    step = int(0.25 * sr)
    for a in range(0, len(t) - step, step):
        f = rng.uniform(60, 3000)
        env = np.exp(-np.linspace(0, rng.uniform(1, 8), step))
        x[a : a + step] += rng.uniform(0.05, 0.4) * np.sin(2 * np.pi * f * t[a : a + step]) * env
        if rng.random() < 0.4:
            x[a : a + 1500] += rng.normal(0, 0.3, 1500) * np.linspace(1, 0, 1500)
    return np.clip(x, -1, 1).astype(np.float32)


@pytest.fixture
def clip_dir(tmp_path: Path) -> Path:
    """A folder of four short generated WAV songs."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for k in range(4):
        write_wav(folder / f"song{k}.wav", music_clip(k), 24000)
    return folder


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    """A sine of `freq` Hz, float32."""
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def beats(seconds: float, on: float = 1.0, off: float = 1.0, rate: int = 48000) -> np.ndarray:
    """Loud drum-and-tone bars separated by digital silence."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    period = on + off
    for start in np.arange(0, seconds, period):
        a, b = int(start * rate), int(min(start + on, seconds) * rate)
        tt = t[a:b] - start
        x[a:b] = 0.5 * np.sin(2 * np.pi * 220 * tt) * np.exp(-((tt * 4) % 1.0) * 3)
        x[a:b] += 0.2 * np.random.default_rng(int(start * 10)).normal(size=b - a) * ((tt * 4) % 1.0 < 0.05)
    return np.clip(x, -1, 1).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int = 24000) -> float:
    """Frequency of the strongest spectral peak (parabolic interpolation of log power)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) + 1e-12
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x)


def encode(
    path: Path,
    channels: np.ndarray,
    rate: int,
    codec: str,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode (channels, n) float samples with PyAV (container chosen by suffix).

    Frames are handed over packed ("flt"): PyAV 18 crashes on planar frames of 8
    channels, and the encoder converts to whatever it needs anyway.
    """
    import av

    data = np.ascontiguousarray(np.atleast_2d(channels), dtype=np.float32)
    layout = LAYOUTS[data.shape[0]]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if options:
            stream.codec_context.options = options
        for lo in range(0, data.shape[1], 4096):
            block = np.ascontiguousarray(data[:, lo : lo + 4096].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
