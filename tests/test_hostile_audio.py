"""Hostile and odd audio files: each one decodes correctly or is one clear error line.

`synd.audio.load_audio` is where `synd render`, `synd eval`, `synd train` and a file
input of `synd run` decode audio, so every case goes through it (mono for the features,
stereo as render muxes it); a few also go through `synd render` in a subprocess. The
files are made in tmp_path with real tools: sox (installed by the project's setup) and
FFmpeg's encoders through PyAV, then cut, renamed or damaged.

Run with ``-s`` (or ``-rP``) to see the table of cases and outcomes.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from synd.audio import MAX_LEVEL, AudioError, load_audio
from synd.features import FeatureConfig, FeatureExtractor
from tests.helpers.audio import encode
from tests.helpers.models import make_tiny_bundle

SR = 24000  # the models' sample rate
MUX_RATE = 48000  # a rate render muxes video soundtracks at
TONE_HZ = 1000.0
OUTCOMES: dict[str, str] = {}  # case -> outcome, printed as a table at the end


def sox(*args: str) -> None:
    """Run sox (no dither: exact samples), skipping the test where it is missing."""
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed (scripts/setup.sh installs it)")
    subprocess.run(["sox", "-D", *args], check=True, timeout=60, capture_output=True)


def sox_tone(path: Path, rate: int, channels: int = 2, seconds: float = 2.0) -> Path:
    """A 1 kHz sine at amplitude 0.5 on every channel."""
    sox(
        "-n",
        "-r",
        str(rate),
        "-c",
        str(channels),
        str(path),
        "synth",
        str(seconds),
        "sine",
        str(TONE_HZ),
        "vol",
        "0.5",
    )
    return path


def pyav_audio(path: Path, samples: np.ndarray, rate: int, codec: str) -> Path:
    """Mono float samples encoded with an FFmpeg encoder (container chosen by suffix)."""
    return encode(path, samples, rate, codec)


def tone(seconds: float, rate: int) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * TONE_HZ * np.arange(round(seconds * rate)) / rate)


def cut(source: Path, path: Path, size: int | None = None) -> Path:
    """The first `size` bytes of `source` (default: half of it) as `path`."""
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size is None else size])
    return path


# -- the cases: each makes its file in a folder and returns its path ------------------


def flac_half(d):
    return cut(sox_tone(d / "whole.flac", 44100), d / "song.flac")


def flac_few_bytes(d):
    return cut(sox_tone(d / "whole.flac", 44100), d / "song.flac", 12)


def mp3_half(d):
    return cut(pyav_audio(d / "whole.mp3", tone(2.0, 44100), 44100, "libmp3lame"), d / "song.mp3")


def mp3_few_bytes(d):
    return cut(pyav_audio(d / "whole.mp3", tone(2.0, 44100), 44100, "libmp3lame"), d / "song.mp3", 10)


def wav_half(d):
    return cut(sox_tone(d / "whole.wav", 44100), d / "song.wav")


def wav_header_only(d):
    return cut(sox_tone(d / "whole.wav", 44100), d / "song.wav", 44)


def wav_few_bytes(d):
    return cut(sox_tone(d / "whole.wav", 44100), d / "song.wav", 6)


def empty_file(d):
    (d / "song.flac").write_bytes(b"")
    return d / "song.flac"


def flac_named_mp3(d):
    return sox_tone(d / "whole.flac", 44100).rename(d / "song.mp3")


def text_named_wav(d):
    (d / "song.wav").write_text("Track list\n1. Intro\n2. Outro\n" * 20)
    return d / "song.wav"


def eight_channels(d):
    # One tone per channel (300, 600, ... 2400 Hz), each at 0.5: the mean has each at 1/16.
    sines = [arg for k in range(1, 9) for arg in ("sine", str(300 * k))]
    sox("-n", "-r", "48000", "-c", "8", str(d / "song.flac"), "synth", "1", *sines, "vol", "0.5")
    return d / "song.flac"


def rate_192k(d):
    return sox_tone(d / "song.wav", 192000, seconds=1.5)


def rate_8k(d):
    return sox_tone(d / "song.wav", 8000, seconds=1.5)


def all_silence(d):
    sox("-n", "-r", "44100", "-c", "2", str(d / "song.flac"), "trim", "0", "2")
    return d / "song.flac"


NAN_AT, POSINF_AT, NEGINF_AT = 1000, 5000, 5001


def float_nan_inf(d):
    x = tone(1.0, SR)
    x[NAN_AT], x[POSINF_AT], x[NEGINF_AT] = np.nan, np.inf, -np.inf
    x[12000:12100] = np.nan  # a whole run of them
    return pyav_audio(d / "song.wav", x, SR, "pcm_f32le")


def float_huge(d):
    # A square wave at float32's limit: resampling overshoots it, which once became Inf.
    square = np.where((np.arange(44100) // 100) % 2 == 0, 3.4e38, -3.4e38)
    return pyav_audio(d / "song.wav", square, 44100, "pcm_f32le")


def rate_1hz(d):
    # A header claiming 1 sample a second: 20 kB would resample to hours of audio.
    with wave.open(str(d / "song.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes((tone(1.0, 10000) * 32767).astype("<i2").tobytes())
    return d / "song.wav"


def video_no_audio(d):
    path = d / "song.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):  # moving bars, like FFmpeg's testsrc
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, (np.arange(64) + 6 * i) % 64 < 32] = (200, 60, 20)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def directory(d):
    (d / "song.flac").mkdir()
    return d / "song.flac"


def fifo(d):
    # Opening a pipe for reading blocks until a writer comes: it must be refused unopened.
    os.mkfifo(d / "song.wav")
    return d / "song.wav"


def unreadable(d):
    if os.geteuid() == 0:
        OUTCOMES["unreadable"] = "skipped: root reads files whatever their permissions"
        pytest.skip("root reads files whatever their permissions")
    path = sox_tone(d / "song.wav", 44100)
    path.chmod(0)
    return path


# case -> (maker, None for audio that decodes, or the problem its one error line names)
CASES = {
    "flac_half": (flac_half, None),
    "flac_few_bytes": (flac_few_bytes, "not a media file"),
    "mp3_half": (mp3_half, None),
    "mp3_few_bytes": (mp3_few_bytes, "not a media file"),
    "wav_half": (wav_half, None),
    "wav_header_only": (wav_header_only, "not a media file"),
    "wav_few_bytes": (wav_few_bytes, "not a media file"),
    "empty_file": (empty_file, "file is empty"),
    "flac_named_mp3": (flac_named_mp3, None),
    "text_named_wav": (text_named_wav, "not a media file"),
    "eight_channels": (eight_channels, None),
    "rate_192k": (rate_192k, None),
    "rate_8k": (rate_8k, None),
    "all_silence": (all_silence, None),
    "float_nan_inf": (float_nan_inf, None),
    "float_huge": (float_huge, None),
    "rate_1hz": (rate_1hz, "sample rate 1 Hz is outside"),
    "video_no_audio": (video_no_audio, "no audio stream"),
    "directory": (directory, "is a directory"),
    "fifo": (fifo, "not a regular file"),
    "unreadable": (unreadable, "Permission denied"),
}


@pytest.fixture(scope="module", autouse=True)
def summary_table():
    """Print every case tried and its outcome once the module's tests are done."""
    yield
    width = max(map(len, OUTCOMES), default=4)
    print(f"\n{len(OUTCOMES)} audio files tried:")
    for case, outcome in OUTCOMES.items():
        print(f"  {case:<{width}}  ->  {outcome}")


