"""dequantize: uniform noise on integer data, for comparable log-likelihoods."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import norm

from sklearn_vae import HistogramDensity, dequantize


def _counts(seed=0, shape=(500, 3)):
    return np.random.default_rng(seed).poisson(4.0, size=shape)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float32, np.float64])
def test_output_is_float64_within_unit_cell(dtype):
    X = _counts().astype(dtype)
    Y = dequantize(X, random_state=0)
    assert Y.dtype == np.float64 and Y.shape == X.shape
    assert np.all(Y >= X) and np.all(Y < X.astype(np.float64) + 1)


def test_noise_is_uniform_with_mean_one_half():
    X = _counts(shape=(20_000, 2))
    noise = dequantize(X, random_state=1) - X
    # U(0, 1) has mean 1/2 and variance 1/12; the sample variance's standard
    # error is sqrt(Var((U - 1/2)^2) / n) with Var((U - 1/2)^2) = 1/80 - 1/144 = 1/180.
    assert abs(noise.mean() - 0.5) < 4 * np.sqrt(1 / 12 / noise.size)
    assert abs(noise.var() - 1 / 12) < 4 * np.sqrt(1 / 180 / noise.size)


def test_reproducible_for_fixed_random_state():
    X = _counts()
    assert_array_equal(dequantize(X, random_state=0), dequantize(X, random_state=0))
    assert not np.array_equal(dequantize(X, random_state=0), dequantize(X, random_state=1))


def test_input_is_not_modified_and_output_is_new_array():
    X = _counts().astype(np.float64)
    X_before = X.copy()
    Y = dequantize(X, random_state=0)
    assert_array_equal(X, X_before)
    assert not np.shares_memory(X, Y)


def test_rejects_non_integer_values():
    with pytest.raises(ValueError, match="dequantize requires integer-valued X"):
        dequantize([[1.0, 2.0], [3.0, 0.5]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rejects_non_finite_values(bad):
    X = _counts().astype(float)
    X[0, 0] = bad
    with pytest.raises(ValueError):
        dequantize(X)


def test_integer_histogram_scores_integer_and_dequantized_data_equally():
    X = _counts()
    hist = HistogramDensity("integer").fit(X)
    assert_allclose(hist.score_samples(dequantize(X, random_state=0)), hist.score_samples(X))


def test_mean_log_density_on_dequantized_data_lower_bounds_discrete_log_likelihood():
    # A continuous N(mu, sigma) induces P(x) = Phi(x + 1) - Phi(x) on the integers;
    # by Jensen, E_u[log p(x + u)] <= log P(x), checked up to 4 Monte-Carlo standard errors.
    mu, sigma, n_draws = 2.3, 0.7, 2_000
    levels = np.arange(0, 5)
    X = np.repeat(levels[None, :], n_draws, axis=0)
    log_p = norm.logpdf(dequantize(X, random_state=0), mu, sigma)
    log_P = np.log(norm.cdf(levels + 1, mu, sigma) - norm.cdf(levels, mu, sigma))
    standard_error = log_p.std(axis=0) / np.sqrt(n_draws)
    assert np.all(log_p.mean(axis=0) <= log_P + 4 * standard_error)
