"""Tests for synd.features: framing, feature meaning, streaming == offline, stats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from synd.features import (
    FeatureConfig,
    FeatureExtractor,
    FeatureStats,
    StreamingExtractor,
    linear_bands,
    mel_filterbank,
)

SR = 24000


def tone(freq: float, seconds: float, amp: float = 0.5, rate: int = SR) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def stream_all(stream: StreamingExtractor, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Push `x` in blocks cycling through `sizes`, then flush; all frames stacked."""
    out, pos, k = [], 0, 0
    while pos < len(x):
        size = sizes[k % len(sizes)]
        frames = stream.push(x[pos : pos + size])
        assert frames.dtype == np.float32 and frames.shape[1:] == (stream.cfg.dim,)
        out.append(frames)
        pos, k = pos + size, k + 1
    out.append(stream.flush())
    return np.concatenate(out)


# ------------------------------------------------------------------------- config


def test_dim_and_names():
    cfg = FeatureConfig()
    assert cfg.dim == 34
    assert cfg.names[:2] == ["mel00", "mel01"] and cfg.names[31] == "mel31"
    assert cfg.names[-2:] == ["loudness", "onset"]
    small = FeatureConfig(kind="wave", bands=8, loudness=False, onset=True)
    assert small.dim == 9 and small.names == [f"wave0{i}" for i in range(8)] + ["onset"]
    wide = FeatureConfig(kind="fft", bands=128, loudness=False, onset=False)
    assert wide.dim == 128 and wide.names[0] == "fft000" and len(set(wide.names)) == 128


def test_config_roundtrip_through_json():
    cfg = FeatureConfig(kind="fft", fps=29.97, n_fft=1024, bands=20, fmin=50.0, fmax=8000.0, onset=False)
    again = FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert FeatureConfig.from_dict({}) == FeatureConfig()


@pytest.mark.parametrize(
    "data,field",
    [
        ({"kind": "cqt"}, "kind"),
        ({"colour": "red"}, "colour"),
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"sample_rate": -1}, "sample_rate"),
        ({"sample_rate": 24000.5}, "sample_rate"),
        ({"n_fft": 4}, "n_fft"),
        ({"bands": 0}, "bands"),
        ({"bands": "32"}, "bands"),
        ({"fmax": 20000.0}, "fmax"),  # above Nyquist at 24 kHz
        ({"fmin": 500.0, "fmax": 400.0}, "fmax"),
        ({"loudness": "yes"}, "loudness"),
        ({"onset": 1}, "onset"),
        ({"kind": "wave", "n_fft": 16, "bands": 32}, "bands"),
    ],
)
def test_from_dict_rejects_bad_input(data, field):
    with pytest.raises(ValueError, match=field):
        FeatureConfig.from_dict(data)


def test_from_dict_rejects_non_dict():
    with pytest.raises(ValueError):
        FeatureConfig.from_dict([("kind", "mel")])


def test_frame_count_and_ends():
    assert FeatureConfig(fps=30.0).n_frames(SR * 10) == 300  # exact: no extra frame
    assert FeatureConfig(fps=30.0).n_frames(SR * 10 + 1) == 301
    assert FeatureConfig(fps=29.97).n_frames(SR * 10) == 300  # ceil(299.7)
    assert FeatureConfig(fps=24.0).n_frames(1) == 1
    assert FeatureConfig().n_frames(0) == 0
    cfg = FeatureConfig(fps=29.97, n_fft=2048)
    i = np.array([0, 1, 2, 1000])
    expected = [round(k * SR / 29.97) + 1024 for k in i]
    assert cfg.frame_ends(i).tolist() == expected


# ---------------------------------------------------------------- filter matrices