def features(samples: np.ndarray) -> np.ndarray:
    return FeatureExtractor(FeatureConfig()).offline(samples)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def level(x: np.ndarray, rate: int) -> float:
    """Sine amplitude from the RMS away from the ends."""
    mid = x[rate // 10 : -rate // 10].astype(np.float64)
    return float(np.sqrt(2 * np.mean(mid**2)))


def check_decoded(case: str, y: np.ndarray) -> str:
    """Case-specific checks that the decoded audio is right; returns a short description."""
    seconds = len(y) / SR
    if case in ("flac_half", "mp3_half", "wav_half"):  # half of a 2 s tone survives
        assert 0.8 < seconds < 1.2, seconds
        assert abs(peak_hz(y, SR) - TONE_HZ) < 2 and abs(level(y, SR) - 0.5) < 0.03
        return f"{seconds:.2f} s of 2 s decoded (the part before the cut)"
    if case == "flac_named_mp3":  # the content decides, not the name
        assert len(y) == 2 * SR and abs(level(y, SR) - 0.5) < 1e-3
        return "decoded as the FLAC it is, 2.00 s"
    if case == "eight_channels":
        spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) * 4 / len(y)
        hz = np.fft.rfftfreq(len(y), 1 / SR)
        peaks = [spec[np.argmin(np.abs(hz - 300 * k))] for k in range(1, 9)]
        assert len(y) == SR and np.allclose(peaks, 0.5 / 8, rtol=0.02), peaks
        return "downmixed to the mean of 8 channels (8 tones at 1/8 level), 1.00 s"
    if case in ("rate_192k", "rate_8k"):
        assert abs(len(y) - 1.5 * SR) <= 1  # resampled to the model rate, duration kept
        assert abs(peak_hz(y, SR) - TONE_HZ) < 1 and abs(level(y, SR) - 0.5) < 0.005
        return f"resampled to {SR} Hz, 1.50 s, tone and level kept"
    if case == "all_silence":
        assert len(y) == 2 * SR and not y.any()
        return "2.00 s of zeros"
    if case == "float_nan_inf":
        x = tone(1.0, SR)
        bad = [NAN_AT, POSINF_AT, NEGINF_AT, *range(12000, 12100)]
        assert (y[bad] == 0).all()
        good = np.setdiff1d(np.arange(SR), bad)
        assert np.max(np.abs(y[good] - x[good])) < 1e-6  # the rest untouched
        return "103 NaN/Inf samples replaced by 0, the rest exact"
    if case == "float_huge":
        # Clipped at MAX_LEVEL; a square wave's resampled edges ring up to ~1.2 times that.
        assert len(y) == SR and 0.9 * MAX_LEVEL < np.abs(y).max() < 1.5 * MAX_LEVEL
        return f"clipped to +-{MAX_LEVEL:g} before resampling, finite"
    raise AssertionError(f"no check for {case}")


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_audio_file_decodes_right_or_is_one_clear_error(tmp_path, case, caplog):
    make, problem = CASES[case]
    path = make(tmp_path)
    if problem is not None:
        for stereo in (False, True):
            with pytest.raises(AudioError) as err:
                load_audio(path, SR if not stereo else MUX_RATE, stereo=stereo)
            message = str(err.value)
            assert "\n" not in message and path.name in message and problem in message, message
        OUTCOMES[case] = f"error: {err.value.problem}"
        return
    with caplog.at_level(logging.WARNING, logger="synd.audio"):
        y = load_audio(path, SR)
        soundtrack = load_audio(path, MUX_RATE, stereo=True)
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    assert soundtrack.ndim == 2 and np.isfinite(soundtrack).all()
    assert abs(len(soundtrack) - len(y) * MUX_RATE / SR) <= 2
    rows = features(y)
    assert len(rows) and np.isfinite(rows).all()  # what the model hears is finite too
    OUTCOMES[case] = f"ok: {check_decoded(case, y)}"
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert all("\n" not in w and path.name in w for w in warned)
    if case in ("flac_half", "mp3_half", "wav_half", "float_nan_inf", "float_huge"):
        assert warned, "a damaged file decodes with a warning saying so"


