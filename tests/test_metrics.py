import numpy as np
import pytest

from synd.quality import r2_score


def test_r2_perfect_mean_and_partial():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((500, 4))
    assert r2_score(y, y) == 1.0
    assert abs(r2_score(y, np.tile(y.mean(0), (500, 1)))) < 1e-12
    noisy = y + 0.5 * rng.standard_normal(y.shape)  # noise variance 0.25 of signal 1
    assert 0.7 < r2_score(y, noisy) < 0.8


def test_r2_is_variance_weighted():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((400, 2))
    y[:, 1] *= 1e-3  # a column that hardly varies
    pred = y.copy()
    pred[:, 1] += 0.01  # wrong by far more than its spread, tiny in absolute terms
    assert r2_score(y, pred) > 0.99


def test_r2_rejects_bad_shapes_and_constant_targets():
    with pytest.raises(ValueError):
        r2_score(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="does not vary"):
        r2_score(np.ones((5, 2)), np.zeros((5, 2)))