@pytest.mark.parametrize("n_fft", [16, 64, 256, 2048])
def test_every_band_covers_a_bin(n_fft):
    cfg = FeatureConfig(n_fft=n_fft, bands=40)
    mel = mel_filterbank(cfg)
    assert mel.shape == (40, n_fft // 2 + 1)
    assert np.all(mel.sum(axis=1) > 0) and np.all(mel >= 0)
    lin = linear_bands(FeatureConfig(kind="fft", n_fft=n_fft, bands=40))
    assert np.allclose(lin.sum(axis=1), 1.0)
    out = FeatureExtractor(cfg).offline(np.random.default_rng(0).standard_normal(SR // 4))
    assert np.isfinite(out).all()


def test_mel_filters_are_ordered_in_frequency():
    mel = mel_filterbank(FeatureConfig())
    hz = np.fft.rfftfreq(2048, 1 / SR)
    centres = hz[np.argmax(mel, axis=1)]
    assert np.all(np.diff(centres) > 0)
    assert 30 < centres[0] < 150 and 9000 < centres[-1] < 11000


# ----------------------------------------------------------------- feature values


def test_shapes_and_dtype():
    x = np.random.default_rng(0).standard_normal(SR * 2 + 123)
    for kind in ("mel", "fft", "wave"):
        cfg = FeatureConfig(kind=kind, fps=29.97)
        out = FeatureExtractor(cfg).offline(x)
        assert out.dtype == np.float32
        assert out.shape == (math.ceil((SR * 2 + 123) * 29.97 / SR), cfg.dim)
        assert np.isfinite(out).all()
    empty = FeatureExtractor().offline(np.zeros(0))
    assert empty.shape == (0, 34)


def test_wave_framing_is_centred_and_zero_padded():
    # x[k] = k makes every segment mean equal to its centre sample index.
    cfg = FeatureConfig(
        kind="wave", sample_rate=1000, fps=10.0, n_fft=100, bands=4, fmax=400.0, loudness=False, onset=False
    )
    x = np.arange(910, dtype=np.float64)  # 0.91 s: 10 frames, the last one past the end
    out = FeatureExtractor(cfg).offline(x)
    assert out.shape == (10, 4)
    for i in range(1, 9):
        start = 100 * i + 50 - 100  # window ends at round(i * 1000 / 10) + 50
        assert np.allclose(out[i], [start + 12, start + 37, start + 62, start + 87]), i
    assert np.allclose(out[0], [0, 0, 12, 37])  # first half of frame 0 is padding
    # the last window is [850, 950): samples 910.. are padding zeros
    assert np.allclose(out[9], [862, 887, sum(range(900, 910)) / 25, 0])


def test_loudness_in_db():
    cfg = FeatureConfig()
    quiet = FeatureExtractor(cfg).offline(tone(440, 1.0, amp=0.1))
    loud = FeatureExtractor(cfg).offline(tone(440, 1.0, amp=0.4))
    col = cfg.names.index("loudness")
    inner = slice(3, -3)  # frames whose window is fully inside the signal
    assert np.allclose(loud[inner, col] - quiet[inner, col], 20 * np.log10(4), atol=0.01)
    assert np.allclose(loud[inner, col], 10 * np.log10(0.4**2 / 2), atol=0.05)
    silent = FeatureExtractor(cfg).offline(np.zeros(SR))
    assert np.allclose(silent[:, col], -100.0)


@pytest.mark.parametrize("kind", ["mel", "fft"])
def test_low_and_high_tones_light_up_matching_bands(kind):
    cfg = FeatureConfig(kind=kind)
    fe = FeatureExtractor(cfg)
    low = fe.offline(tone(200, 1.0))[10, : cfg.bands]
    high = fe.offline(tone(5000, 1.0))[10, : cfg.bands]
    assert np.argmax(low) + 5 < np.argmax(high)
    if kind == "fft":  # equal-width bands: the index is known exactly
        width = (cfg.fmax - cfg.fmin) / cfg.bands
        assert np.argmax(low) == int((200 - cfg.fmin) // width)
        assert np.argmax(high) == int((5000 - cfg.fmin) // width)
    else:
        hz = np.fft.rfftfreq(cfg.n_fft, 1 / SR)
        weights = mel_filterbank(cfg)
        assert weights[np.argmax(low), np.argmin(np.abs(hz - 200))] > 0.3
        assert weights[np.argmax(high), np.argmin(np.abs(hz - 5000))] > 0.3


def test_onset_peaks_at_clicks():
    cfg = FeatureConfig(fps=30.0)  # onset lag n_fft/2 = 43 ms > one frame (33 ms)
    rng = np.random.default_rng(3)
    x = 0.001 * rng.standard_normal(SR * 4)
    click_frames = [10, 31, 55, 80, 101]
    for f in click_frames:
        # Half a frame after t_f: only frame f has the click in its window's newest half.
        at = round((f + 0.5) * SR / 30)
        x[at : at + 24] += 0.8
    onset = FeatureExtractor(cfg).offline(x)[:, -1]
    assert cfg.names[-1] == "onset"
    top = np.argsort(onset[1:])[-len(click_frames) :] + 1  # frame 0: sound after silence
    assert sorted(top.tolist()) == click_frames
    quiet = np.delete(onset, click_frames + [0])
    assert onset[click_frames].min() > 5 * quiet.max()
    assert onset[0] > onset[click_frames].min() / 2  # the start of sound is an onset too
    assert FeatureExtractor(cfg).offline(np.zeros(SR))[:, -1].max() == 0.0


def test_onset_means_the_same_at_any_frame_rate():
    x = 0.001 * np.random.default_rng(4).standard_normal(SR * 2)
    x[SR : SR + 24] += 0.8
    peaks = [FeatureExtractor(FeatureConfig(fps=fps)).offline(x)[:, -1].max() for fps in (24, 30, 60)]
    assert max(peaks) < 1.2 * min(peaks)


def test_onset_uses_mel_whatever_the_kind():
    x = np.random.default_rng(4).standard_normal(SR)
    mel = FeatureExtractor(FeatureConfig(kind="mel")).offline(x)
    for kind in ("fft", "wave"):
        other = FeatureExtractor(FeatureConfig(kind=kind)).offline(x)
        assert np.allclose(other[:, -2:], mel[:, -2:], atol=1e-5)  # loudness and onset
        assert not np.allclose(other[:, :32], mel[:, :32], atol=1e-2)


def test_non_finite_input_is_zeroed_not_propagated():
    x = tone(440, 1.0)
    y = x.copy()
    y[5000] = np.nan
    a, b = FeatureExtractor().offline(x), FeatureExtractor().offline(y)
    assert np.isfinite(b).all()
    assert np.allclose(a[:3], b[:3]) and np.allclose(a[-10:], b[-10:])


# ------------------------------------------------------------- streaming == offline


@pytest.mark.parametrize("fps", [24.0, 30.0, 29.97, 60.0])
@pytest.mark.parametrize("kind", ["mel", "fft", "wave"])
def test_streaming_equals_offline(kind, fps):
    rng = np.random.default_rng(int(fps * 100) + len(kind))
    n = SR * 2 + int(rng.integers(0, 5000))
    x = 0.2 * rng.standard_normal(n) + tone(330, n / SR)
    x[n // 3 : n // 3 + 50] += 0.9  # a click, so the onset column is not flat
    cfg = FeatureConfig(kind=kind, fps=fps)
    fe = FeatureExtractor(cfg)
    expected = fe.offline(x)
    # Random sizes around 1 to several windows, with a long run of 1-sample blocks.
    sizes = [int(s) for s in rng.choice([0, 1, 2, 7, 333, 1023, 2048, 2049, 5001, 9000], size=40)]
    ones = [1] * 3000
    stream = fe.stream()
    got = stream_all(stream, x, sizes[:5] + ones + sizes[5:])
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-4
    assert stream.frames_emitted == len(expected)


def test_streaming_whole_signal_in_one_block():
    x = np.random.default_rng(5).standard_normal(SR * 3)
    fe = FeatureExtractor(FeatureConfig(fps=25.0))
    stream = fe.stream()
    got = np.concatenate([stream.push(x), stream.flush()])
    assert np.max(np.abs(got - fe.offline(x))) < 1e-4


def test_frames_are_emitted_as_soon_as_complete():
    cfg = FeatureConfig(fps=29.97, n_fft=512)
    stream = FeatureExtractor(cfg).stream()
    x = np.random.default_rng(6).standard_normal(SR)
    pushed = 0
    for size in [1, 100, 411, 1, 800, 3000, 7, 10000]:
        frames = stream.push(x[pushed : pushed + size])
        before = stream.frames_emitted - len(frames)
        pushed += size
        complete = int(np.sum(cfg.frame_ends(np.arange(cfg.n_frames(pushed) + 2)) <= pushed))
        assert stream.frames_emitted == complete, pushed
        assert before == int(np.sum(cfg.frame_ends(np.arange(complete + 2)) <= pushed - size))
    assert stream.samples_pushed == pushed


def test_streaming_memory_stays_bounded():
    stream = FeatureExtractor().stream()
    size = stream._buf.nbytes  # white-box: the history buffer must never grow
    x = np.random.default_rng(7).standard_normal(SR * 20).astype(np.float32)
    total = len(stream.push(x))
    for lo in range(0, SR * 2, 480):
        total += len(stream.push(x[lo : lo + 480]))
    assert stream._buf.nbytes == size <= 8 * (2048 + 1024 + 4096)  # window, onset lag, piece
    assert total == stream.frames_emitted > 600


def test_flush_ends_stream_and_reset_restarts():
    fe = FeatureExtractor()
    stream = fe.stream()
    assert stream.flush().shape == (0, 34)  # nothing pushed: no frame
    with pytest.raises(RuntimeError):
        stream.push(np.zeros(10))
    stream.reset()
    x = tone(440, 0.5)
    got = np.concatenate([stream.push(x), stream.flush()])
    assert np.max(np.abs(got - fe.offline(x))) < 1e-4
    assert stream.flush().shape == (0, 34)


def test_push_rejects_multichannel_blocks():
    with pytest.raises(ValueError):
        FeatureExtractor().stream().push(np.zeros((100, 2)))


# ----------------------------------------------------------------- normalisation


def test_stats_normalise_to_zero_mean_unit_std():
    rng = np.random.default_rng(8)
    feats = rng.normal(loc=[-50, 0, 3, 1e3], scale=[10, 0.1, 1, 200], size=(2000, 4))
    feats = np.concatenate([feats, np.full((2000, 1), 7.0)], axis=1)  # a constant feature
    stats = FeatureStats.fit(feats)
    assert stats.mean.dtype == stats.std.dtype == np.float32 and stats.mean.shape == (5,)
    z = stats.normalize(feats)
    assert z.dtype == np.float32
    assert np.allclose(z[:, :4].mean(axis=0), 0, atol=1e-3)
    assert np.allclose(z[:, :4].std(axis=0), 1, atol=1e-3)
    assert stats.std[4] == pytest.approx(1e-3) and np.all(z[:, 4] == 0)
    with pytest.raises(ValueError):
        stats.normalize(feats[:, :3])


def test_stats_roundtrip_and_validation():
    stats = FeatureStats.fit(np.random.default_rng(9).standard_normal((50, 3)))
    again = FeatureStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert np.array_equal(again.mean, stats.mean) and np.array_equal(again.std, stats.std)
    good = stats.to_dict()
    bad_inputs = [
        {"mean": good["mean"]},
        {**good, "std": good["std"][:2]},
        {**good, "mean": [0.0, float("nan"), 1.0]},
        {**good, "std": [1.0, float("inf"), 1.0]},
        {**good, "std": [1.0, 0.0, 1.0]},
        {**good, "mean": ["a", "b", "c"]},
        {**good, "extra": 1},
        {"mean": [], "std": []},
        "not a dict",
    ]
    for bad in bad_inputs:
        with pytest.raises(ValueError):
            FeatureStats.from_dict(bad)


def test_stats_fit_rejects_empty():
    with pytest.raises(ValueError):
        FeatureStats.fit(np.zeros((0, 4)))


def test_config_accepts_numpy_scalars_and_stays_json_able():
    cfg = FeatureConfig(
        sample_rate=np.int64(16000),
        fps=np.float32(25.0),
        bands=np.int32(16),
        fmax=np.float64(7000.0),
        onset=np.bool_(False),
    )
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["sample_rate"] == 16000 and d["bands"] == 16 and d["onset"] is False
    assert FeatureConfig.from_dict(d) == cfg