# -- through the command line ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    make_tiny_bundle().save(path)
    return path


def render(song: Path, out: Path, model: Path) -> subprocess.CompletedProcess:
    """`synd render` of one song to a small video; a hang fails on the timeout."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "synd",
            "render",
            str(song),
            "-o",
            str(out),
            "--model",
            str(model),
            "--size",
            "64x48",
            "--fps",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("case", ["text_named_wav", "flac_few_bytes", "video_no_audio", "fifo", "rate_1hz"])
def test_render_refuses_a_bad_song_in_one_line_and_writes_nothing(tmp_path, case, tiny_model):
    song = CASES[case][0](tmp_path)
    out = tmp_path / "videos" / "clip.mp4"
    proc = render(song, out, tiny_model)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert proc.returncode == 1, proc.stderr
    assert len(errors) == 1 and errors[0].startswith("synd: error:"), proc.stderr
    assert song.name in errors[0] and CASES[case][1] in errors[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not any(out.parent.glob("*"))  # no video, no partial file
    OUTCOMES[f"cli render {case}"] = f"exit {proc.returncode}: {errors[0].replace(str(tmp_path), '')}"


def test_render_of_an_odd_but_valid_song_writes_a_video(tmp_path, tiny_model):
    song = eight_channels(tmp_path)
    out = tmp_path / "clip.mp4"
    proc = render(song, out, tiny_model)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as video:
        assert video.streams.video and video.streams.audio
        assert abs(float(video.duration / av.time_base) - 1.0) < 0.2
    OUTCOMES["cli render eight_channels"] = "exit 0: a 1 s video with its soundtrack"
