import numpy as np
import pytest

from synd import quality
from synd.quality import (
    colorfulness,
    flicker,
    frame_change,
    probe_r2,
    sync,
    sync_lags,
    thumbnails,
    to_unit_float,
)

# ----------------------------------------------------------------------------- helpers


def smooth_features(n: int, f: int, seed: int) -> np.ndarray:
    """(n, f) slowly varying standardised series, like normalised sound features."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + 20, f))
    kernel = np.hanning(9)
    x = np.stack([np.convolve(x[:, j], kernel, mode="same") for j in range(f)], axis=1)[10 : n + 10]
    return (x - x.mean(0)) / x.std(0)


def frames_from_features(feat: np.ndarray, size: int = 32) -> np.ndarray:
    """uint8 frames in which feature j smoothly sets the colour of region j (and a bit more)."""
    n, f = feat.shape
    frames = np.full((n, size, size, 3), 0.5, dtype=np.float64)
    cols = 3
    rows = -(-f // cols)
    h, w = size // rows, size // cols
    for j in range(f):
        r, c = divmod(j, cols)
        level = 0.5 + 0.2 * np.tanh(0.4 * feat[:, j])  # smooth, monotonic, nearly linear
        frames[:, r * h : (r + 1) * h, c * w : (c + 1) * w, j % 3] = level[:, None, None]
        frames[:, r * h : (r + 1) * h, c * w : (c + 1) * w, (j + 1) % 3] = 1.0 - level[:, None, None]
    return (frames * 255 + 0.5).astype(np.uint8)


def tracks_from(feats: list[np.ndarray], frames: list[np.ndarray]) -> list:
    return [(thumbnails(fr), ft) for fr, ft in zip(frames, feats)]


# ----------------------------------------------------------------------------- conversion


def test_to_unit_float_scales_uint8_and_keeps_float():
    u = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    assert to_unit_float(u).dtype == np.float32
    np.testing.assert_allclose(to_unit_float(u), [[[[0.0, 0.2, 1.0]]]], atol=1e-7)
    f = np.array([[[[0.0, 0.25, 1.0]]]])
    np.testing.assert_array_equal(to_unit_float(f), f.astype(np.float32))
    with pytest.raises(ValueError, match="dtype"):
        to_unit_float(np.zeros((1, 2, 2, 3), dtype=np.int32))


# ----------------------------------------------------------------------------- thumbnails


def test_thumbnails_are_exact_block_means_when_divisible():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    expected = (frames / 255.0).reshape(5, 16, 2, 16, 3, 3).mean(axis=(2, 4)).reshape(5, -1)
    got = thumbnails(frames, side=16)
    assert got.shape == (5, 16 * 16 * 3)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_thumbnails_area_resample_when_not_divisible():
    rng = np.random.default_rng(1)
    frames = rng.random((4, 30, 45, 3))
    got = thumbnails(frames, side=16)
    assert got.shape == (4, 768)
    # Every output pixel covers the same area, so the picture's mean is kept.
    np.testing.assert_allclose(got.reshape(4, -1, 3).mean(1), frames.reshape(4, -1, 3).mean(1), atol=1e-5)
    # Three rows 0, 0.3, 0.9 into two: row 1 is split half and half between outputs.
    rows = np.array([0.0, 0.3, 0.9])[None, :, None, None] * np.ones((1, 3, 3, 3))
    small = thumbnails(rows, side=2).reshape(2, 2, 3)
    np.testing.assert_allclose(small[:, 0, 0], [(0.0 + 0.5 * 0.3) / 1.5, (0.5 * 0.3 + 0.9) / 1.5], atol=1e-6)


def test_chunking_and_list_input_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (11, 20, 28, 3), dtype=np.uint8)
    whole = (thumbnails(frames, 8), frame_change(frames), colorfulness(frames))
    monkeypatch.setattr(quality, "_CHUNK_BYTES", 20 * 28 * 3 * 4 * 3)  # chunks of 3 frames
    for frames_in in (frames, list(frames)):
        parts = (thumbnails(frames_in, 8), frame_change(frames_in), colorfulness(frames_in))
        for a, b in zip(whole, parts):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- probe


def test_probe_reads_features_that_drive_the_picture():
    feats = [smooth_features(300, 6, seed) for seed in (0, 1)]
    score = probe_r2(tracks_from(feats, [frames_from_features(f) for f in feats]))
    assert score > 0.9


def test_probe_scores_about_zero_for_constant_frames():
    feats = [smooth_features(200, 6, seed) for seed in (2, 3)]
    frames = [np.full((200, 32, 32, 3), 128, dtype=np.uint8) for _ in feats]
    assert probe_r2(tracks_from(feats, frames)) <= 0.05


def test_probe_scores_low_for_noise_independent_of_the_sound():
    rng = np.random.default_rng(4)
    feats = [smooth_features(200, 6, seed) for seed in (5, 6)]
    frames = [rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8) for _ in feats]
    assert probe_r2(tracks_from(feats, frames)) <= 0.1


def test_probe_is_fitted_on_first_halves_only():
    # The picture follows the features throughout, but in the second halves the targets are
    # the features in reversed order: a probe fitted there (or on everything) would still
    # score well; one fitted on the first halves only cannot.
    feats = [smooth_features(300, 6, seed) for seed in (7, 8)]
    frames = [frames_from_features(f) for f in feats]
    targets = []
    for f in feats:
        t = f.copy()
        t[150:] = f[150:, ::-1]
        targets.append(t)
    assert probe_r2(tracks_from(targets, frames)) < 0.1


def test_probe_splits_each_track_in_half_not_the_pool():
    # Track 0 moves only features 0-2, track 1 only features 3-5. Training on both first
    # halves sees all six; splitting the pooled frames in half would train on track 0 only.
    f0 = smooth_features(300, 6, 9)
    f1 = smooth_features(300, 6, 10)
    f0[:, 3:] = 0.0
    f1[:, :3] = 0.0
    feats = [f0, f1]
    assert probe_r2(tracks_from(feats, [frames_from_features(f) for f in feats])) > 0.9


def test_probe_is_deterministic_and_checks_inputs():
    rng = np.random.default_rng(11)
    tracks = [(rng.random((40, 30)), rng.standard_normal((40, 3))) for _ in range(2)]
    assert probe_r2(tracks) == probe_r2(tracks)
    with pytest.raises(ValueError, match="at least"):
        probe_r2([(rng.random((6, 30)), rng.standard_normal((6, 3)))])
    with pytest.raises(ValueError, match="one length"):
        probe_r2([(rng.random((20, 30)), rng.standard_normal((21, 3)))])
    with pytest.raises(ValueError, match="differ"):
        probe_r2(
            [
                (rng.random((20, 30)), rng.standard_normal((20, 3))),
                (rng.random((20, 31)), rng.standard_normal((20, 3))),
            ]
        )


@pytest.mark.parametrize("n, d", [(50, 20), (20, 50)])  # primal and dual form
def test_ridge_closed_form_matches_normal_equations(n, d):
    rng = np.random.default_rng(12)
    x = rng.random((n, d))
    y = rng.standard_normal((n, 3))
    path = quality._RidgePath(x, y)
    assert path.dual == (d > n)
    xs = (x - x.mean(0)) / x.std(0)
    alpha = 0.7
    w = np.linalg.solve(xs.T @ xs + alpha * np.eye(d), xs.T @ (y - y.mean(0)))
    np.testing.assert_allclose(path.weights(alpha), w, atol=1e-8)
    np.testing.assert_allclose(path.predict(x, alpha), xs @ w + y.mean(0), atol=1e-8)


# ----------------------------------------------------------------------------- sync


def onset_envelope(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hits = (rng.random(n) < 0.1) * rng.uniform(0.5, 1.0, n)
    return np.convolve(hits, [1.0, 0.5, 0.25], mode="full")[:n]


def frames_changing_with(onset: np.ndarray, k: int) -> np.ndarray:
    """Float frames whose change from frame t-1 to t is 0.3 * onset[t - k] (0 outside)."""
    n = len(onset)
    step = np.zeros(n)
    for t in range(1, n):
        if 0 <= t - k < n:
            step[t] = 0.3 * onset[t - k] / onset.max()
    level = np.empty(n)
    level[0] = 0.5
    for t in range(1, n):  # a walk that turns back before leaving [0, 1]
        up = level[t - 1] + step[t]
        level[t] = up if up <= 1.0 else level[t - 1] - step[t]
    return np.broadcast_to(level[:, None, None, None], (n, 4, 4, 3)).copy()


@pytest.mark.parametrize("k", [-3, 0, 2, 5])
def test_sync_finds_the_delay_of_the_picture(k):
    onset = onset_envelope(300, 13)
    change = frame_change(frames_changing_with(onset, k))
    corr, lag, curve = sync(onset, change, max_lag=15)
    assert lag == k
    assert corr > 0.9
    assert curve.shape == (31,) and curve[k + 15] == corr
    # The (n - 1,) form, change from frame i to i + 1, gives the same answer.
    corr2, lag2, curve2 = sync(onset, change[1:], max_lag=15)
    assert (corr2, lag2) == (corr, lag)
    np.testing.assert_array_equal(curve, curve2)


def test_sync_is_low_for_unrelated_change():
    onset = onset_envelope(300, 14)
    change = np.random.default_rng(15).random(300)
    corr, _, curve = sync(onset, change)
    assert corr < 0.3
    assert np.all(np.abs(curve) < 0.3)


def test_sync_lags_and_input_checks():
    np.testing.assert_array_equal(sync_lags(2), [-2, -1, 0, 1, 2])
    onset = onset_envelope(50, 16)
    with pytest.raises(ValueError, match="n"):
        sync(onset, np.zeros(47))
    with pytest.raises(ValueError, match="at least"):
        sync(onset[:10], np.zeros(10), max_lag=15)
    # A still picture gives no evidence of sync.
    corr, _, curve = sync(onset, np.zeros(50), max_lag=3)
    assert corr == 0.0 and np.all(curve == 0.0)


# ----------------------------------------------------------------------------- colourfulness


def test_colorfulness_of_grey_is_zero():
    grey = np.stack([np.full((8, 8, 3), v, dtype=np.uint8) for v in (0, 77, 200, 255)])
    grey[1, :4] = 30  # grey need not be flat
    np.testing.assert_allclose(colorfulness(grey), 0.0, atol=1e-9)


def test_colorfulness_of_half_red_half_blue_by_hand():
    img = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    img[0, :2, :, 0] = 255  # red
    img[0, 2:, :, 2] = 255  # blue
    # rg: red 255, blue 0       -> mean 127.5, std 127.5
    # yb: red 127.5, blue -255  -> mean -63.75, std 191.25
    expected = np.sqrt(127.5**2 + 191.25**2) + 0.3 * np.sqrt(127.5**2 + 63.75**2)
    assert colorfulness(img)[0] == pytest.approx(expected, rel=1e-5)
    assert colorfulness(img / 255.0)[0] == pytest.approx(expected, rel=1e-5)  # float input


def test_colorfulness_of_saturated_random_colours_is_high():
    rng = np.random.default_rng(17)
    palette = np.array(
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]], dtype=np.uint8
    )
    frames = palette[rng.integers(0, 6, (3, 32, 32))]
    assert np.all(colorfulness(frames) > 80)


# ----------------------------------------------------------------------------- flicker


def test_flicker_still_alternating_and_known_change():
    assert flicker(np.full((5, 4, 4, 3), 99, dtype=np.uint8)) == 0.0
    alternating = np.zeros((6, 4, 4, 3), dtype=np.uint8)
    alternating[1::2] = 255
    assert flicker(alternating) == pytest.approx(1.0, abs=1e-7)
    frames = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    frames[1:, 0, 0] = 255  # one white pixel of 16 appears, then stays
    np.testing.assert_allclose(frame_change(frames), [0.0, 1 / 16, 0.0], atol=1e-7)
    assert flicker(frames) == pytest.approx(1 / 32, abs=1e-7)
    with pytest.raises(ValueError, match="2 frames"):
        flicker(frames[:1])
