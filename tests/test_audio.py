"""Tests for synd.audio: decoding, downmix, resampling, excerpts and error reporting.

All audio is synthesised here and encoded with PyAV into tmp_path.
"""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from synd.audio import AudioError, audio_info, load_audio, write_wav
from tests.helpers.audio import encode

SR = 24000


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def amplitude(x: np.ndarray, rate: int) -> float:
    """Sine amplitude from the RMS of the interior (skips codec/resampler edges)."""
    edge = rate // 10
    mid = x[edge:-edge].astype(np.float64)
    return float(np.sqrt(2 * np.mean(mid**2)))


# (suffix, codec, source rate, codec frame size, extra encoder options)
FORMATS = [
    ("flac", "flac", 44100, 0, None),
    ("mp3", "libmp3lame", 44100, 1152, None),
    ("ogg", "libopus", 48000, 960, None),
    ("opus", "libopus", 48000, 960, None),
    ("oga", "vorbis", 48000, 1024, {"strict": "-2"}),  # FFmpeg's native (experimental) vorbis
    # PyAV writes no edit list into the m4a, so the AAC encoder's 1024 priming samples
    # stay in the decoded stream on top of the padding to the last frame.
    ("m4a", "aac", 44100, 2 * 1024, None),
    ("wav", "pcm_s16le", 44100, 0, None),
    ("wav", "pcm_f32le", 48000, 0, None),
]


@pytest.mark.parametrize("suffix,codec,rate,frame,options", FORMATS, ids=[f[1] for f in FORMATS])
def test_formats_decode_with_duration_and_frequency(tmp_path, suffix, codec, rate, frame, options):
    seconds, freq = 2.0, 1234.0
    x = tone(freq, seconds, rate)
    path = encode(tmp_path / f"tone.{suffix}", np.stack([x, x]), rate, codec, options)
    y = load_audio(path, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    expected = seconds * SR
    slack = frame * SR / rate + 1  # one codec frame, in output samples
    assert expected - slack <= len(y) <= expected + slack, (len(y), expected)
    assert abs(peak_hz(y, SR) - freq) < 1.0
    assert 0.4 < amplitude(y, SR) < 0.6  # lossy codecs keep the level roughly
    info = audio_info(path)
    assert info["sample_rate"] == rate and info["channels"] == 2
    assert info["codec"] == {"libmp3lame": "mp3", "libopus": "opus"}.get(codec, codec)
    if codec != "vorbis":  # FFmpeg's experimental vorbis encoder writes bad granules
        assert abs(info["duration"] - seconds) < 0.05


@pytest.mark.parametrize("codec,suffix", [("pcm_s16le", "wav"), ("flac", "flac"), ("pcm_f32le", "wav")])
def test_stereo_downmix_is_channel_mean_lossless(tmp_path, codec, suffix):
    x = tone(1000, 1.0, SR)
    opposite = encode(tmp_path / f"opp.{suffix}", np.stack([x, -x]), SR, codec)
    assert np.sqrt(np.mean(load_audio(opposite, SR) ** 2)) < 1e-4  # L + R cancel
    one_side = encode(tmp_path / f"left.{suffix}", np.stack([x, 0 * x]), SR, codec)
    y = load_audio(one_side, SR)
    assert abs(amplitude(y, SR) - 0.25) < 0.0025
    assert np.max(np.abs(y - x / 2)) < 1e-4  # sample-exact: the mean, in time order


def test_stereo_downmix_planar_lossy(tmp_path):
    # mp3 decodes to planar float: must give the mean too, not a channel or a mix-up.
    x = tone(1000, 1.0, 44100)
    y = load_audio(encode(tmp_path / "opp.mp3", np.stack([x, -x]), 44100, "libmp3lame"), SR)
    z = load_audio(encode(tmp_path / "left.mp3", np.stack([x, 0 * x]), 44100, "libmp3lame"), SR)
    assert np.sqrt(np.mean(y**2)) < 0.02
    assert 0.2 < amplitude(z, SR) < 0.3


def test_stereo_with_different_content_keeps_both_tones(tmp_path):
    rate = 44100
    left, right = tone(440, 1.0, rate), tone(3000, 1.0, rate, amp=0.25)
    write_wav(tmp_path / "lr.wav", np.stack([left, right], axis=1), rate)
    y = load_audio(tmp_path / "lr.wav", SR).astype(np.float64)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    hz = np.fft.rfftfreq(len(y), 1 / SR)
    ratio = spec[np.argmin(np.abs(hz - 440))] / spec[np.argmin(np.abs(hz - 3000))]
    assert abs(ratio - 2.0) < 0.05  # mean of L and R keeps their 2:1 level ratio
    assert spec[(hz > 5000)].max() < 1e-3 * spec.max()  # no interleaving garbage


def test_stereo_keeps_both_channels_for_a_soundtrack(tmp_path):
    rate = 44100
    left, right = tone(440, 1.0, rate), tone(3000, 1.0, rate, amp=0.25)
    write_wav(tmp_path / "lr.wav", np.stack([left, right], axis=1), rate)
    y = load_audio(tmp_path / "lr.wav", 48000, start=0.25, duration=0.5, stereo=True)
    assert y.shape == (24000, 2)
    assert abs(peak_hz(y[:, 0], 48000) - 440) <= 2 and abs(peak_hz(y[:, 1], 48000) - 3000) <= 2
    mono = load_audio(tmp_path / "lr.wav", 48000, start=0.25, duration=0.5)
    assert np.max(np.abs(y.mean(axis=1) - mono)) < 1e-5  # same grid and excerpt as mono
    write_wav(tmp_path / "m.wav", left, rate)
    assert load_audio(tmp_path / "m.wav", 48000, stereo=True).shape == (48000, 1)


@pytest.mark.parametrize("rate", [44100, 48000, 8000, 96000, 22050])
def test_resampling_keeps_frequency_and_amplitude(tmp_path, rate):
    x = tone(1000, 1.0, rate, amp=0.5)
    write_wav(tmp_path / f"r{rate}.wav", x, rate)
    y = load_audio(tmp_path / f"r{rate}.wav", SR)
    assert abs(len(y) - len(x) * SR / rate) <= 1
    assert abs(peak_hz(y, SR) - 1000) <= 1.0
    assert abs(amplitude(y, SR) - 0.5) < 0.005


@pytest.mark.parametrize("channels", [6, 8])
def test_many_channels_downmix(tmp_path, channels):
    weights = np.linspace(-0.2, 1.0, channels)
    x = tone(500, 0.5, SR)
    data = np.stack([w * x for w in weights])
    encode(tmp_path / "multi.flac", data, SR, "flac")
    write_wav(tmp_path / "multi.wav", data.T, SR)
    for name in ("multi.flac", "multi.wav"):
        y = load_audio(tmp_path / name, SR)
        assert len(y) == len(x)
        assert np.max(np.abs(y - weights.mean() * x)) < 2e-4, name
        assert audio_info(tmp_path / name)["channels"] == channels


@pytest.mark.parametrize("codec,suffix", [("aac", "m4a"), ("libopus", "ogg")])
@pytest.mark.parametrize("channels", [6, 8])
def test_many_channels_planar_lossy(tmp_path, codec, suffix, channels):
    # These decoders output planar float; 8 planar channels once crashed PyAV.
    weights = np.linspace(0.1, 0.8, channels)
    weights[3] = 0.0  # the LFE channel: AAC keeps only its lowest frequencies
    x = tone(600, 0.5, 48000)
    path = encode(tmp_path / f"m.{suffix}", np.stack([w * x for w in weights]), 48000, codec)
    y = load_audio(path, SR)
    assert abs(peak_hz(y, SR) - 600) < 2.5
    assert abs(amplitude(y, SR) - 0.5 * weights.mean()) < 0.1 * 0.5 * weights.mean()


def test_int16_negative_samples_stay_negative(tmp_path):
    values = np.array([-1.0, -0.5, -0.25, -1 / 32767, 0.0, 0.25, 0.5, 1.0])
    write_wav(tmp_path / "v.wav", np.repeat(values, 100), SR)
    y = load_audio(tmp_path / "v.wav", SR).reshape(len(values), 100)
    assert np.all(y.std(axis=1) == 0)
    assert np.allclose(y[:, 0], values, atol=1.5 / 32768)
    assert np.all(np.sign(y[:, 0]) == np.sign(values))


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f64le"])
def test_integer_and_float_formats_scale_to_unit_range(tmp_path, codec):
    x = tone(300, 0.5, SR, amp=0.8)
    x[:100] = -0.8  # a negative plateau: sign and scale in one place
    y = load_audio(encode(tmp_path / f"{codec}.wav", x, SR, codec), SR)
    tol = 1.5 / 128 if codec == "pcm_u8" else 1e-5
    assert np.max(np.abs(y - x)) < tol


@pytest.mark.parametrize("rate", [SR, 44100])
def test_start_and_duration_select_the_same_samples(tmp_path, rate):
    rng = np.random.default_rng(1)
    x = 0.3 * rng.standard_normal(rate * 3)
    write_wav(tmp_path / "n.wav", x, rate)
    full = load_audio(tmp_path / "n.wav", SR)
    part = load_audio(tmp_path / "n.wav", SR, start=1.25, duration=0.5)
    j0 = round(1.25 * SR)
    assert len(part) == SR // 2
    assert np.max(np.abs(part - full[j0 : j0 + SR // 2])) < 1e-5
    tail = load_audio(tmp_path / "n.wav", SR, start=2.5)
    assert np.max(np.abs(tail - full[round(2.5 * SR) :])) < 1e-5
    with pytest.raises(AudioError, match="n.wav"):
        load_audio(tmp_path / "n.wav", SR, start=10.0)


def test_soundtrack_of_a_video(tmp_path):
    path = tmp_path / "clip.mp4"
    x = tone(880, 1.0, 44100)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=44100, layout="mono")
        for i in range(10):
            img = np.full((48, 64, 3), 20 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        samples = x[None].astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in audio.encode(frame):
            container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    y = load_audio(path, SR)
    assert abs(len(y) - SR) < 2 * 1024 * SR / 44100 + 1
    assert abs(peak_hz(y, SR) - 880) < 1.0


def video_without_audio(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            img = np.full((48, 64, 3), 40 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty_file.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes_as.mp3"
    text.write_text("this is not audio at all\n" * 40)
    no_samples = tmp_path / "zero_samples.wav"
    write_wav(no_samples, np.zeros(0), SR)
    return {
        "empty": (empty, "file is empty"),
        "text": (text, "not a media file"),
        "missing": (tmp_path / "missing_song.flac", "no such file"),
        "video": (video_without_audio(tmp_path / "silent_video.mp4"), "no audio stream"),
        "zero samples": (no_samples, "no decodable audio"),
    }


@pytest.mark.parametrize("case", ["empty", "text", "missing", "video", "zero samples"])
def test_unreadable_inputs_raise_one_line_audio_error(tmp_path, case):
    path, problem = bad_files(tmp_path)[case]
    with pytest.raises(AudioError) as err:
        load_audio(path, SR)
    message = str(err.value)
    assert path.name in message and problem in message
    assert "\n" not in message
    if case != "zero samples":  # audio_info does not decode, so it sees a valid header
        with pytest.raises(AudioError, match=path.name):
            audio_info(path)


def test_truncated_files_return_what_decodes(tmp_path, caplog):
    x = tone(700, 2.0, 44100) + 0.05 * np.random.default_rng(2).standard_normal(88200)
    for suffix, codec in [("flac", "flac"), ("mp3", "libmp3lame")]:
        whole = encode(tmp_path / f"whole.{suffix}", x, 44100, codec).read_bytes()
        cut = tmp_path / f"cut.{suffix}"
        cut.write_bytes(whole[: len(whole) // 2])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="synd.audio"):
            y = load_audio(cut, SR)
        assert 0.5 * SR < len(y) < 1.5 * SR, suffix
        assert abs(peak_hz(y, SR) - 700) < 2.0
        assert any("cut." + suffix in r.getMessage() for r in caplog.records), suffix
    # m4a keeps its index at the end: cut in half nothing is decodable.
    whole = encode(tmp_path / "whole.m4a", x, 44100, "aac").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AudioError, match="cut.m4a"):
        load_audio(tmp_path / "cut.m4a", SR)


def test_nan_and_inf_become_zero_with_one_warning(tmp_path, caplog):
    x = tone(440, 0.5, SR)
    x[[10, 500, 501]] = [np.nan, np.inf, -np.inf]
    path = encode(tmp_path / "bad.wav", x, SR, "pcm_f32le")
    with caplog.at_level(logging.WARNING, logger="synd.audio"):
        y = load_audio(path, SR)
    assert np.isfinite(y).all()
    assert y[10] == 0 and y[500] == 0 and y[501] == 0
    assert abs(y[11] - x[11]) < 1e-6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "NaN" in warnings[0].getMessage()


def test_write_wav_clips_rounds_and_interleaves(tmp_path):
    data = np.array([[2.0, -2.0], [0.5, -0.5], [1e-5, -1e-5]])
    write_wav(tmp_path / "w.wav", data, 8000)
    with wave.open(str(tmp_path / "w.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        pcm = np.frombuffer(w.readframes(3), "<i2")
    assert pcm.tolist() == [32767, -32767, 16384, -16384, 0, 0]


def test_audio_info_describes_first_audio_stream(tmp_path):
    write_wav(tmp_path / "i.wav", np.zeros((66150, 2)), 44100)
    assert audio_info(tmp_path / "i.wav") == {
        "duration": pytest.approx(1.5),
        "sample_rate": 44100,
        "channels": 2,
        "codec": "pcm_s16le",
    }


def test_bad_arguments_are_rejected(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(100), SR)
    for kwargs in (
        {"sample_rate": 0},
        {"sample_rate": SR, "start": -1.0},
        {"sample_rate": SR, "duration": float("nan")},
    ):
        with pytest.raises(ValueError):
            load_audio(tmp_path / "a.wav", **kwargs)


def test_chunked_resampling_matches_one_pass():
    from scipy.signal import resample_poly

    from synd.audio import _resample

    x = np.random.default_rng(4).standard_normal(30011)
    for up, down in [(80, 147), (1, 2), (3, 1)]:
        whole = resample_poly(x, up, down)
        chunked = _resample(x, up, down, chunk=1000)  # many chunk seams
        assert chunked.shape == whole.shape
        assert np.max(np.abs(chunked - whole)) < 1e-5


def test_sample_rates_outside_the_accepted_range_are_refused(tmp_path):
    from synd.audio import MAX_RATE, MIN_RATE

    for rate, ok in ((MIN_RATE - 1, False), (MIN_RATE, True), (MAX_RATE, True), (MAX_RATE + 1, False)):
        with wave.open(str(tmp_path / "r.wav"), "wb") as w:  # any rate, as a header may claim
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.zeros(rate // 100, "<i2").tobytes())
        if ok:
            assert len(load_audio(tmp_path / "r.wav", SR)) == SR // 100
        else:
            with pytest.raises(AudioError, match=f"r.wav.*sample rate {rate} Hz is outside"):
                load_audio(tmp_path / "r.wav", SR)
